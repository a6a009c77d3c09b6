"""Where numba keeps the compiled kernels when the installed package is read-only.

The post-processing kernels are ``numba.njit(cache=True)``: compiled on their first call (about
24 s for the instance stage's kernels on 2 cores) and loaded from the cache after (well under a
second). numba writes the cache beside the source, in ``__pycache__``; in a system-wide or
read-only install it cannot, and numba's own fallback (its user-wide folder) may not be
writable either, in which case every new process compiles again. :func:`ensure_numba_cache_dir`
points numba at particleseg's user cache (``$XDG_CACHE_HOME/particleseg/numba``, else
``~/.cache/particleseg/numba``, else a folder in the temporary directory) whenever the package
folder is not writable and the user has not set ``NUMBA_CACHE_DIR`` himself.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def _writable_folder(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(folder, os.W_OK | os.X_OK)


def numba_cache_dir(package_dir: Path = PACKAGE_DIR) -> Path | None:
    """The folder numba should cache in, or None where its default (``__pycache__``) works.

    Args:
        package_dir: the installed package's folder (the default: this one).

    Returns:
        None when ``NUMBA_CACHE_DIR`` is set or ``package_dir`` is writable; else the first
        writable of particleseg's user cache and the temporary directory (None if neither is).
    """
    if os.environ.get("NUMBA_CACHE_DIR") or os.access(package_dir, os.W_OK):
        return None
    from particleseg.config import user_cache_dir

    user = f"particleseg-numba-{os.getuid()}" if hasattr(os, "getuid") else "particleseg-numba"
    for folder in (user_cache_dir() / "numba", Path(tempfile.gettempdir()) / user):
        if _writable_folder(folder):
            return folder
    return None


def ensure_numba_cache_dir(package_dir: Path = PACKAGE_DIR) -> Path | None:
    """Set ``NUMBA_CACHE_DIR`` (and numba's loaded config) to :func:`numba_cache_dir`, if any.

    Returns:
        The folder set, or None when numba's default is kept.
    """
    folder = numba_cache_dir(package_dir)
    if folder is None:
        return None
    os.environ["NUMBA_CACHE_DIR"] = str(folder)
    config = sys.modules.get("numba.core.config")
    if config is not None:  # numba read the environment already: tell its config too
        config.CACHE_DIR = str(folder)
    return folder

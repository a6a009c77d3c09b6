"""Atomic writes: write to a temporary sibling, rename into place only when complete.

A killed or failing writer leaves at most a hidden ``.<name>.tmp-<random>`` sibling, never a file or
folder at the target path that looks complete.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np


def temp_sibling(path: Path, tag: str = "tmp") -> Path:
    """Return a hidden, unique sibling name ``.<name>.<tag>-<random>`` of ``path``."""
    return path.with_name(f".{path.name}.{tag}-{secrets.token_hex(4)}")


def remove_path(path: Path) -> None:
    """Remove a file or a directory tree if it exists; never raises."""
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    except OSError:
        pass


def fsync_file(path: Path) -> None:
    """Flush a written file's data to disk (so the rename cannot overtake the data)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def commit(tmp: Path, path: Path) -> None:
    """Move the finished ``tmp`` onto ``path``, replacing whatever was there.

    Files use a single atomic ``os.replace``. A directory (or a target that is a directory) cannot
    be replaced atomically: the old target is first renamed aside, the new one renamed into place,
    and only then is the old one deleted; if the second rename fails, the old target is restored.
    """
    if tmp.is_file() and not tmp.is_symlink():
        fsync_file(tmp)
    if not (tmp.is_dir() or path.is_dir()):
        os.replace(tmp, path)
        return
    old = None
    if path.exists() or path.is_symlink():
        old = temp_sibling(path, "old")
        os.replace(path, old)
    try:
        os.replace(tmp, path)
    except BaseException:
        if old is not None:
            os.replace(old, path)
        raise
    if old is not None:
        remove_path(old)


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary sibling of ``path`` to write to; rename it onto ``path`` on success.

    If the body raises (or is interrupted), the temporary file or folder is removed and ``path`` is
    left as it was.

    Args:
        path: Final destination (file or directory). Its parent folder must exist.

    Yields:
        The temporary path (does not exist yet) to create as a file or a directory.
    """
    path = Path(path)
    tmp = temp_sibling(path)
    try:
        yield tmp
        commit(tmp, path)
    except BaseException:
        remove_path(tmp)
        raise


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"object of type {type(obj).__name__} is not JSON serializable")


def write_json_atomic(path: str | os.PathLike[str], obj: Any) -> Path:
    """Write ``obj`` as indented JSON to ``path`` atomically (numpy scalars and paths allowed).

    Args:
        path: Destination ``.json`` file.
        obj: JSON-serializable object; numpy scalars/arrays and ``os.PathLike`` are converted.

    Returns:
        The destination path.
    """
    path = Path(path)
    text = json.dumps(obj, indent=2, default=_json_default) + "\n"
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically, creating the parent folder if needed.

    Args:
        path: Destination file.
        data: File contents.

    Returns:
        The destination path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return path

"""One error path for the command-line entry points (predict.py, train.py, evaluate.py).

Bad input at a boundary (an input, output, model or dataset that cannot be used) raises a
``ValueError`` naming the file and the problem; an OS error (permission, disk, missing file)
is the same kind of failure. :func:`guarded` turns both into the message on stderr and exit
status 2, without a traceback. ``--debug`` on the command line (or ``HYDRA_FULL_ERROR=1``)
lets the exception through, with its traceback, for developers.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from typing import Any

DEBUG_FLAG = "--debug"
#: Libraries whose deprecation notices stay out of the console (they are ours to act on, not
#: the user's).
THIRD_PARTY = (
    "lightning",
    "torch",
    "torchmetrics",
    "monai",
    "hydra",
    "omegaconf",
    "wandb",
    "zarr",
    "numcodecs",
    "dask",
    "tifffile",
    "skimage",
    "scipy",
    "porespy",
    "pkg_resources",
)
_debug = False


def take_debug_flag(argv: list[str] | None = None) -> bool:
    """Remove ``--debug`` from ``argv`` (default ``sys.argv``) before Hydra parses it.

    Returns:
        Whether tracebacks are wanted: ``--debug`` was given or ``HYDRA_FULL_ERROR=1``.
    """
    global _debug
    argv = sys.argv if argv is None else argv
    given = DEBUG_FLAG in argv
    while DEBUG_FLAG in argv:
        argv.remove(DEBUG_FLAG)
    _debug = given or os.environ.get("HYDRA_FULL_ERROR") == "1"
    return _debug


def take_dry_run_flag(argv: list[str] | None = None) -> bool:
    """Turn ``--dry-run`` in ``argv`` (default ``sys.argv``) into the override ``dry_run=true``.

    Returns:
        Whether it was given.
    """
    argv = sys.argv if argv is None else argv
    given = "--dry-run" in argv
    while "--dry-run" in argv:
        argv.remove("--dry-run")
    if given:
        argv.append("dry_run=true")
    return given


#: Short options of ``particleseg predict`` and the overrides they stand for.
PREDICT_FLAGS = {
    "-i": "input",
    "--input": "input",
    "-o": "output",
    "--output": "output",
    "-m": "checkpoint",
    "--model": "checkpoint",
    "--checkpoint": "checkpoint",
}
#: Characters a value may hold unquoted in a Hydra override (a path: letters, digits, ``_-+./:%@~``,
#: backslashes, inner spaces); anything else (``,[]{}()'"=$``) is quoted by :func:`hydra_value`.
_PLAIN_VALUE = re.compile(r"[\w\-+./:%@~\\ ]*")


def hydra_value(text: str) -> str:
    """``text`` as the value of a Hydra override that gives back exactly ``text``.

    Plain paths stay as they are; others are single-quoted with quotes and ``${`` escaped, so
    a file named ``a,b.tif``, ``scan[1].tif`` or ``x${y}.tif`` is a path, not a list, a sweep
    or an interpolation.
    """
    if _PLAIN_VALUE.fullmatch(text) and text == text.strip():
        return text
    body = re.sub(r"(\\*)'", lambda m: m.group(1) * 2 + "\\'", text).replace("${", "\\${")
    body = re.sub(r"(\\+)$", lambda m: m.group(1) * 2, body)
    return f"'{body}'"


def rename_model_override(argv: list[str]) -> list[str]:
    """``model=FILE`` (predict's earlier name) as ``checkpoint=FILE``; other arguments unchanged.

    In the shared config folder ``model`` is the training group (conf/model/), so Hydra would
    refuse it; users' scripts that name the model file this way keep working.
    """
    return [f"checkpoint={a[len('model=') :]}" if a.startswith("model=") else a for a in argv]


def take_option_flags(argv: list[str] | None = None, flags: dict[str, str] = PREDICT_FLAGS) -> None:
    """Turn ``-i X`` / ``--input X`` / ``--input=X`` (``flags``) into Hydra overrides ``input=X``.

    Newcomers type the options of cellpose and nnU-Net; Hydra itself only takes ``key=value``.

    Raises:
        SystemExit: status 2 with a message when a flag has no value.
    """
    argv = sys.argv if argv is None else argv
    out, i = argv[:1], 1
    while i < len(argv):
        arg = argv[i]
        flag, eq, value = arg.partition("=")
        if flag in flags and eq:
            out.append(f"{flags[flag]}={hydra_value(value)}")
        elif arg in flags:
            if i + 1 >= len(argv) or argv[i + 1].startswith("-"):
                print(f"{argv[0]}: {arg} needs a value ({flags[arg]})", file=sys.stderr)
                raise SystemExit(2)
            out.append(f"{flags[arg]}={hydra_value(argv[i + 1])}")
            i += 1
        else:
            out.append(arg)
        i += 1
    argv[:] = out


def quiet_third_party() -> None:
    """Keep the libraries' tips and deprecation notices out of a user's console.

    Lightning's start-up lines (the accelerator lines and its advertising "Tip") and the
    deprecation notices raised inside the pinned libraries say nothing about the user's run;
    errors and other warnings of those libraries still show, and so do deprecations raised in
    particleseg's own code.
    """
    import logging
    import warnings

    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
    for module in THIRD_PARTY:
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=rf"{module}(\.|$)")


def guarded(prog: str, fn: Callable[[], Any], on_error: Callable[[], None] | None = None) -> Any:
    """Run ``fn()``; a ``ValueError`` or ``OSError`` ends the program with exit status 2.

    Args:
        prog: The program's name, the message's prefix (``predict.py: scan.tif: ...``).
        fn: The task.
        on_error: Called before exiting, to remove what the failed run left that could look
            like a result (e.g. train.py's fresh run folder).

    Returns:
        What ``fn`` returns.

    Raises:
        SystemExit: with status 2 after printing the message (not in debug mode, where the
            exception itself is raised).
    """
    try:
        return fn()
    except (ValueError, OSError) as err:
        if on_error is not None:
            on_error()
        if _debug:
            raise
        message = str(err) or type(err).__name__
        if isinstance(err, OSError) and err.filename and str(err.filename) not in message:
            message = f"{err.filename}: {message}"
        print(f"{prog}: {message}", file=sys.stderr)
        raise SystemExit(2) from None


__all__ = ["DEBUG_FLAG", "guarded", "quiet_third_party", "take_debug_flag"]

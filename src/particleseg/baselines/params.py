"""JSON persistence of a baseline's tuning result (:mod:`particleseg.baselines.tuning`)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from particleseg.baselines.tuning import BASELINES
from particleseg.io.atomic import write_json_atomic

__all__ = ["load_params", "save_params"]


def save_params(path: str | os.PathLike[str], result: dict[str, Any]) -> Path:
    """Write a tuning result (or any dict with a ``"params"`` dict) to a JSON file atomically.

    The JSON is written to a temporary file in the destination folder and renamed over
    ``path``, so an interrupted write never leaves a truncated file behind.

    Args:
        path: Destination ``.json`` file; its folder is created if missing.
        result: The dict returned by :func:`~particleseg.baselines.tuning.tune_threshwater`,
            :func:`~particleseg.baselines.tuning.tune_snow` or
            :func:`~particleseg.baselines.tuning.tune_grid`.

    Returns:
        The path written.

    Raises:
        ValueError: If ``result`` has no ``"params"`` dict.
    """
    if not isinstance(result, dict) or not isinstance(result.get("params"), dict):
        raise ValueError("result must be a dict with a 'params' dict (see tune_grid)")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_json_atomic(path, result)


def load_params(path: str | os.PathLike[str], baseline: str = "threshwater") -> dict[str, Any]:
    """Read a tuning result written by :func:`save_params`.

    Args:
        path: A JSON file written by :func:`save_params`.
        baseline: Key of the baseline it must be for (``"threshwater"``, ``"snow"``): its
            parameters must be among that baseline's (or ``threshold``).

    Returns:
        The saved dict; ``result["params"]`` can be passed to the baseline's segmenter as
        keyword arguments.

    Raises:
        ValueError: If the baseline is unknown, the file cannot be read, is not valid JSON, has
            no ``"params"`` dict, or holds parameters the baseline does not take (the message
            names the file).
    """
    if baseline not in BASELINES:
        raise ValueError(f"unknown baseline {baseline!r}; one of {sorted(BASELINES)}")
    spec = BASELINES[baseline]
    path = Path(path)
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"cannot read {spec.name} parameters from {path}: {error}") from error
    if not isinstance(result, dict) or not isinstance(result.get("params"), dict):
        raise ValueError(f"{path} holds no 'params' dict; not a {spec.name} parameter file")
    unknown = set(result["params"]) - set(spec.param_keys) - {"threshold"}
    if unknown:
        others = [b.name for b in BASELINES.values() if not unknown - set(b.param_keys)]
        hint = f" (a {others[0]} parameter file?)" if others else ""
        raise ValueError(f"{path}: unknown {spec.name} parameters {sorted(unknown)}{hint}")
    return result

"""Predict's ``inference`` and ``outputs`` settings: every default, set once, and the check.

The defaults are the config groups ``conf/inference/default.yaml`` and
``conf/outputs/default.yaml``, read here; the library functions
(:func:`particleseg.inference.pipeline.predict_scan` and the ones it calls) take a partial dict
and complete it with them, so none of them repeats a default.
"""

from __future__ import annotations

from typing import Any

from omegaconf import OmegaConf

from particleseg.config import CONF_DIR


def _group_defaults(group: str) -> dict[str, Any]:
    """The keys and values of ``conf/GROUP/default.yaml``."""
    values = OmegaConf.to_container(OmegaConf.load(CONF_DIR / group / "default.yaml"))
    assert isinstance(values, dict)
    return values


#: Sliding-window inference (conf/inference/default.yaml).
INFERENCE_DEFAULTS: dict[str, Any] = _group_defaults("inference")
#: What predict writes (conf/outputs/default.yaml).
OUTPUT_DEFAULTS: dict[str, Any] = _group_defaults("outputs")

_REPLACED = {"autocast": "inference.precision (bf16 | fp32 | auto)"}


def _complete(given: dict | None, defaults: dict[str, Any], what: str) -> dict[str, Any]:
    """``given`` completed with ``defaults`` (None takes the default); unknown keys refused."""
    given = dict(given or {})
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        hints = [f"{k}: now {_REPLACED[k]}" for k in unknown if k in _REPLACED]
        raise ValueError(
            f"unknown {what} setting(s) {unknown}"
            + (f" ({'; '.join(hints)})" if hints else "")
            + f"; the settings are {sorted(defaults)}"
        )
    return {k: v if given.get(k) is None else given[k] for k, v in defaults.items()}


def resolve_inference(given: dict | None) -> dict[str, Any]:
    """``given`` completed with :data:`INFERENCE_DEFAULTS` (a value of None takes the default).

    Raises:
        ValueError: a key that is not an inference setting (naming what replaced it, if any),
            an unknown engine or precision.
    """
    from particleseg.inference.engines import check_names

    resolved = _complete(given, INFERENCE_DEFAULTS, "inference")
    check_names(str(resolved["engine"]), str(resolved["precision"]))
    return resolved


def resolve_outputs(given: dict | None) -> dict[str, Any]:
    """``given`` completed with :data:`OUTPUT_DEFAULTS` (a value of None takes the default).

    Raises:
        ValueError: a key that is not an output setting (a typo would silently do nothing).
    """
    return _complete(given, OUTPUT_DEFAULTS, "outputs")

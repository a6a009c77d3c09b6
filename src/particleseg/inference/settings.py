"""Predict's ``inference`` settings: every default, set once, and the check of a given dict.

``conf/predict/predict.yaml`` shows the same values to users (a test keeps the two equal); the
library functions (:func:`particleseg.inference.pipeline.predict_scan` and the ones it calls)
take a partial dict and complete it here, so none of them repeats a default.
"""

from __future__ import annotations

from typing import Any

INFERENCE_DEFAULTS: dict[str, Any] = {
    "chunk_size": 128,  # chunk interior per axis on the network grid
    "overlap": 0.5,  # sliding-window overlap
    "sigma_scale": 0.125,  # Gaussian importance weights (nnU-Net, MONAI)
    "tta": False,  # 8 mirrorings
    "engine": "auto",  # particleseg.inference.engines
    "precision": "auto",
    "cache_dir": None,  # OpenVINO's converted models; None: ~/.cache/particleseg
    "batch_size": 1,  # windows per forward pass
    "num_workers": 0,  # DataLoader workers reading chunks
    "resize": "band",  # particleseg.inference.size_band
}

_REPLACED = {"autocast": "inference.precision (bf16 | fp32 | auto)"}


def resolve_inference(given: dict | None) -> dict[str, Any]:
    """``given`` completed with :data:`INFERENCE_DEFAULTS` (a value of None takes the default).

    Raises:
        ValueError: a key that is not an inference setting (naming what replaced it, if any),
            an unknown engine or precision.
    """
    from particleseg.inference.engines import check_names

    given = dict(given or {})
    unknown = sorted(set(given) - set(INFERENCE_DEFAULTS))
    if unknown:
        hints = [f"{k}: now {_REPLACED[k]}" for k in unknown if k in _REPLACED]
        raise ValueError(
            f"unknown inference setting(s) {unknown}"
            + (f" ({'; '.join(hints)})" if hints else "")
            + f"; the settings are {sorted(INFERENCE_DEFAULTS)}"
        )
    resolved = {k: v if given.get(k) is None else given[k] for k, v in INFERENCE_DEFAULTS.items()}
    check_names(str(resolved["engine"]), str(resolved["precision"]))
    return resolved

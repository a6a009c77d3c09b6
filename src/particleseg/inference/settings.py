"""Predict's ``inference`` and ``outputs`` settings: every default, set once, and the check.

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

OUTPUT_DEFAULTS: dict[str, Any] = {
    "ome_zarr": True,  # instances.ome.zarr (particleseg.io.ome_zarr)
    "tiff_max_bytes": 2**31,  # instances.tif when the labels take at most this
    "border_core": False,  # keep the network-grid border-core map
    "probabilities": False,  # keep the network-grid probabilities (float16)
    "keep_work": False,  # keep .work/
    "overlay": True,  # overlay.png
    "analysis": True,  # particles.csv, the size distribution, report.html
}

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

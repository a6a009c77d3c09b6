"""The model file's metadata: one schema, one writer, one reader.

A checkpoint (``train.py``) or a model file (``python -m particleseg.inference.export``) keeps,
beside its weights, a dict under :data:`CHECKPOINT_KEY` with what inference needs:

- ``net_config``: the network's Hydra config (``_target_`` and arguments);
- ``normalization``: the intensity normalization (:mod:`particleseg.transforms.normalization`);
  ``intensity_stats`` repeats a global z-score's mean and std for versions that read only that;
- ``target_particle_size`` (voxels), ``border_thickness`` (voxels), ``patch_size`` (Z, Y, X);
- optional, added by export: ``postprocess`` (tuned thresholds), ``input_reference`` (grey
  value histograms the input is checked against), ``size_band`` (the validated particle sizes
  on the network grid), ``exported_from`` / ``reexported_from`` (provenance).

:func:`model_metadata` builds it (training and export both call it) and checks every field;
:func:`read_model_metadata` checks a file's and returns it typed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from particleseg.inference.size_band import check_band
from particleseg.transforms.input_reference import check_reference
from particleseg.transforms.normalization import legacy_config, resolve_config

#: The checkpoint key the metadata is stored under.
CHECKPOINT_KEY = "particleseg"
#: Optional fields (export adds them), beside the required ones of :func:`model_metadata`.
OPTIONAL = ("postprocess", "input_reference", "size_band", "exported_from", "reexported_from")


@dataclass(frozen=True)
class ModelMetadata:
    """A model file's metadata, checked and typed (:func:`read_model_metadata`)."""

    net_config: dict
    normalization: dict
    target_particle_size: float
    border_thickness: int
    patch_size: tuple[int, int, int]
    postprocess: dict = field(default_factory=dict)
    input_reference: dict = field(default_factory=dict)
    size_band: tuple[float, float] | None = None
    provenance: dict = field(default_factory=dict)


def zscore_stats(normalization: Mapping | None) -> dict | None:
    """``{"mean", "std"}`` of a ``global_zscore`` scheme, else None (for older readers)."""
    if not normalization or normalization.get("scheme") != "global_zscore":
        return None
    return {"mean": normalization["mean"], "std": normalization["std"]}


def model_metadata(
    *,
    net_config: Mapping | None,
    normalization: Mapping | None,
    target_particle_size: float,
    border_thickness: int,
    patch_size: Sequence[int],
    **optional: Any,
) -> dict:
    """The metadata dict to store under :data:`CHECKPOINT_KEY` (module docstring).

    Args:
        net_config: the network's Hydra config.
        normalization: the normalization config (None while training has not yet fitted it).
        target_particle_size: particle diameter (voxels) the network was trained for.
        border_thickness: border width of the border-core target (voxels).
        patch_size: the network's input window (Z, Y, X).
        **optional: fields of :data:`OPTIONAL`; None values are left out.

    Raises:
        ValueError: for an unknown optional field or an invalid value.
    """
    unknown = sorted(set(optional) - set(OPTIONAL))
    if unknown:
        raise ValueError(f"model metadata: unknown fields {unknown}; known: {list(OPTIONAL)}")
    norm = resolve_config(dict(normalization)) if normalization else None
    target = float(target_particle_size)
    meta: dict[str, Any] = {
        "net_config": dict(net_config) if net_config is not None else None,
        "normalization": norm,
        "intensity_stats": zscore_stats(norm),
        "target_particle_size": target,
        "border_thickness": int(border_thickness),
        "patch_size": [int(p) for p in patch_size],
    }
    given = {k: v for k, v in optional.items() if v is not None}
    if given.get("postprocess"):
        meta["postprocess"] = {str(k): v for k, v in dict(given["postprocess"]).items()}
    if given.get("input_reference"):
        meta["input_reference"] = check_reference(dict(given["input_reference"]))
    if "size_band" in given:
        meta["size_band"] = list(check_band(given["size_band"], target))
    for key in ("exported_from", "reexported_from"):
        if key in given:
            meta[key] = dict(given[key])
    return meta


def read_model_metadata(ckpt: Any, where: str) -> ModelMetadata:
    """The checked metadata of a loaded checkpoint dict.

    Files written before per-scan normalization carry only ``intensity_stats``: they read as a
    global z-score.

    Raises:
        ValueError: naming ``where`` when the metadata is missing or invalid.
    """
    meta = ckpt.get(CHECKPOINT_KEY) if isinstance(ckpt, Mapping) else None
    if (
        not meta
        or not meta.get("net_config")
        or not (meta.get("normalization") or meta.get("intensity_stats"))
    ):
        raise ValueError(
            f"{where}: no particleseg metadata (network config, intensity normalization); "
            "is it a checkpoint written by train.py?"
        )
    try:
        normalization = resolve_config(
            meta.get("normalization") or legacy_config(meta["intensity_stats"])
        )
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{where}: invalid intensity normalization in the model ({err})") from err
    try:
        reference = check_reference(meta["input_reference"]) if meta.get("input_reference") else {}
        target = float(meta["target_particle_size"])
        band = check_band(meta.get("size_band"), target)
        border = int(meta["border_thickness"])
        patch = tuple(int(p) for p in meta["patch_size"])
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{where}: {err}") from err
    return ModelMetadata(
        net_config=dict(meta["net_config"]),
        normalization=normalization,
        target_particle_size=target,
        border_thickness=border,
        patch_size=patch,
        postprocess=dict(meta.get("postprocess") or {}),
        input_reference=dict(reference),
        size_band=band,
        provenance={k: meta[k] for k in ("exported_from", "reexported_from") if k in meta},
    )

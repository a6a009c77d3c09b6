"""What predict.py is asked to segment: scans, their spacing and particle size, resolved.

The particle size decides the resize, so it must come from somewhere explicit, in this order:
``particle_size_px`` (voxels), ``particle_size`` (physical) with a spacing, ``particle_size=auto``
(estimated from the image, :func:`particleseg.analysis.estimate_particle_size`),
``particle_size=model`` (measured by the model itself once it is loaded,
:mod:`particleseg.inference.size_estimate`, from the image's estimate or else the model's own
size), else the image's metadata (its ``.meta.json`` sidecar, or its ``dataset.json`` entry).
Without any of them the run stops with a message saying how to give it.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from particleseg.io import (
    DATASET_JSON,
    SampleMetadata,
    load_dataset,
    read_metadata,
    read_volume,
    read_volume_spacing,
    sidecar_path,
)
from particleseg.io.metadata import HOW_TO_GIVE_METADATA
from particleseg.spacing import check_spacing

log = logging.getLogger(__name__)


@dataclass
class ScanInput:
    """One scan to segment.

    Attributes:
        name: sample name (the file's stem, or the dataset entry's name).
        path: the volume (file or folder of slices).
        shape: (Z, Y, X).
        dtype: numpy dtype name.
        spacing: voxel size (Z, Y, X) or None (unknown; the output then carries none).
        unit: unit of ``spacing``, or None.
        particle_size_px: mean particle diameter in voxels per axis (Z, Y, X). With
            ``particle_size=model`` it is the first guess (the image's estimate, or None where
            that failed) until :func:`particleseg.inference.size_estimate.refine_particle_size`
            replaces it by the model's measurement.
        size_source: where it came from ("particle_size_px", "particle_size", "auto", "model",
            "metadata").
        estimate: the ``particle_size=auto`` or ``model`` estimate as a dict, when one was
            made.
    """

    name: str
    path: Path
    shape: tuple[int, int, int]
    dtype: str
    spacing: tuple[float, float, float] | None
    unit: str | None
    particle_size_px: tuple[float, float, float] | None
    size_source: str
    estimate: dict[str, Any] | None = field(default=None)

    def open(self) -> Any:
        """The scan array, read lazily (memmap or zarr where the format allows)."""
        return read_volume(self.path)


def _positive(value: Any, key: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"{where}: {key} must be a positive number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{where}: {key} must be finite, got {value!r}")
    return float(value)


def resolve_scan(
    path: str | os.PathLike,
    *,
    name: str | None = None,
    metadata: SampleMetadata | None = None,
    particle_size: float | str | None = None,
    particle_size_px: float | None = None,
    spacing: Any = None,
) -> ScanInput:
    """Open a scan lazily and decide its particle size in voxels.

    Args:
        path: the volume.
        name: sample name; default the file name without its suffixes.
        metadata: dataset.json metadata of the sample, if any (else its sidecar is read when
            present).
        particle_size: mean diameter in the spacing's unit, or ``"auto"`` or ``"model"``.
        particle_size_px: mean diameter in voxels (wins over the others).
        spacing: voxel size (Z, Y, X) or one number; default the volume's own, then the
            metadata's.

    Returns:
        The resolved :class:`ScanInput`.

    Raises:
        ValueError: unreadable input (naming the file), bad values, or no way to know the
            particle size (saying how to give it).
    """
    path = Path(path)
    array = read_volume(path)  # raises ValueError naming the file
    shape = tuple(int(s) for s in array.shape)
    if metadata is None and sidecar_path(path).is_file():
        metadata = read_metadata(path)
    unit = metadata.unit if metadata is not None else None
    if spacing is not None:
        spacing = check_spacing(spacing, where=str(path))
    else:
        spacing = read_volume_spacing(path)
    if spacing is None and metadata is not None:
        spacing = tuple(metadata.spacing)
    name = name or path.name.split(".")[0]
    estimate = None
    if particle_size_px is not None:
        size = (_positive(particle_size_px, "particle_size_px", str(path)),) * 3
        source = "particle_size_px"
    elif isinstance(particle_size, str) and particle_size.strip().lower() == "auto":
        from particleseg.analysis import estimate_particle_size

        log.info("%s: estimating the particle size from the image", path)
        try:
            est = estimate_particle_size(array, spacing=spacing)
        except ValueError as err:
            raise ValueError(
                f"{path}: particle_size=auto failed ({err}); give particle_size_px=... "
                "(mean diameter in voxels) instead"
            ) from err
        size = tuple(float(v) for v in est.diameter_px_zyx)
        source, estimate = "auto", est.to_dict()
        log.info("%s: estimated mean particle diameter %.1f voxels", path, est.diameter_px)
    elif isinstance(particle_size, str) and particle_size.strip().lower() == "model":
        from particleseg.analysis import estimate_particle_size

        size, source = None, "model"
        try:  # only the first guess: the model measures once it is loaded
            est = estimate_particle_size(array, spacing=spacing)
            size, estimate = tuple(float(v) for v in est.diameter_px_zyx), est.to_dict()
        except ValueError as err:
            log.info(
                "%s: no first guess from the image (%s); the model starts at its size", path, err
            )
    elif particle_size is not None:
        value = _positive(particle_size, "particle_size", str(path))
        if spacing is None:
            raise ValueError(
                f"{path}: particle_size={value} is in physical units but the scan has no "
                "spacing; also give spacing=[z,y,x], or give particle_size_px=... (voxels)"
            )
        size = tuple(value / s for s in spacing)
        source = "particle_size"
    elif metadata is not None:
        size = tuple(float(v) for v in metadata.particle_size_voxels())
        source = "metadata"
    else:
        raise ValueError(
            f"{path}: the mean particle size is unknown, and the resize to the model's particle "
            "size needs it. Pass particle_size_px=N (diameter in voxels), or particle_size=D "
            "with spacing=[z,y,x] (same unit), or particle_size=auto to estimate it from the "
            f"image; or {HOW_TO_GIVE_METADATA.split('; or as predict')[0]}"
        )
    return ScanInput(
        name=name,
        path=path,
        shape=shape,
        dtype=str(array.dtype),
        spacing=spacing,
        unit=unit,
        particle_size_px=size,
        size_source=source,
        estimate=estimate,
    )


def list_scans(
    path: str | os.PathLike, splits: list[str] | None = None, **sizes
) -> list[ScanInput]:
    """The scans of ``path``: one volume, or every sample of a dataset folder.

    Args:
        path: a volume, or a folder holding ``dataset.json``.
        splits: dataset splits to take (default all).
        **sizes: ``particle_size``, ``particle_size_px``, ``spacing`` overrides (for every scan).

    Returns:
        The resolved scans.
    """
    path = Path(path)
    if not path.exists():
        raise ValueError(f"{path}: input not found")
    if path.is_dir() and (path / DATASET_JSON).is_file():
        dataset = load_dataset(path)
        entries = [e for e in dataset if splits is None or e.split in splits]
        if not entries:
            raise ValueError(f"{path / DATASET_JSON}: no samples in splits {splits}")
        return [resolve_scan(e.image, name=e.name, metadata=e.metadata, **sizes) for e in entries]
    return [resolve_scan(path, **sizes)]

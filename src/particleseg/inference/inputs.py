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
    read_sidecar_spacing,
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
    unit, meta_spacing = None, None
    if metadata is None and sidecar_path(path).is_file():
        if particle_size_px is None and particle_size is None:
            metadata = read_metadata(path)  # its particle size is the one there is
        else:  # the size comes from the command: a sidecar may hold the spacing only
            meta_spacing, unit = read_sidecar_spacing(path)
    if metadata is not None:
        meta_spacing, unit = tuple(metadata.spacing), metadata.unit
    if spacing is not None:
        spacing = check_spacing(spacing, where=str(path))
    else:
        spacing = read_volume_spacing(path)
    if spacing is None:
        spacing = meta_spacing
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
        path: a volume, a folder of 2D slices (one scan), a folder of 3D scans (each with its
            sidecar, or a ``metadata.json`` for all: :func:`folder_metadata`), or a folder
            holding ``dataset.json``.
        splits: dataset splits to take (default all).
        **sizes: ``particle_size``, ``particle_size_px``, ``spacing`` overrides (for every scan).

    Returns:
        The resolved scans.
    """
    path = Path(path)
    kind = input_kind(path)
    if kind == "dataset":
        dataset = load_dataset(path)
        entries = [e for e in dataset if splits is None or e.split in splits]
        if not entries:
            raise ValueError(f"{path / DATASET_JSON}: no samples in splits {splits}")
        return [resolve_scan(e.image, name=e.name, metadata=e.metadata, **sizes) for e in entries]
    if kind == "scans":
        volumes = folder_volumes(path)
        log.info("%s: a folder of %d 3D scans, predicted one by one", path, len(volumes))
        table = folder_metadata(path, volumes)
        return [resolve_scan(v, metadata=table.get(v), **sizes) for v in volumes]
    if kind == "slices":
        log.info("%s: a folder of 2D slices, read as one scan", path)
    return [resolve_scan(path, **sizes)]


def _stem(path: Path) -> str:
    return path.name.split(".")[0]


def _is_3d(path: Path) -> bool:
    """Whether a file or store holds a 3D image (more than one Z slice), read from its header."""
    import numpy as np
    import tifffile

    if path.is_dir():
        return True  # a zarr store: read_volume checks it
    try:
        if path.suffix.lower() == ".npy":
            shape = np.load(path, mmap_mode="r").shape
        else:
            with tifffile.TiffFile(path) as tif:
                shape = tif.series[0].shape if tif.series else ()
                if len(shape) == 2 and len(tif.pages) > 1:
                    shape = (len(tif.pages), *shape)
    except (OSError, ValueError, tifffile.TiffFileError) as err:
        raise ValueError(f"{path}: cannot read its header ({err})") from err
    return len(shape) == 3 and shape[0] > 1


def folder_volumes(folder: Path) -> list[Path]:
    """The 3D scans of a plain folder, in natural order ([] when there are none).

    They are ``*.tif``/``*.tiff`` files of more than one page, ``*.npy`` files and ``*.zarr``
    (``*.ome.zarr``) stores. The first file decides: a folder starting with a 2D image holds the
    slices of one scan (none returned); one starting with a scan and mixing in 2D images is
    refused.
    """
    from particleseg.io._tiff import natural_sort_key

    found = []
    for f in folder.iterdir():
        name = f.name.lower()
        if f.name.startswith(".") or name.endswith(".meta.json"):
            continue
        if f.is_dir() and name.endswith(".zarr"):
            found.append(f)
        elif f.is_file() and name.endswith((".tif", ".tiff", ".npy")):
            found.append(f)
    found.sort(key=lambda f: natural_sort_key(f.name))
    if not found or not _is_3d(found[0]):
        return []  # the slices of one scan: read_slices checks every one of them
    volumes = [f for f in found if _is_3d(f)]
    flat = [f.name for f in found if f not in volumes]
    if volumes and flat:
        raise ValueError(
            f"{folder}: holds both 3D scans ({volumes[0].name}, ...) and 2D images "
            f"({flat[0]}, ...); put the scans, or the slices of one scan, in a folder of their own"
        )
    return volumes


def input_kind(path: Path) -> str:
    """What ``path`` is: ``"dataset"``, ``"scans"``, ``"slices"`` or ``"volume"``.

    A folder with dataset.json; a folder of 3D scans; a folder of 2D slices of one scan; one
    file or store.

    Raises:
        ValueError: the path does not exist.
    """
    if not path.exists():
        raise ValueError(f"{path}: input not found")
    if not path.is_dir() or path.name.lower().endswith(".zarr"):
        return "volume"
    if (path / DATASET_JSON).is_file():
        return "dataset"
    if (path / "zarr.json").exists() or (path / ".zarray").exists():
        return "volume"
    return "scans" if folder_volumes(path) else "slices"


def folder_metadata(folder: Path, volumes: list[Path]) -> dict[Path, SampleMetadata]:
    """Per-scan metadata of a folder's ``metadata.json``, or {} when there is none.

    The file maps scan names (file names without suffixes) to ``{"spacing": ..., "unit": ...,
    "particle_size": ... or "particle_size_px": ...}``; a single number as spacing means
    isotropic voxels. A scan it does not name keeps its own sidecar.

    Raises:
        ValueError: naming ``metadata.json``: unreadable, an entry for no scan, a bad entry.
    """
    import json

    path = folder / "metadata.json"
    if not path.is_file():
        return {}
    try:
        table = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: cannot read it (malformed JSON?): {err}") from err
    if not isinstance(table, dict):
        raise ValueError(f"{path}: expected {{scan name: {{spacing, particle_size, ...}}}}")
    by_name = {_stem(v): v for v in volumes}
    unknown = sorted(set(table) - set(by_name))
    if unknown:
        raise ValueError(
            f"{path}: entries for scans that are not in the folder: {', '.join(unknown)} "
            f"(scans: {', '.join(sorted(by_name))})"
        )
    out = {}
    for name, entry in table.items():
        entry = dict(entry) if isinstance(entry, dict) else entry
        if isinstance(entry, dict) and isinstance(entry.get("spacing"), int | float):
            entry["spacing"] = [entry["spacing"]] * 3
        out[by_name[name]] = SampleMetadata.from_dict(entry, f"{path} [{name}]")
    return out

"""Instance labels as an OME-Zarr label image that napari and the NGFF viewers open with scale.

:func:`write_label_ome_zarr` writes NGFF **0.4** (zarr format 2, ``/`` chunk keys): a
``multiscales`` group with ``image-label`` metadata, axes ``z, y, x`` of type ``space`` with the
scan's unit, and a pyramid that halves every axis per level until the largest fits
``top_size``. 0.4 rather than 0.5 because it is the version every current reader opens:
ome-zarr-py and the napari-ome-zarr plugin read both, but Fiji's OME-Zarr readers
(n5-zarr, MoBIE, BigDataViewer) and older napari plugins read zarr format 2 only.

Coarser levels take every second voxel (nearest), never an average: a label id is a name, and
the mean of two names is a third particle's. With that sampling voxel ``i`` of level ``k`` is
voxel ``2**k * i`` of level 0, so each level's transform is a scale only (no translation).

Every level is copied block by block from the one above it, so the memory used is a few blocks
whatever the volume. The group is written into a hidden sibling and renamed into place when
complete: a crash never leaves a partial ``instances.ome.zarr`` that looks whole.

The metadata is written here (about 30 lines of JSON) rather than by ome-zarr-py, whose writer
pulls s3fs and botocore into every install; the tests read the result back with ome-zarr-py's
reader and validate it with ome-zarr-models, so the two cannot drift apart unnoticed.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numcodecs
import numpy as np
import zarr

from particleseg.io.atomic import atomic_path
from particleseg.io.validation import check_volume_shape

#: The NGFF version written (module docstring: why 0.4).
NGFF_VERSION = "0.4"
#: The pyramid stops at the first level whose largest axis is at most this many voxels.
TOP_SIZE = 256
#: Chunk edge of every level (voxels): 64^3 uint32 is 1 MiB before compression.
CHUNK = 64
#: Common spellings of units mapped to the UDUNITS-2 names NGFF requires.
_NGFF_UNITS = {
    "um": "micrometer",
    "µm": "micrometer",
    "μm": "micrometer",
    "micron": "micrometer",
    "microns": "micrometer",
    "micrometre": "micrometer",
    "nm": "nanometer",
    "nanometre": "nanometer",
    "mm": "millimeter",
    "millimetre": "millimeter",
    "cm": "centimeter",
    "m": "meter",
    "px": None,
    "pixel": None,
    "voxel": None,
}
_NGFF_SPACE_UNITS = {"angstrom", "nanometer", "micrometer", "millimeter", "centimeter", "meter"}


def ngff_unit(unit: str | None) -> str | None:
    """The NGFF (UDUNITS-2) spelling of ``unit``, or None when it is none NGFF knows."""
    if not unit:
        return None
    name = unit.strip().lower()
    name = _NGFF_UNITS.get(name, name)
    return name if name in _NGFF_SPACE_UNITS else None


def pyramid_shapes(shape: Sequence[int], top_size: int = TOP_SIZE) -> list[tuple[int, ...]]:
    """Shapes of the pyramid's levels: ``shape``, then every axis halved (rounded up).

    Levels are added until the largest axis is at most ``top_size`` (at least one level).
    """
    if top_size < 1:
        raise ValueError(f"top_size must be at least 1, got {top_size}")
    shapes = [tuple(int(s) for s in shape)]
    while max(shapes[-1]) > top_size and max(shapes[-1]) > 1:
        shapes.append(tuple((s + 1) // 2 for s in shapes[-1]))
    return shapes


def multiscales_metadata(
    n_levels: int, spacing: Sequence[float] | None, unit: str | None, name: str
) -> dict[str, Any]:
    """The group attributes: NGFF 0.4 ``multiscales`` and ``image-label`` for ``n_levels``."""
    scale = np.asarray(spacing if spacing is not None else (1.0, 1.0, 1.0), float)
    space_unit = ngff_unit(unit) if spacing is not None else None
    axes = []
    for axis in ("z", "y", "x"):
        entry = {"name": axis, "type": "space"}
        if space_unit:
            entry["unit"] = space_unit
        axes.append(entry)
    datasets = [
        {
            "path": str(k),
            "coordinateTransformations": [
                {"type": "scale", "scale": [float(s) for s in scale * 2**k]}
            ],
        }
        for k in range(n_levels)
    ]
    return {
        "multiscales": [
            {
                "version": NGFF_VERSION,
                "name": name,
                "axes": axes,
                "datasets": datasets,
                "type": "nearest",
                "metadata": {"method": "every second voxel per axis (labels are not averaged)"},
            }
        ],
        "image-label": {"version": NGFF_VERSION},
    }


def _blocks(shape: Sequence[int], block: Sequence[int]):
    """Slices tiling ``shape`` with boxes of ``block``."""
    ranges = [range(0, s, b) for s, b in zip(shape, block, strict=True)]
    for start in itertools.product(*ranges):
        yield tuple(slice(a, min(a + b, s)) for a, b, s in zip(start, block, shape, strict=True))


def _new_level(group: zarr.Group, k: int, shape: tuple[int, ...], dtype: Any) -> zarr.Array:
    return group.create_array(
        str(k),
        shape=shape,
        chunks=tuple(min(CHUNK, s) for s in shape),
        dtype=dtype,
        compressors=numcodecs.Blosc(cname="zstd", clevel=3, shuffle=numcodecs.Blosc.BITSHUFFLE),
        chunk_key_encoding={"name": "v2", "separator": "/"},
        fill_value=0,
    )


def write_label_ome_zarr(
    path: str | os.PathLike,
    labels: Any,
    spacing: Sequence[float] | None = None,
    unit: str | None = None,
    *,
    name: str = "instances",
    top_size: int = TOP_SIZE,
) -> Path:
    """Write instance labels as an OME-Zarr (NGFF 0.4) multiscale label image, atomically.

    Args:
        path: the ``.ome.zarr`` folder to write (replaced if it exists).
        labels: (Z, Y, X) integer labels, any array that slices like numpy (a zarr array is
            read block by block). Ids are kept as they are (ids of ``particles.csv``).
        spacing: voxel size (Z, Y, X) in ``unit``; None writes a unit scale without unit.
        unit: the spacing's unit; written in its NGFF spelling (``um`` -> ``micrometer``) and
            left out when NGFF has no name for it.
        name: the multiscale's name (napari's layer name).
        top_size: the pyramid stops when the largest axis is at most this.

    Returns:
        ``path``.

    Raises:
        ValueError: naming the path, for labels that are not 3D integers, or a spacing that is
            not three positive numbers.
    """
    path = Path(path)
    check_volume_shape(labels, path)
    dtype = np.dtype(labels.dtype)
    if dtype.kind not in "ui":
        raise ValueError(
            f"{path}: labels must be integers, got dtype {dtype} (shape {tuple(labels.shape)})"
        )
    if spacing is not None and (len(spacing) != 3 or not all(float(s) > 0 for s in spacing)):
        raise ValueError(f"{path}: spacing must be three positive numbers, got {spacing}")
    shapes = pyramid_shapes(labels.shape, top_size)
    with atomic_path(path) as tmp:
        group = zarr.open_group(str(tmp), mode="w", zarr_format=2)
        previous = labels
        for k, shape in enumerate(shapes):
            level = _new_level(group, k, shape, dtype)
            step = 1 if k == 0 else 2
            for box in _blocks(shape, (CHUNK, 4 * CHUNK, 4 * CHUNK)):
                source = tuple(slice(b.start * step, b.stop * step, step) for b in box)
                level[box] = np.asarray(previous[source])
            previous = level
        group.attrs.update(multiscales_metadata(len(shapes), spacing, unit, name))
    return path

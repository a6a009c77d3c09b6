"""TIFF metadata of other tools: label TIFFs for ImageJ/Fiji; spacing from ImageJ and OME-TIFF.

- :func:`write_label_tiff`: instance labels as an ImageJ hyperstack (axes ZYX) that Fiji opens
  with its physical scale: the voxel depth and unit in the ImageJ description, the pixel width
  and height as X/Y resolution. ImageJ has no 32-bit integer type: labels are uint16 while there
  are fewer than 65,536 particles, else 32-bit float, which holds every id exactly up to
  16,777,216 (with a warning: a float image is not a label image to every plugin); beyond that no
  TIFF is written (a warning points to the zarr). Label ids are the ids of ``particles.csv``.
- :func:`tiff_spacing`: the voxel size (Z, Y, X) a TIFF records, from particleseg's own JSON
  description, ImageJ's description and resolution, or OME-XML ``PhysicalSize{X,Y,Z}``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tifffile

from particleseg.io import _slabs
from particleseg.io._slabs import iter_slabs
from particleseg.io.atomic import atomic_path
from particleseg.io.validation import check_volume_shape

#: Largest id of a uint16 label TIFF; above it labels are written as float32.
MAX_UINT16_LABEL = 65_535
#: Largest id a float32 holds exactly (2**24); above it no ImageJ TIFF is written.
MAX_FLOAT32_LABEL = 16_777_216
#: ImageJ's spelling of units that have another common one.
_IMAGEJ_UNITS = {"um": "micron", "µm": "micron", "μm": "micron", "microns": "micron"}


def label_tiff_dtype(n_labels: int) -> tuple[np.dtype | None, str | None]:
    """(dtype, warning): the ImageJ-readable type for ids 1..``n_labels`` (module docstring)."""
    if n_labels <= MAX_UINT16_LABEL:
        return np.dtype(np.uint16), None
    if n_labels <= MAX_FLOAT32_LABEL:
        return np.dtype(np.float32), (
            f"{n_labels} particles do not fit a 16-bit label TIFF: instances.tif holds the ids "
            "as 32-bit float (ImageJ has no 32-bit integer type; every id is exact up to "
            f"{MAX_FLOAT32_LABEL}); instances.zarr has them as uint32"
        )
    return None, (
        f"{n_labels} particles are more than an ImageJ TIFF holds exactly: no instances.tif, "
        "use instances.zarr (uint32)"
    )


def write_label_tiff(
    path: str | os.PathLike,
    labels: Any,
    n_labels: int,
    spacing: Sequence[float] | None = None,
    unit: str | None = None,
) -> tuple[Path | None, str | None]:
    """Write instance labels as an ImageJ hyperstack TIFF (atomically, slab by slab).

    Args:
        path: the ``.tif`` to write.
        labels: (Z, Y, X) integer labels, ids 0..``n_labels`` (numpy, memmap or zarr).
        n_labels: the largest id.
        spacing: voxel size (Z, Y, X), or None (ImageJ then shows pixels).
        unit: unit of ``spacing`` ("mm", "um", ...); None: no unit.

    Returns:
        (the path written or None, a warning or None): see :func:`label_tiff_dtype`.
    """
    check_volume_shape(labels, Path(path))
    dtype, warning = label_tiff_dtype(int(n_labels))
    if dtype is None:
        return None, warning

    def pages() -> Iterator[np.ndarray]:
        for _, slab in iter_slabs(labels, max_bytes=_slabs.SLAB_BYTES):
            yield from slab.astype(dtype)

    metadata: dict[str, Any] = {"axes": "ZYX"}
    kwargs: dict[str, Any] = {}
    if spacing is not None:
        z, y, x = (float(s) for s in spacing)
        metadata["spacing"] = z
        kwargs["resolution"] = (1.0 / x, 1.0 / y)
    if unit:
        metadata["unit"] = _IMAGEJ_UNITS.get(unit, unit)
    p = Path(path)
    with atomic_path(p) as tmp:
        tifffile.imwrite(
            tmp,
            pages(),
            shape=tuple(labels.shape),
            dtype=dtype,
            imagej=True,
            metadata=metadata,
            **kwargs,
        )
    return p, warning


def _resolution_size(page: Any, tag: str) -> float | None:
    """Pixel size from a resolution tag (pixels per unit), None when absent or degenerate."""
    value = page.tags.get(tag)
    if value is None:
        return None
    num, den = value.value
    return float(den) / float(num) if num and den else None


def _ome_spacing(xml: str) -> tuple[float, float, float] | None:
    image = tifffile.xml2dict(xml).get("OME", {}).get("Image", {})
    pixels = (image[0] if isinstance(image, list) else image).get("Pixels", {})
    sizes = [pixels.get(f"PhysicalSize{a}") for a in "ZYX"]
    if sizes[0] is None and sizes[1] is not None:  # a 2D stack: Z as thick as a pixel
        sizes[0] = sizes[1]
    if any(s is None for s in sizes):
        return None
    return tuple(float(s) for s in sizes)


def tiff_spacing(path: str | os.PathLike) -> tuple[float, float, float] | None:
    """The voxel size (Z, Y, X) recorded in a TIFF file, or None.

    Looked for, in order: particleseg's JSON description (``"spacing"``); ImageJ's description
    (``spacing``, the voxel depth) with the X/Y resolution tags; OME-XML ``PhysicalSize{Z,Y,X}``.
    """
    with tifffile.TiffFile(path) as tif:
        for md in tif.shaped_metadata or ():
            if md.get("spacing") is not None and len(md["spacing"]) == 3:
                return tuple(float(s) for s in md["spacing"])
        page = tif.pages.first
        ij = tif.imagej_metadata
        if ij is not None and ij.get("spacing") is not None:
            x, y = _resolution_size(page, "XResolution"), _resolution_size(page, "YResolution")
            if x is not None and y is not None:
                return float(ij["spacing"]), y, x
        if tif.is_ome and tif.ome_metadata:
            return _ome_spacing(tif.ome_metadata)
    return None

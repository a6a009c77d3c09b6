"""Read and write 3D volumes (Z, Y, X): .npy, TIFF/BigTIFF stacks, folders of 2D slices, zarr v3.

Reading is lazy wherever the format allows: ``.npy`` and uncompressed contiguous TIFF give an
``np.memmap``; compressed TIFF, folders of slices and zarr give a read-only ``zarr.Array``. Both
support numpy slicing, ``.shape`` and ``.dtype``; nothing is loaded until sliced.

Writing copies the input in slabs of Z slices (so a lazy input is never loaded whole) into a hidden
temporary sibling and renames it into place only when complete.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from particleseg.io._slabs import iter_slabs
from particleseg.io._tiff import (
    SUPPORTED,
    TIFF_SUFFIXES,
    InputError,
    list_slices,
    natural_sort_key,
    read_slices,
    read_tiff,
    write_slices,
    write_tiff,
)
from particleseg.io.atomic import atomic_path
from particleseg.io.validation import check_volume_shape
from particleseg.spacing import check_spacing

PathLike = str | os.PathLike[str]
VolumeArray = np.ndarray | zarr.Array
"""What :func:`read_volume` returns: ``np.memmap`` (an ndarray) or a read-only ``zarr.Array``."""

VOLUME_SUFFIXES = (".npy", *TIFF_SUFFIXES, ".zarr")
DEFAULT_CHUNKS = (128, 128, 128)


def volume_format(path: PathLike) -> str:
    """Return the format of a volume path: ``"npy"``, ``"tiff"``, ``"zarr"`` or ``"slices"``.

    An existing directory is ``"zarr"`` when its name ends in ``.zarr`` or it holds zarr metadata,
    otherwise ``"slices"``; a non-existing path without a suffix is ``"slices"`` (for writing).

    Args:
        path: Volume file or directory.

    Returns:
        The format name.

    Raises:
        ValueError: If the suffix is not supported.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".npy":
        return "npy"
    if suffix in TIFF_SUFFIXES:
        return "tiff"
    if suffix == ".zarr":
        return "zarr"
    if p.is_dir():
        if any((p / f).is_file() for f in ("zarr.json", ".zarray", ".zgroup")):
            return "zarr"
        return "slices"
    if not suffix and not p.exists():
        return "slices"
    found = repr(suffix) if suffix else "(a file without suffix)"
    raise ValueError(f"{p}: unsupported volume format {found}; expected {SUPPORTED}")


# ----------------------------------------------------------------------------------------- reading


def read_volume(path: PathLike) -> VolumeArray:
    """Open a 3D volume lazily.

    Args:
        path: ``.npy`` file, ``.tif``/``.tiff`` file (classic or BigTIFF, multi-page), ``.zarr``
            directory holding a zarr array (v2 or v3), or a directory of 2D ``.tif``/``.tiff``
            slices (stacked along Z in natural sort order: ``z2`` before ``z10``; hidden files are
            ignored).

    Returns:
        Array-like of shape (Z, Y, X) with the file's dtype: ``np.memmap`` (read-only) for
        ``.npy`` and uncompressed contiguous TIFF, otherwise a read-only ``zarr.Array``. Slice it
        (``vol[z0:z1]``) to get numpy arrays.

    Raises:
        ValueError: Naming ``path``, if it does not exist, has an unsupported format, cannot be
            read (truncated, corrupt, not the format its suffix says), is not 3D, or has a
            zero-length axis.
    """
    p = Path(path)
    if not p.exists():
        raise ValueError(f"{p}: volume not found (no such file or directory)")
    fmt = volume_format(p)
    try:
        array = _READERS[fmt](p)
    except InputError:
        raise
    except Exception as exc:
        raise ValueError(
            f"{p}: cannot read as {fmt} volume (unreadable, truncated or corrupt): "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    check_volume_shape(array, p)
    return array


def _read_npy(p: Path) -> np.ndarray:
    if not p.is_file():
        raise InputError(f"{p}: expected a .npy file, found a directory")
    array = np.load(p, mmap_mode="r", allow_pickle=False)
    if not isinstance(array, np.ndarray):
        raise InputError(f"{p}: expected a single .npy array, got {type(array).__name__}")
    return array


def _read_zarr(p: Path) -> zarr.Array:
    node = zarr.open(store=str(p), mode="r")
    if isinstance(node, zarr.Array):
        return node
    level, _ = ome_zarr_level0(node, p)  # an OME-Zarr image: its full-resolution level
    return level


def _multiscales(group: zarr.Group) -> list | None:
    attrs = dict(group.attrs)
    return (attrs.get("ome") or {}).get("multiscales") or attrs.get("multiscales")


def ome_zarr_level0(group: zarr.Group, p: Path) -> tuple[zarr.Array, tuple[float, ...] | None]:
    """Level 0 of an OME-Zarr (NGFF 0.4 or 0.5) image group, and its spatial scale (Z, Y, X).

    The scale is the product of the ``coordinateTransformations`` ``scale`` entries of the
    multiscales and of the dataset (None when there are none). Non-spatial axes of size 1
    (``t``, ``c``) are dropped.

    Raises:
        InputError: naming ``p``, when the group is not a 3D OME-Zarr image.
    """
    multiscales = _multiscales(group)
    if not multiscales:
        raise InputError(f"{p}: a zarr group without OME-Zarr multiscales; expected {SUPPORTED}")
    ms = multiscales[0]
    dataset = ms["datasets"][0]
    array = group[dataset["path"]]
    axes = [a["name"] if isinstance(a, dict) else a for a in ms.get("axes", [])]
    axes = axes or ["z", "y", "x"][-array.ndim :]
    scale = np.ones(len(axes))
    for transform in [
        *ms.get("coordinateTransformations", []),
        *dataset.get("coordinateTransformations", []),
    ]:
        if transform.get("type") == "scale":
            scale = scale * np.asarray(transform["scale"], float)
    keep = [i for i, a in enumerate(axes) if a in ("z", "y", "x")]
    extra = [i for i in range(len(axes)) if i not in keep]
    if len(keep) != 3 or any(array.shape[i] != 1 for i in extra):
        raise InputError(
            f"{p}: OME-Zarr image with axes {axes} and shape {array.shape}; expected one 3D "
            "(z, y, x) image"
        )
    if extra:
        index = tuple(0 if i in extra else slice(None) for i in range(len(axes)))
        array = _Squeezed(array, index)
    return array, tuple(float(scale[i]) for i in keep)


class _Squeezed:
    """A zarr array with its leading size-1 axes (t, c) indexed away; sliced like a 3D array."""

    def __init__(self, array: zarr.Array, index: tuple) -> None:
        self._array, self._index = array, index
        self.shape = tuple(s for s, i in zip(array.shape, index, strict=True) if i != 0)
        self.dtype = array.dtype
        self.ndim = 3
        self.chunks = tuple(c for c, i in zip(array.chunks, index, strict=True) if i != 0)

    def __getitem__(self, key):
        key = key if isinstance(key, tuple) else (key,)
        if any(k is Ellipsis for k in key):
            at = key.index(Ellipsis)
            key = key[:at] + (slice(None),) * (4 - len(key)) + key[at + 1 :]
        key = key + (slice(None),) * (3 - len(key))
        parts = iter(key)
        full = tuple(0 if i == 0 else next(parts) for i in self._index)
        return self._array[full]

    def __array__(self, dtype=None, copy=None):
        out = self[(slice(None),) * 3]
        return out if dtype is None else out.astype(dtype)


_READERS: dict[str, Callable[[Path], VolumeArray]] = {
    "npy": _read_npy,
    "tiff": read_tiff,
    "zarr": _read_zarr,
    "slices": read_slices,
}


def read_volume_spacing(path: PathLike) -> tuple[float, float, float] | None:
    """Return the spacing (Z, Y, X) stored inside a volume by :func:`write_volume`, if any.

    Zarr arrays keep it in the ``"spacing"`` attribute, TIFF files in their JSON image
    description, or as ImageJ or OME-TIFF metadata (:func:`particleseg.io.imagej.tiff_spacing`).
    ``.npy`` files and folders of slices carry none (use the metadata sidecar).

    Args:
        path: Volume path.

    Returns:
        The spacing, or None if the volume does not record one.

    Raises:
        ValueError: If the volume cannot be read.
    """
    p = Path(path)
    arr = read_volume(p)
    spacing = None
    if isinstance(arr, zarr.Array):
        spacing = arr.attrs.get("spacing")
    if spacing is None and volume_format(p) == "zarr":
        node = zarr.open(store=str(p), mode="r")
        if isinstance(node, zarr.Group):
            spacing = ome_zarr_level0(node, p)[1]
    if spacing is None and volume_format(p) == "tiff":
        from particleseg.io.imagej import tiff_spacing

        spacing = tiff_spacing(p)
    if spacing is None or len(spacing) != 3:
        return None
    return tuple(float(s) for s in spacing)


# ----------------------------------------------------------------------------------------- writing


def write_volume(
    path: PathLike,
    array: Any,
    *,
    spacing: Sequence[float] | None = None,
    chunks: Sequence[int] | None = None,
) -> Path:
    """Write a 3D volume atomically, in the format given by the suffix of ``path``.

    ``.npy``: standard npy. ``.tif``/``.tiff``: uncompressed BigTIFF, one page per Z slice, memory-
    mappable on read. ``.zarr``: zarr v3 array with ``chunks`` (default (128, 128, 128), clipped
    to the shape) and zarr's default compressor (zstd). No suffix: a folder of 2D TIFF slices
    ``slice_00000.tif``... The data are copied in slabs of Z slices (so ``np.memmap``/``zarr``
    inputs are never loaded whole) into a hidden temporary sibling, renamed onto ``path`` only when
    complete; an existing ``path`` is replaced. If anything fails, the temporary is removed and
    ``path`` is left as it was (absent if it did not exist).

    Args:
        path: Destination. Missing parent folders are created.
        array: Array-like of shape (Z, Y, X) with ``shape``, ``dtype`` and numpy slicing
            (ndarray, ``np.memmap``, ``zarr.Array``...); any dtype the format supports.
        spacing: Optional voxel spacing (Z, Y, X) in physical units, stored in the zarr
            attributes (``"spacing"``) or in the TIFF description and X/Y resolution.
        chunks: Zarr chunk shape (ignored by the other formats).

    Returns:
        ``Path(path)``.

    Raises:
        ValueError: If the suffix is unsupported, ``array`` is not a non-empty 3D array, or
            ``spacing`` is not 3 positive numbers.
    """
    p = Path(path)
    fmt = _write_format(p)
    check_volume_shape(array, p)
    spacing_list = _spacing_list(spacing, p)
    chunk_shape = _clip_chunks(chunks, tuple(array.shape), p) if fmt == "zarr" else None
    p.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(p) as tmp:
        if fmt == "npy":
            _write_npy(tmp, array)
        elif fmt == "tiff":
            write_tiff(tmp, array, spacing_list)
        elif fmt == "zarr":
            _write_zarr(tmp, array, spacing_list, chunk_shape)
        else:
            write_slices(tmp, array)
    return p


def _write_format(p: Path) -> str:
    suffix = p.suffix.lower()
    if suffix in (".npy", ".zarr"):
        return suffix[1:]
    if suffix in TIFF_SUFFIXES:
        return "tiff"
    if not suffix:
        return "slices"
    raise ValueError(
        f"{p}: unsupported volume format {suffix!r}; expected .npy, .tif/.tiff, .zarr, or no "
        "suffix for a folder of 2D TIFF slices"
    )


def _spacing_list(spacing: Sequence[float] | None, p: Path) -> list[float] | None:
    if spacing is None:
        return None
    return list(check_spacing(spacing, where=str(p), isotropic_scalar=False))


def _write_npy(tmp: Path, array: Any) -> None:
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=array.dtype, shape=tuple(array.shape))
    try:
        for z0, slab in iter_slabs(array):
            out[z0 : z0 + len(slab)] = slab
        out.flush()
    finally:
        del out


def _clip_chunks(
    chunks: Sequence[int] | None, shape: tuple[int, ...], p: Path
) -> tuple[int, int, int]:
    """Validate the zarr chunk shape and clip it to the array shape."""
    chunks = tuple(DEFAULT_CHUNKS if chunks is None else chunks)
    if len(chunks) != 3 or not all(isinstance(c, int | np.integer) and c > 0 for c in chunks):
        raise ValueError(f"{p}: chunks must be 3 positive integers (Z, Y, X), got {chunks!r}")
    z, y, x = (min(int(c), int(s)) for c, s in zip(chunks, shape, strict=True))
    return (z, y, x)


def _write_zarr(
    tmp: Path, array: Any, spacing: list[float] | None, chunk_shape: tuple[int, int, int]
) -> None:
    shape = tuple(int(s) for s in array.shape)
    out = zarr.create_array(
        store=str(tmp),
        shape=shape,
        dtype=array.dtype,
        chunks=chunk_shape,
        zarr_format=3,
        attributes={"spacing": spacing} if spacing else {},
    )
    for z0, slab in iter_slabs(array, multiple=chunk_shape[0]):
        out[z0 : z0 + len(slab)] = slab


__all__ = [
    "DEFAULT_CHUNKS",
    "VOLUME_SUFFIXES",
    "VolumeArray",
    "list_slices",
    "natural_sort_key",
    "read_volume",
    "read_volume_spacing",
    "volume_format",
    "write_volume",
]

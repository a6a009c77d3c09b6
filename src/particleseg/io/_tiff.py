"""TIFF internals of :mod:`particleseg.io.volumes`: stacks, folders of 2D slices, completeness.

tifffile logs (rather than raises) when an IFD chain is cut short, and lazily opened data are only
read when sliced, so a truncated file is detected here up front: by tifffile's warnings and by
checking that every data strip lies inside the file.
"""

from __future__ import annotations

import logging
import os
import re
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import tifffile
import zarr

from particleseg.io import _slabs
from particleseg.io._slabs import iter_slabs
from particleseg.io.validation import check_volume_shape

PathLike = str | os.PathLike[str]

TIFF_SUFFIXES = (".tif", ".tiff")
SUPPORTED = (
    ".npy, .tif/.tiff (multi-page or BigTIFF), a .zarr directory (zarr array), "
    "or a directory of 2D .tif/.tiff slices"
)
# What tifffile logs (instead of raising) when an IFD chain is cut short or a stack is unshapeable.
_TIFF_PROBLEMS = ("invalid page offset", "corrupted tag list", "failed to reshape", "truncat")


class InputError(ValueError):
    """A ValueError whose message already names the file (not re-wrapped by read_volume)."""


def _require_volume_shape(shape: tuple[int, ...], p: Path) -> None:
    """Run :func:`check_volume_shape` on a bare shape (before opening the data)."""
    try:
        check_volume_shape(SimpleNamespace(shape=shape), p)
    except ValueError as exc:
        raise InputError(str(exc)) from None


class _LogCapture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextmanager
def _tifffile_warnings() -> Iterator[list[str]]:
    """Collect what tifffile logs while parsing (it logs, not raises, on truncated IFD chains)."""
    handler = _LogCapture()
    logger = logging.getLogger("tifffile")
    logger.addHandler(handler)
    try:
        yield handler.messages
    finally:
        logger.removeHandler(handler)


def _check_tiff_extent(series: Any, file_size: int, name: Path) -> None:
    """Raise if any data strip/tile of ``series`` lies beyond the end of the file."""
    itemsize = np.dtype(series.dtype).itemsize
    if series.dataoffset is not None:
        end = series.dataoffset + int(np.prod(series.shape, dtype=np.int64)) * itemsize
    else:
        end = 0
        for page in series.pages:
            if page is None:
                raise InputError(f"{name}: TIFF is truncated or corrupt (a page is missing)")
            offsets, counts = page.dataoffsets, page.databytecounts
            if offsets:
                end = max(end, max(o + c for o, c in zip(offsets, counts, strict=False)))
    if end > file_size:
        raise InputError(
            f"{name}: TIFF is truncated: image data extend to byte {end} but the file has "
            f"{file_size} bytes"
        )


def _inspect_tiff(
    p: Path, flags: dict[str, bool] | None = None
) -> tuple[tuple[int, ...], np.dtype, bool, dict[str, bool]]:
    """Parse a TIFF's first series and check it is complete.

    Returns:
        Shape, dtype, whether the data are uncompressed and contiguous (memory-mappable), and the
        TiffFile flags to open it with.
    """
    flags = flags or {}
    with _tifffile_warnings() as warnings, tifffile.TiffFile(p, **flags) as tif:
        if not tif.series:
            raise InputError(f"{p}: TIFF contains no image data")
        series = tif.series[0]
        if not flags and len(tif.series) > 1 and len(series.shape) == 2:
            if all(s.shape == series.shape and s.dtype == series.dtype for s in tif.series):
                # 2D pages appended one at a time (one "shaped" series each): read as one stack.
                return _inspect_tiff(p, {"is_shaped": False})
        problems = [m for m in warnings if any(k in m.lower() for k in _TIFF_PROBLEMS)]
        if problems:
            raise InputError(f"{p}: TIFF is truncated or corrupt: {problems[0]}")
        _check_tiff_extent(series, p.stat().st_size, p)
        memmappable = series.dataoffset is not None
        return tuple(series.shape), np.dtype(series.dtype), memmappable, flags


def read_tiff(p: Path) -> np.ndarray | zarr.Array:
    """Open a (multi-page, classic or Big) TIFF lazily: ``np.memmap`` if possible, else zarr."""
    shape, _, memmappable, flags = _inspect_tiff(p)
    _require_volume_shape(shape, p)
    if memmappable:
        return tifffile.memmap(p, mode="r", **flags)
    return _open_store(tifffile.imread(p, aszarr=True, **flags))


def _open_store(store: Any) -> zarr.Array:
    """Open a tifffile zarr store read-only; close its file handle when the array is collected."""
    array = zarr.open(store, mode="r")
    weakref.finalize(array, store.close)
    return array


def natural_sort_key(name: str) -> list[Any]:
    """Sort key that orders embedded numbers numerically (``s2`` before ``s10``)."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def list_slices(folder: PathLike) -> list[Path]:
    """List the 2D slice files of a folder: visible ``*.tif``/``*.tiff`` in natural sort order."""
    files = [
        f
        for f in Path(folder).iterdir()
        if f.is_file() and not f.name.startswith(".") and f.suffix.lower() in TIFF_SUFFIXES
    ]
    return sorted(files, key=lambda f: natural_sort_key(f.name))


def read_slices(p: Path) -> zarr.Array:
    """Open a folder of 2D TIFF slices (same shape and dtype) lazily as a (Z, Y, X) zarr array."""
    files = list_slices(p)
    if not files:
        raise InputError(
            f"{p}: directory contains no .tif/.tiff slices and is not a zarr store; expected "
            f"{SUPPORTED}"
        )
    first = None
    for f in files:
        try:
            shape, dtype, _, _ = _inspect_tiff(f)
        except InputError as exc:
            raise InputError(f"{p}: bad slice: {exc}") from exc
        except Exception as exc:
            raise InputError(
                f"{p}: cannot read slice {f.name} (truncated or corrupt): "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        if len(shape) != 2:
            raise InputError(f"{p}: slice {f.name} is not a 2D image: shape {shape}")
        if first is None:
            first = (f, shape, dtype)
        elif (shape, dtype) != first[1:]:
            raise InputError(
                f"{p}: slices differ: {f.name} is {shape} {dtype} but {first[0].name} is "
                f"{first[1]} {first[2]}; all slices must share shape and dtype"
            )
    return _open_store(tifffile.TiffSequence([str(f) for f in files]).aszarr())


TIFF_SLAB_BYTES = 16 * 2**20


def write_tiff(tmp: Path, array: Any, spacing: list[float] | None) -> None:
    """Write uncompressed, contiguous (memory-mappable) BigTIFF, one page per Z slice."""
    # small slabs of whole zarr chunks in Z (each chunk decoded once): the writer holds about
    # three slabs at a time
    chunks = getattr(array, "chunks", None)
    depth = int(chunks[0]) if isinstance(chunks, tuple) and isinstance(chunks[0], int) else 1

    def pages() -> Iterator[np.ndarray]:
        for _, slab in iter_slabs(
            array, max_bytes=min(TIFF_SLAB_BYTES, _slabs.SLAB_BYTES), multiple=depth
        ):
            yield from slab

    kwargs: dict[str, Any] = {"metadata": {"spacing": spacing} if spacing else {}}
    if spacing:
        kwargs["resolution"] = (1.0 / spacing[2], 1.0 / spacing[1])
    with tifffile.TiffWriter(tmp, bigtiff=True) as writer:
        writer.write(
            pages(),
            shape=tuple(array.shape),
            dtype=array.dtype,
            photometric="minisblack",  # else tifffile stores Z == 3 or 4 as RGB(A) planes
            **kwargs,
        )


def write_slices(tmp: Path, array: Any) -> None:
    """Write a new folder ``tmp`` of 2D TIFF slices ``slice_00000.tif``, ``slice_00001.tif``..."""
    tmp.mkdir()
    width = max(5, len(str(int(array.shape[0]) - 1)))
    for z0, slab in iter_slabs(array):
        for i, page in enumerate(slab):
            name = f"slice_{z0 + i:0{width}d}.tif"
            tifffile.imwrite(tmp / name, page, photometric="minisblack", metadata=None)

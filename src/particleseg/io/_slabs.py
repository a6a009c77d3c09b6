"""Iterate over a 3D volume in slabs of whole Z slices, so lazy arrays are never loaded whole.

A memory-mapped volume (``np.load(mmap_mode="r")``, ``tifffile.memmap``) keeps every page it
was read through mapped, so reading it whole by slabs would still leave the whole file in the
process's resident set: :func:`release_pages` drops them after each slab.
"""

from __future__ import annotations

import mmap
from collections.abc import Iterator
from typing import Any

import numpy as np

#: Default memory budget of one slab, in bytes.
SLAB_BYTES = 64 * 2**20


def release_pages(array: Any) -> None:
    """Drop a memory-mapped array's pages from this process's resident set (others: nothing).

    The pages a read touched stay mapped, and count in the process's RSS, until the mapping
    goes; over a whole scan that is the scan's size. They are clean pages of a read-only file
    mapping, so dropping them loses nothing: a later read faults them in again from the page
    cache. Views of the array stay valid. A copy-on-write mapping (mode ``"c"``) is left as it
    is: dropping its pages would drop what was written to them.
    """
    if getattr(array, "mode", None) == "c":
        return
    mapping = getattr(array, "_mmap", None)  # np.memmap (np.load mmap_mode, tifffile.memmap)
    if mapping is None and isinstance(getattr(array, "base", None), mmap.mmap):
        mapping = array.base
    if mapping is not None and hasattr(mapping, "madvise"):
        mapping.madvise(mmap.MADV_DONTNEED)


def read_box(array: Any, index: Any) -> np.ndarray:
    """``array[index]`` as an in-memory ndarray, holding nothing of ``array`` afterwards.

    A dask piece is computed here (never the whole graph); a memory-mapped one is copied and
    the mapping's pages are released (:func:`release_pages`): a strided box such as a ZY slice
    touches every page of the file.
    """
    if isinstance(array, np.memmap):
        return _read_mapped(array, index if isinstance(index, tuple) else (index,))
    part = array[index]
    if hasattr(part, "compute"):
        part = part.compute(scheduler="synchronous")
    return np.asarray(part)


def _read_mapped(array: np.memmap, index: tuple) -> np.ndarray:
    """:func:`read_box` of a memory-mapped array: copied slab by slab, pages released after each."""
    first = index[0] if index else slice(None)
    if not isinstance(first, slice) or first.step not in (None, 1):
        out = np.array(array[index])
        release_pages(array)
        return out
    z0, z1, _ = first.indices(int(array.shape[0]))
    depth = slab_depth(tuple(array.shape), array.dtype)
    parts = []
    for z in range(z0, max(z0, z1), depth):
        parts.append(np.array(array[(slice(z, min(z + depth, z1)), *index[1:])]))
        release_pages(array)
    if not parts:
        return np.array(array[index])
    return np.concatenate(parts, axis=0)


def slab_depth(
    shape: tuple[int, ...], dtype: Any, max_bytes: int | None = None, multiple: int = 1
) -> int:
    """Number of Z slices per slab so that one slab stays within ``max_bytes``.

    Args:
        shape: Volume shape (Z, Y, X).
        dtype: Volume dtype.
        max_bytes: Memory budget of one slab (default :data:`SLAB_BYTES`, read at call time).
        multiple: The depth is rounded down to a multiple of this (e.g. the zarr chunk depth, so
            that slab writes never share a chunk); at least ``multiple`` slices are returned.

    Returns:
        Slab depth, at least 1 (or ``multiple``).
    """
    max_bytes = SLAB_BYTES if max_bytes is None else max_bytes
    slice_bytes = max(1, int(np.prod(shape[1:], dtype=np.int64)) * np.dtype(dtype).itemsize)
    depth = max(1, max_bytes // slice_bytes)
    multiple = max(1, int(multiple))
    return max(multiple, depth // multiple * multiple)


def iter_slabs(
    array: Any, max_bytes: int | None = None, multiple: int = 1
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(z_start, slab)`` for consecutive Z slabs of a 3D array-like.

    Args:
        array: Array-like with ``shape`` (Z, Y, X), ``dtype`` and numpy slicing (ndarray, memmap,
            zarr array).
        max_bytes: Memory budget of one slab (default :data:`SLAB_BYTES`).
        multiple: Slab depth is a multiple of this (see :func:`slab_depth`).

    Yields:
        The first Z index of the slab and the slab as an ndarray of shape (z, Y, X) (a view of a
        memory-mapped array: its pages are released when the next slab is asked for, so the
        resident set stays one slab; the view stays valid).
    """
    n_z = int(array.shape[0])
    depth = slab_depth(tuple(array.shape), array.dtype, max_bytes, multiple)
    for z0 in range(0, n_z, depth):
        yield z0, np.asarray(array[z0 : min(z0 + depth, n_z)])
        release_pages(array)

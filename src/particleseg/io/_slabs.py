"""Iterate over a 3D volume in slabs of whole Z slices, so lazy arrays are never loaded whole."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

#: Default memory budget of one slab, in bytes.
SLAB_BYTES = 64 * 2**20


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
        The first Z index of the slab and the slab as an in-memory ndarray of shape (z, Y, X).
    """
    n_z = int(array.shape[0])
    depth = slab_depth(tuple(array.shape), array.dtype, max_bytes, multiple)
    for z0 in range(0, n_z, depth):
        yield z0, np.asarray(array[z0 : min(z0 + depth, n_z)])

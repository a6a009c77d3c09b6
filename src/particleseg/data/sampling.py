"""Patch sampling: where to cut a training patch, and cutting it with zero padding."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def patch_start(
    shape: Sequence[int],
    patch_size: Sequence[int],
    rng: np.random.Generator,
    fg_coords: np.ndarray | None = None,
) -> tuple[int, int, int]:
    """Pick the corner of a patch.

    Without ``fg_coords`` the patch is placed uniformly; a volume smaller than the patch on an axis
    gets a start <= 0 there (the crop is padded). With ``fg_coords`` (nnU-Net's foreground
    oversampling) one of them is drawn and the patch is centred on it, shifted to stay inside the
    volume where the volume is large enough, so the patch contains that foreground voxel.

    Args:
        shape: Volume shape (Z, Y, X).
        patch_size: Patch shape (z, y, x).
        rng: Random generator.
        fg_coords: int (K, 3) foreground positions, or None / empty for a uniform patch.

    Returns:
        The patch's first voxel per axis (may be negative or run past the end: see
        :func:`crop_padded`).
    """
    shape, size = np.asarray(shape), np.asarray(patch_size)
    lo = np.minimum(0, shape - size)  # negative when the volume is smaller than the patch
    hi = np.maximum(0, shape - size)
    if fg_coords is not None and len(fg_coords):
        centre = np.asarray(fg_coords[rng.integers(len(fg_coords))])
        start = np.clip(centre - size // 2, lo, hi)
    else:
        start = np.array([rng.integers(a, b + 1) for a, b in zip(lo, hi, strict=True)])
    return tuple(int(s) for s in start)  # type: ignore[return-value]


def crop_padded(
    array: np.ndarray, start: Sequence[int], size: Sequence[int], pad_value: float = 0
) -> np.ndarray:
    """Cut ``array[start : start + size]`` per axis, padding with ``pad_value`` outside the array.

    Args:
        array: (Z, Y, X) array or memmap (only the overlapping block is read).
        start: First voxel per axis, may be negative.
        size: Output shape.
        pad_value: Value of voxels outside ``array``.

    Returns:
        A new array of shape ``size`` and ``array``'s dtype.
    """
    out = np.full(tuple(size), pad_value, dtype=array.dtype)
    src, dst = [], []
    for s, n, dim in zip(start, size, array.shape, strict=True):
        a, b = max(s, 0), min(s + n, dim)
        if b <= a:
            return out
        src.append(slice(a, b))
        dst.append(slice(a - s, b - s))
    out[tuple(dst)] = array[tuple(src)]
    return out

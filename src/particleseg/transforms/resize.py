"""Particle-size normalization: resize every scan so that particles have a common size.

The zoom per axis is ``target_particle_size / particle diameter in voxels``. Images are
resampled trilinearly (:func:`resize_image`); instance labels with an exact integer
nearest-neighbour gather that then puts back every particle the sampling missed
(:func:`resize_labels`), so no particle vanishes and none merge.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Real
from typing import Any

import fastremap
import numpy as np
import torch
import torch.nn.functional as F

_UINT32_MAX = int(np.iinfo(np.uint32).max)
_BACKGROUND_RADIUS = 2  # vanished particles look for background in a 5x5x5 cube


def _positive_finite(value: Any) -> bool:
    return (
        isinstance(value, Real)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


def zoom_factors(
    particle_size_px: float | Sequence[float], target_particle_size: float
) -> tuple[float, float, float]:
    """Zoom per axis that brings particles of ``particle_size_px`` voxels to the target size.

    Args:
        particle_size_px: mean particle diameter in voxels, a scalar or one per axis (Z, Y, X)
            for anisotropic voxels.
        target_particle_size: diameter in voxels that particles should have after resizing.

    Returns:
        (zoom_z, zoom_y, zoom_x) = target_particle_size / particle_size_px per axis.

    Raises:
        ValueError: A size is not positive and finite, or not a scalar / 3 values.
    """
    if not _positive_finite(target_particle_size):
        raise ValueError(
            f"target_particle_size must be a positive finite number, got {target_particle_size!r}"
        )
    if isinstance(particle_size_px, Real) and not isinstance(particle_size_px, bool):
        sizes = (particle_size_px,) * 3
    else:
        sizes = tuple(np.asarray(particle_size_px, dtype=object).ravel().tolist())
        if np.ndim(particle_size_px) != 1 or len(sizes) != 3:
            raise ValueError(
                "particle_size_px must be a number or 3 numbers (Z, Y, X), "
                f"got {particle_size_px!r}"
            )
    if not all(_positive_finite(s) for s in sizes):
        raise ValueError(
            f"particle_size_px must be positive finite numbers, got {particle_size_px!r}"
        )
    target = float(target_particle_size)
    return tuple(target / float(s) for s in sizes)


def resized_shape(shape: Sequence[int], zoom: float | Sequence[float]) -> tuple[int, int, int]:
    """Shape after zooming: ``max(1, round(s * z))`` per axis (Python ``round``, half to even).

    Args:
        shape: (Z, Y, X) input shape, non-negative integers.
        zoom: zoom per axis (Z, Y, X) or one scalar for all axes, positive and finite.

    Returns:
        (Z, Y, X) output shape, each >= 1.

    Raises:
        ValueError: ``shape`` is not 3 non-negative integers or ``zoom`` not positive finite.
    """
    shape = tuple(shape)
    if len(shape) != 3 or not all(
        isinstance(s, int | np.integer) and not isinstance(s, bool) and s >= 0 for s in shape
    ):
        raise ValueError(f"shape must be 3 non-negative integers (Z, Y, X), got {shape!r}")
    if isinstance(zoom, Real) and not isinstance(zoom, bool):
        zooms = (zoom,) * 3
    else:
        zooms = tuple(zoom)
    if len(zooms) != 3 or not all(_positive_finite(z) for z in zooms):
        raise ValueError(f"zoom must be a positive finite number or 3 of them, got {zoom!r}")
    return tuple(max(1, round(int(s) * float(z))) for s, z in zip(shape, zooms, strict=True))


def _check_out_shape(out_shape: Any, in_shape: tuple[int, ...]) -> tuple[int, int, int]:
    try:
        shape = tuple(out_shape)
    except TypeError:
        shape = None
    if (
        shape is None
        or len(shape) != 3
        or not all(
            isinstance(s, int | np.integer) and not isinstance(s, bool) and s > 0 for s in shape
        )
    ):
        raise ValueError(
            f"out_shape must be 3 positive integers (Z, Y, X), got {out_shape!r} "
            f"(input shape {in_shape})"
        )
    return tuple(int(s) for s in shape)


def resize_image(image: Any, out_shape: Sequence[int]) -> np.ndarray:
    """Trilinear resize of an intensity volume to exactly ``out_shape``.

    Uses ``torch.nn.functional.interpolate(mode="trilinear", align_corners=False)`` on float32
    (sample positions ``(i + 0.5) * in / out - 0.5``, clamped at the edges). The raw values are
    cast to float32 explicitly; integer images are NOT rescaled. Peak memory is about one
    float32 copy of the input (none when it already is a C-contiguous float32 array) plus the
    float32 output.

    Args:
        image: (Z, Y, X) array of any integer or float dtype.
        out_shape: (Z, Y, X) output shape, positive integers.

    Returns:
        (out_shape) float32 array; a float32 copy of ``image`` when the shape is unchanged.

    Raises:
        ValueError: ``image`` is not 3D numeric or ``out_shape`` not 3 positive integers.
    """
    image = np.asarray(image)
    if image.ndim != 3:
        raise ValueError(f"image must be a 3D array (Z, Y, X), got shape {image.shape}")
    if image.dtype.kind not in "biuf":
        raise ValueError(f"image must have an integer or float dtype, got {image.dtype}")
    out_shape = _check_out_shape(out_shape, image.shape)
    if out_shape == image.shape:
        return image.astype(np.float32, copy=True)
    if image.size == 0:
        raise ValueError(f"cannot resize an empty image of shape {image.shape} to {out_shape}")
    source = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))
    with torch.no_grad():
        out = F.interpolate(
            source[None, None], size=out_shape, mode="trilinear", align_corners=False
        )
    return out[0, 0].numpy()


def _nearest_source_index(n_in: int, n_out: int) -> np.ndarray:
    """Source index per output index, nearest-exact rule ``floor((i + 0.5) * in / out)``.

    Computed in exact integer arithmetic: ``((2 i + 1) in) // (2 out)``.
    """
    i = np.arange(n_out, dtype=np.int64)
    return np.minimum(((2 * i + 1) * n_in) // (2 * n_out), n_in - 1)


def _nearest_target_index(coord: np.ndarray, n_in: int, n_out: int) -> np.ndarray:
    """Output index whose footprint holds the centre of input index ``coord``.

    ``floor((c + 0.5) * out / in)`` in exact integer arithmetic, clipped to ``[0, out)``.
    """
    coord = coord.astype(np.int64)
    return np.minimum(((2 * coord + 1) * n_out) // (2 * n_in), n_out - 1)


def resize_labels(labels: Any, out_shape: Sequence[int]) -> np.ndarray:
    """Nearest-neighbour resize of instance labels in which no particle vanishes or merges.

    1. Nearest-exact gather: output voxel ``i`` takes input voxel ``floor((i + 0.5) * in /
       out)`` per axis (integer arithmetic, the rule of ``interpolate(mode="nearest-exact")``),
       gathered with ``labels[np.ix_(iz, iy, ix)]``, exact for any id (never through float).
       Distinct ids stay distinct, so no two particles merge. Upsampling by an integer factor
       equals ``np.repeat`` on each axis.
    2. Every id present in the input but absent from the output (a particle smaller than the
       sampling step) is put back at one voxel. Its anchor is the output voxel whose footprint
       holds the centre of the particle's first input voxel in raster order. It takes the
       nearest (Euclidean, in output voxels) background voxel of the 5x5x5 cube around its
       anchor, the anchor itself first; when several vanished ids reach the same voxel the
       smallest id gets it (vectorized over ids, one step per cube offset). Only if that cube
       has no background left (a short Python loop over those rare ids) it takes the cube's
       nearest voxel of a particle that keeps at least one other voxel (that voxel is
       overwritten: the particle shrinks by one voxel but stays), failing that the nearest
       such voxel anywhere (growing search). A particle is never reduced to nothing, so the
       result holds exactly the input's set of nonzero ids; this always succeeds when the
       input has no more particles than the output has voxels. Restored particles are
       single voxels and may touch others.

    Args:
        labels: (Z, Y, X) non-negative integer (or bool) instance labels, 0 = background, ids
            up to 2**32 - 1. Numpy arrays, memmaps or anything ``np.asarray`` accepts.
        out_shape: (Z, Y, X) output shape, positive integers.

    Returns:
        (out_shape) uint32 labels with the same set of ids as ``labels``.

    Raises:
        ValueError: ``labels`` is not 3D, not integer, negative or above 2**32 - 1;
            ``out_shape`` is not 3 positive integers; or the input has more particles than the
            output has voxels.
    """
    labels = np.asarray(labels)
    if labels.ndim != 3:
        raise ValueError(f"labels must be a 3D array (Z, Y, X), got shape {labels.shape}")
    if labels.dtype == bool:
        labels = labels.view(np.uint8)
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must have an integer dtype, got {labels.dtype}")
    out_shape = _check_out_shape(out_shape, labels.shape)
    if labels.size == 0:
        raise ValueError(f"cannot resize empty labels of shape {labels.shape} to {out_shape}")
    labels = np.ascontiguousarray(labels)
    ids_in, first_in = fastremap.unique(labels, return_index=True)
    if ids_in[0] < 0:
        raise ValueError(f"labels must be non-negative, got minimum {ids_in[0]}")
    if ids_in[-1] > _UINT32_MAX:
        raise ValueError(f"labels must fit uint32 (<= {_UINT32_MAX}), got maximum {ids_in[-1]}")
    n_particles = int(ids_in.size - (ids_in[0] == 0))
    n_out = math.prod(out_shape)
    if n_particles > n_out:
        raise ValueError(
            f"cannot keep {n_particles} particles of labels of shape {labels.shape} in an output "
            f"of shape {out_shape} with only {n_out} voxels"
        )

    if out_shape == labels.shape:
        return labels.astype(np.uint32, copy=True)
    index = [_nearest_source_index(n, m) for n, m in zip(labels.shape, out_shape, strict=True)]
    out = labels[np.ix_(*index)].astype(np.uint32, copy=False)

    ids_out, counts_out = fastremap.unique(out, return_counts=True)
    missing_mask = ~np.isin(ids_in, ids_out, assume_unique=True) & (ids_in != 0)
    if not missing_mask.any():
        return out
    missing = ids_in[missing_mask].astype(np.uint32)
    first = np.unravel_index(first_in[missing_mask], labels.shape)
    anchors = np.ravel_multi_index(
        tuple(
            _nearest_target_index(c, n, m)
            for c, n, m in zip(first, labels.shape, out_shape, strict=True)
        ),
        out_shape,
    )
    _restore_vanished(out, missing, anchors, ids_out, counts_out.astype(np.int64))
    return out


def _cube_offsets(radius: int) -> np.ndarray:
    """(K, 3) offsets of the cube of Chebyshev ``radius``, nearest (Euclidean) first."""
    r = np.arange(-radius, radius + 1)
    offsets = np.stack(np.meshgrid(r, r, r, indexing="ij"), axis=-1).reshape(-1, 3)
    order = np.argsort((offsets**2).sum(axis=1), kind="stable")
    return offsets[order]


def _restore_vanished(
    out: np.ndarray,
    missing: np.ndarray,
    anchors: np.ndarray,
    ids_out: np.ndarray,
    counts_out: np.ndarray,
) -> None:
    """Write each ``missing`` id at one voxel of ``out`` (in place), near its flat ``anchors``.

    ``ids_out`` (sorted) and ``counts_out`` are the ids of ``out`` and their voxel counts.
    """
    flat = out.reshape(-1)
    shape = np.asarray(out.shape)
    coords = np.stack(np.unravel_index(anchors, out.shape), axis=1)  # (M, 3)
    remaining = np.arange(missing.size)
    # Vectorized over ids: offsets of the 5x5x5 cube by increasing distance (the anchor
    # itself first); an id takes the first background voxel it reaches, the smallest id wins
    # a voxel reached by several at once.
    for offset in _cube_offsets(_BACKGROUND_RADIUS):
        if remaining.size == 0:
            return
        target = coords[remaining] + offset
        inside = np.all((target >= 0) & (target < shape), axis=1)
        who = remaining[inside]
        target_flat = np.ravel_multi_index(tuple(target[inside].T), out.shape)
        free = flat[target_flat] == 0
        who, target_flat = who[free], target_flat[free]
        _, first = np.unique(target_flat, return_index=True)
        flat[target_flat[first]] = missing[who[first]]
        placed = np.zeros(missing.size, bool)
        placed[who[first]] = True
        remaining = remaining[~placed[remaining]]
    # A short loop over ids with no background in their cube: overwrite a voxel of a particle
    # that keeps another one. Restored ids are not in ids_out and count as one voxel.
    for i in remaining:
        _place_one(out, int(missing[i]), int(anchors[i]), ids_out, counts_out)


def _place_one(
    out: np.ndarray, label: int, anchor: int, ids_out: np.ndarray, counts_out: np.ndarray
) -> None:
    """Write ``label`` at one voxel near flat index ``anchor`` of ``out`` (in place).

    First the 5x5x5 cube around the anchor: its nearest background voxel, else its nearest voxel
    of a particle that keeps another voxel (that particle loses the voxel). Failing both, growing
    cubes for the nearest voxel of either kind. Ties go to the first voxel in raster order.
    """
    center = np.unravel_index(anchor, out.shape)
    max_radius = max(2, *out.shape)
    for radius in range(2, max_radius + 1):
        lo = [max(c - radius, 0) for c in center]
        hi = [min(c + radius + 1, n) for c, n in zip(center, out.shape, strict=True)]
        cube = out[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]  # a view: writes go to out
        grids = np.ogrid[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
        dist2 = sum((g - c) ** 2 for g, c in zip(grids, center, strict=True))
        pos = np.minimum(np.searchsorted(ids_out, cube), ids_out.size - 1)
        # Restored ids are not in ids_out: they have one voxel and are not usable.
        count = np.where(ids_out[pos] == cube, counts_out[pos], 1)
        background = cube == 0
        usable = background | (count >= 2)
        if radius == 2:
            # Prefer background anywhere in the 5x5x5 cube over overwriting a particle.
            usable = background if background.any() else usable
        elif radius < max_radius:
            # Only the ball inside the cube is searched completely.
            usable &= dist2 <= radius * radius
        if not usable.any():
            continue
        key = np.where(usable, 2 * dist2 + ~background, np.iinfo(np.int64).max)
        best = np.unravel_index(int(np.argmin(key)), cube.shape)
        owner = int(cube[best])
        if owner != 0:
            counts_out[np.searchsorted(ids_out, owner)] -= 1
        cube[best] = label
        return
    raise AssertionError("unreachable: a usable voxel exists when particles <= voxels")

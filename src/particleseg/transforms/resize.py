"""Particle-size normalization: resize every scan so that particles have a common size.

The zoom per axis is ``target_particle_size / particle diameter in voxels``. Images are
resampled trilinearly (:func:`resize_image`); instance labels with an exact integer
nearest-neighbour gather that then puts back every particle the sampling missed
(:func:`resize_labels`), so no particle vanishes and none merge.

For chunked whole-scan inference, :func:`resize_image_region` computes one box of the resized
image from only the source box it needs (:func:`source_box`), in numpy, matching
:func:`resize_image`; the labels' index rule is
:func:`particleseg.nearest_index.nearest_source_index`.
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

from particleseg.nearest_index import nearest_source_index

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


def _int3(value: Any) -> tuple[int, ...] | None:
    """``value`` as a tuple of 3 ints, or None when it is not 3 integers."""
    try:
        values = tuple(value)
    except TypeError:
        return None
    if len(values) != 3 or not all(
        isinstance(v, int | np.integer) and not isinstance(v, bool) for v in values
    ):
        return None
    return tuple(int(v) for v in values)


def _check_region(
    start: Any, stop: Any, out_shape: tuple[int, int, int], in_shape: tuple[int, ...]
) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    begin, end = _int3(start), _int3(stop)
    if (
        begin is None
        or end is None
        or not all(0 <= a < b <= n for a, b, n in zip(begin, end, out_shape, strict=True))
    ):
        raise ValueError(
            f"start and stop must be 3 ints each with 0 <= start < stop <= out_shape "
            f"{out_shape}, got start {start!r}, stop {stop!r} (input shape {in_shape})"
        )
    return begin, end


def _linear_source(
    n_in: int, n_out: int, start: int, stop: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Linear-interpolation sources of output indices ``start..stop-1`` along one axis.

    The rule of ``interpolate(mode="linear", align_corners=False)`` with a given size: source
    coordinate ``c = (i + 0.5) * in / out - 0.5`` clamped below at 0, ``i0 = floor(c)``,
    ``i1 = min(i0 + 1, in - 1)``, weight ``c - i0`` for ``i1``. ``c`` is rounded as torch's
    CPU kernel computes it (checked on its AVX512 build, which uses a fused multiply-add):
    ``scale = float32(in) / float32(out)``, then ``scale * float32(i + 0.5) - 0.5`` rounded
    once to float32. Exact coordinates would differ from torch by up to ~1e-4 of the value
    range on axes of a few thousand voxels, unfused float32 ones by ~1e-5; these agree with it
    to float32 rounding. ``c`` and so ``i0`` are non-decreasing in ``i``.

    Returns:
        (stop - start,) int64 ``i0``, int64 ``i1`` and float32 weights in [0, 1]; ``i1`` is
        set to ``i0`` where the weight is 0, so only voxels that contribute are referenced.
    """
    scale = np.float64(np.float32(n_in) / np.float32(n_out))
    position = np.arange(start, stop).astype(np.float32) + np.float32(0.5)
    # scale * position is exact in float64 (24 + 24 bits), so rounding the difference once to
    # float32 gives the fused multiply-add.
    coord = np.maximum((scale * position.astype(np.float64) - 0.5).astype(np.float32), 0)
    i0 = np.minimum(coord.astype(np.int64), n_in - 1)  # coord >= 0: truncation is floor
    weight = np.clip(coord - i0.astype(np.float32), 0, 1).astype(np.float32)
    i1 = np.where(weight > 0, np.minimum(i0 + 1, n_in - 1), i0)
    return i0, i1, weight


def source_box(
    in_shape: Sequence[int], out_shape: Sequence[int], start: Sequence[int], stop: Sequence[int]
) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """The box of the input that the trilinear resize needs for one box of its output.

    Every input voxel that contributes (with a nonzero weight) to
    ``resize_image(image, out_shape)[start:stop]`` lies in ``[src_start, src_stop)``, and the
    box is the smallest such: plan reads of a large (e.g. zarr) image with it. Along an axis
    whose size does not change it is ``[start, stop)``.

    Args:
        in_shape: (Z, Y, X) input shape, positive integers.
        out_shape: (Z, Y, X) output shape, positive integers.
        start: (Z, Y, X) first output voxel of the region.
        stop: (Z, Y, X) end (exclusive) of the region, ``0 <= start < stop <= out_shape``.

    Returns:
        ``(src_start, src_stop)``, 3 ints each, ``0 <= src_start < src_stop <= in_shape``.

    Raises:
        ValueError: a shape is not 3 positive integers or the region not inside ``out_shape``.
    """
    shape = _int3(in_shape)
    if shape is None or min(shape) < 1:
        raise ValueError(
            f"in_shape must be 3 positive integers (Z, Y, X), got {in_shape!r} "
            f"(out_shape {out_shape!r})"
        )
    out_shape = _check_out_shape(out_shape, shape)
    start, stop = _check_region(start, stop, out_shape, shape)
    src_start, src_stop = [], []
    for n, m, a, b in zip(shape, out_shape, start, stop, strict=True):
        i0, i1, _ = _linear_source(n, m, a, b)
        src_start.append(int(i0[0]))
        src_stop.append(int(i1.max()) + 1)
    return tuple(src_start), tuple(src_stop)


def resize_image_region(
    image: Any, out_shape: Sequence[int], start: Sequence[int], stop: Sequence[int]
) -> np.ndarray:
    """One box of :func:`resize_image`'s output, reading only the input box it needs.

    Equals ``resize_image(np.asarray(image), out_shape)[start[0]:stop[0], start[1]:stop[1],
    start[2]:stop[2]]`` to float32 rounding (a few 1e-7 of the value range), but reads only
    ``image[source_box(image.shape, out_shape, start, stop)]``, so ``image`` may be a large
    zarr array or memmap. Numpy only: the trilinear interpolation is done as three separable
    linear ones in float32 (as torch does, on the same float32 sample positions, see
    :func:`resize_image`), downsampled axes first. Regions that tile the output give exactly
    the tiles of one whole-volume call of this function. Memory: the source box as float32
    plus about two float32 copies of the largest intermediate (at most the source box grown
    by the upsampled axes).

    Args:
        image: (Z, Y, X) array of any integer or float dtype with ``shape``, ``dtype`` and
            numpy slicing (numpy, ``np.memmap``, ``zarr.Array``); anything else goes through
            ``np.asarray``.
        out_shape: (Z, Y, X) shape of the whole resized image, positive integers.
        start: (Z, Y, X) first output voxel of the region.
        stop: (Z, Y, X) end (exclusive) of the region, ``0 <= start < stop <= out_shape``.

    Returns:
        (stop - start) float32 array; a float32 copy of the box when ``out_shape`` is the
        input's shape.

    Raises:
        ValueError: ``image`` is not 3D numeric or empty, ``out_shape`` is not 3 positive
            integers, or ``start``/``stop`` are not 3 ints each inside ``out_shape``.
    """
    if not (hasattr(image, "shape") and hasattr(image, "dtype")):
        image = np.asarray(image)
    in_shape = tuple(int(s) for s in image.shape)
    if len(in_shape) != 3:
        raise ValueError(f"image must be a 3D array (Z, Y, X), got shape {in_shape}")
    dtype = np.dtype(image.dtype)
    if dtype.kind not in "biuf":
        raise ValueError(f"image must have an integer or float dtype, got {dtype}")
    out_shape = _check_out_shape(out_shape, in_shape)
    if 0 in in_shape:
        raise ValueError(f"cannot resize an empty image of shape {in_shape} to {out_shape}")
    start, stop = _check_region(start, stop, out_shape, in_shape)
    src_start, src_stop = source_box(in_shape, out_shape, start, stop)
    box = np.asarray(image[tuple(slice(a, b) for a, b in zip(src_start, src_stop, strict=True))])
    if out_shape == in_shape:
        return box.astype(np.float32, copy=True)
    out = box.astype(np.float32, copy=False)
    # Shrinking axes first keeps the intermediates small; unchanged axes are the identity.
    axes = sorted(
        (axis for axis in range(3) if in_shape[axis] != out_shape[axis]),
        key=lambda axis: out_shape[axis] / in_shape[axis],
    )
    for axis in axes:
        i0, i1, weight = _linear_source(in_shape[axis], out_shape[axis], start[axis], stop[axis])
        shape = [1, 1, 1]
        shape[axis] = -1
        weight = weight.reshape(shape)
        low = np.take(out, i0 - src_start[axis], axis=axis)
        high = np.take(out, i1 - src_start[axis], axis=axis)
        low *= 1 - weight
        high *= weight
        low += high
        out = low
    return out


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
    index = [nearest_source_index(n, m) for n, m in zip(labels.shape, out_shape, strict=True)]
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

"""Multi-scale hand-crafted voxel features for the scribble classifier (paper 3.1).

Per scale ``sigma`` (voxels), nine features, all float32 and computed with ``scipy.ndimage``
(``mode="reflect"``, ``truncate=4``):

- ``gauss``: Gaussian-smoothed intensity;
- ``gradmag``: Gaussian gradient magnitude;
- ``log``: Laplacian of Gaussian;
- ``hessian_0..2``: Hessian eigenvalues, ascending (blob / tube / sheet likeness);
- ``struct_0..2``: structure tensor eigenvalues, ascending (texture and orientation coherence;
  gradients at ``sigma``, products smoothed at ``sigma / 2``, as in ilastik).

Plus the raw (normalised) intensity, so ``1 + 9 * len(sigmas)`` features. Intensities are first
mapped with a fixed ``(offset, scale)`` (from the training image) so that features do not depend
on the block a voxel is computed in, and a classifier can be applied to another scan of the same
kind.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from particleseg.annotation._eigen import sym_eigvals

TRUNCATE = 4.0
"""Gaussian kernels are cut at ``TRUNCATE * sigma`` (scipy's default)."""

PER_SCALE = (
    "gauss",
    "gradmag",
    "log",
    "hessian_0",
    "hessian_1",
    "hessian_2",
    "struct_0",
    "struct_1",
    "struct_2",
)


@dataclass(frozen=True)
class FeatureSettings:
    """How voxel features are computed.

    Attributes:
        sigmas: Gaussian scales in voxels, ascending.
        offset: Intensity subtracted before scaling (robust low percentile of the training image).
        scale: Intensity divisor (robust range of the training image), > 0.
    """

    sigmas: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0)
    offset: float = 0.0
    scale: float = 1.0

    def __post_init__(self) -> None:
        sigmas = tuple(float(s) for s in self.sigmas)
        if not sigmas or any(not np.isfinite(s) or s <= 0 for s in sigmas):
            raise ValueError(f"sigmas must be positive finite numbers, got {self.sigmas!r}")
        if not (np.isfinite(self.scale) and self.scale > 0 and np.isfinite(self.offset)):
            raise ValueError(
                f"scale must be > 0 and offset finite, got {self.scale}, {self.offset}"
            )
        object.__setattr__(self, "sigmas", tuple(sorted(sigmas)))

    @property
    def names(self) -> list[str]:
        """Feature names, in the order of the last axis of :func:`voxel_features`."""
        return ["intensity"] + [f"{n}_s{s:g}" for s in self.sigmas for n in PER_SCALE]

    @property
    def n_features(self) -> int:
        """Number of features per voxel."""
        return 1 + len(PER_SCALE) * len(self.sigmas)

    @property
    def halo(self) -> int:
        """Context (voxels per side) a block needs for features identical to a whole-volume run.

        The longest filter chain is the structure tensor (gradient at ``sigma``, then
        smoothing at ``sigma / 2``): radius ``r(sigma / 2) + r(sigma)`` with
        ``r(s) = int(TRUNCATE * s + 0.5)``, i.e. about ``6 * max(sigmas)`` (>= ``4 * max``).
        """
        s = max(self.sigmas)
        return _radius(s / 2) + _radius(s)


def _radius(sigma: float) -> int:
    return int(TRUNCATE * float(sigma) + 0.5)


def fit_normalisation(image: np.ndarray, settings: FeatureSettings) -> FeatureSettings:
    """Settings with ``offset``/``scale`` fitted to an image (1st-99th percentile range).

    Args:
        image: (Z, Y, X) array of any real dtype. Large volumes are subsampled (every 4th voxel
            along each axis) for the percentiles.
        settings: Settings whose sigmas are kept.

    Returns:
        New settings with the same sigmas.
    """
    step = 4 if image.size > 64**3 else 1
    sample = np.asarray(image[::step, ::step, ::step], dtype=np.float64)
    lo, hi = np.percentile(sample, [1.0, 99.0])
    scale = float(hi - lo) if hi > lo else float(np.ptp(sample)) or 1.0
    return FeatureSettings(settings.sigmas, offset=float(lo), scale=scale)


def _crop_axis(region: tuple[slice, ...], axis: int) -> tuple[slice, ...]:
    sl = [slice(None)] * 3
    sl[axis] = region[axis]
    return tuple(sl)


def gaussian_derivatives(
    x: np.ndarray,
    sigma: float,
    orders: Sequence[tuple[int, int, int]],
    region: tuple[slice, slice, slice],
) -> dict[tuple[int, int, int], np.ndarray]:
    """Gaussian derivatives of ``x`` on ``region``, sharing the separable passes.

    Passes run along X, then Y, then Z; after the pass along an axis only ``region`` of that
    axis is kept (the later passes do not need the rest), and partial results are shared
    between orders: the ten orders up to 2 take 19 one-dimensional passes instead of 30.
    The value at a voxel depends only on ``x`` within ``int(TRUNCATE * sigma + 0.5)`` of it.

    Args:
        x: (Z, Y, X) float32 array.
        sigma: Gaussian scale in voxels.
        orders: Derivative orders ``(oz, oy, ox)``.
        region: Part of ``x`` where the results are wanted.

    Returns:
        ``{order: (z, y, x) float32 array of region's shape}``.
    """
    g = {"mode": "reflect", "truncate": TRUNCATE}
    level: dict[tuple[int, ...], np.ndarray] = {(): x}
    for step, axis in enumerate((2, 1, 0)):
        nxt: dict[tuple[int, ...], np.ndarray] = {}
        for o in orders:
            key = tuple(o[a] for a in (2, 1, 0)[: step + 1])
            if key not in nxt:
                out = ndi.gaussian_filter1d(level[key[:-1]], sigma, axis=axis, order=key[-1], **g)
                nxt[key] = np.ascontiguousarray(out[_crop_axis(region, axis)])
        level = nxt
    return {tuple(o): level[(o[2], o[1], o[0])] for o in orders}


_ORDERS = (
    (0, 0, 0),
    (1, 0, 0),
    (0, 1, 0),
    (0, 0, 1),
    (2, 0, 0),
    (0, 2, 0),
    (0, 0, 2),
    (1, 1, 0),
    (1, 0, 1),
    (0, 1, 1),
)


def _grow(region: tuple[slice, ...], by: int, shape: tuple[int, ...]) -> tuple[slice, ...]:
    return tuple(
        slice(max(0, r.start - by), min(n, r.stop + by)) for r, n in zip(region, shape, strict=True)
    )


def _scale_features(
    x: np.ndarray, sigma: float, region: tuple[slice, slice, slice]
) -> Iterator[np.ndarray]:
    """The nine features of one scale on ``region`` of ``x``, in ``PER_SCALE`` order.

    The structure tensor takes the gradients at ``sigma`` and smooths their products at
    ``sigma / 2`` (ilastik's inner and outer scales), so derivatives are computed on ``region``
    grown by the outer radius and shared with the other features.
    """
    outer = sigma / 2.0
    mid = _grow(region, _radius(outer), x.shape)
    inner = tuple(
        slice(r.start - m.start, r.stop - m.start) for r, m in zip(region, mid, strict=True)
    )
    d = gaussian_derivatives(x, sigma, _ORDERS, mid)
    grads = [d[(1, 0, 0)], d[(0, 1, 0)], d[(0, 0, 1)]]
    hess = [d[o][inner] for o in _ORDERS[4:]]
    yield d[(0, 0, 0)][inner]
    yield np.sqrt(sum(gr[inner] ** 2 for gr in grads))
    yield hess[0] + hess[1] + hess[2]
    yield from sym_eigvals(*hess)
    del d, hess
    pairs = ((0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2))
    tensor = [
        gaussian_derivatives(grads[i] * grads[j], outer, [(0, 0, 0)], inner)[(0, 0, 0)]
        for i, j in pairs
    ]
    del grads
    yield from sym_eigvals(*tensor)


def voxel_features(
    image: np.ndarray,
    settings: FeatureSettings,
    interior: tuple[slice, slice, slice] | None = None,
) -> np.ndarray:
    """Compute the features of every voxel of ``image`` (or of an interior part of it).

    Args:
        image: (Z, Y, X) array of any real dtype (a block plus its halo, or a whole volume).
        settings: Scales and intensity normalisation.
        interior: Part of ``image`` whose features are kept (the block without its halo);
            default: all of it. Filters run on all of ``image``; only the interior is stored, so
            memory is ``interior voxels * n_features * 4`` bytes plus a few ``image``-sized
            temporaries.

    Returns:
        (z, y, x, F) float32 features of the interior, ``F = settings.n_features``, in the order
        of ``settings.names``.
    """
    x = (np.asarray(image, dtype=np.float32) - np.float32(settings.offset)) / np.float32(
        settings.scale
    )
    if interior is None:
        interior = (slice(None),) * 3
    region = tuple(slice(*r.indices(n)[:2]) for r, n in zip(interior, x.shape, strict=True))
    shape = x[region].shape
    out = np.empty((*shape, settings.n_features), dtype=np.float32)
    out[..., 0] = x[region]
    k = 1
    for sigma in settings.sigmas:
        for feature in _scale_features(x, sigma, region):
            out[..., k] = feature
            k += 1
    return out


def iter_blocks(
    shape: Sequence[int], block_shape: Sequence[int], halo: int
) -> Iterator[tuple[tuple[slice, ...], tuple[slice, ...], tuple[slice, ...]]]:
    """Tile a volume into blocks, each with a halo clipped to the volume.

    Args:
        shape: (Z, Y, X) volume shape.
        block_shape: (bz, by, bx) interior block shape (clipped to ``shape``).
        halo: Context in voxels added on every side (where the volume allows).

    Yields:
        ``(block, crop, interior)``: the block's region in the volume, the region to read
        (block plus halo), and the block's region inside the crop.
    """
    block_shape = [max(1, min(int(b), int(s))) for b, s in zip(block_shape, shape, strict=True)]
    starts = [range(0, int(s), b) for s, b in zip(shape, block_shape, strict=True)]
    for z in starts[0]:
        for y in starts[1]:
            for x in starts[2]:
                block, crop, interior = [], [], []
                for lo, b, s in zip((z, y, x), block_shape, shape, strict=True):
                    hi = min(lo + b, int(s))
                    c0, c1 = max(0, lo - halo), min(int(s), hi + halo)
                    block.append(slice(lo, hi))
                    crop.append(slice(c0, c1))
                    interior.append(slice(lo - c0, hi - c0))
                yield tuple(block), tuple(crop), tuple(interior)

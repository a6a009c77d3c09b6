"""Estimate the mean particle diameter of a scan from the image alone (``particle_size=auto``).

The network needs the scan resized so that particles have a common diameter, hence the mean
particle diameter in voxels. :func:`estimate_particle_size` estimates it for a scan of bright
particles embedded in a darker matrix (mineral grains in epoxy resin), from at most
``max_voxels`` voxels read lazily from a numpy array, memmap or zarr array.

**Target quantity.** The number-weighted mean, over particles, of the equivalent-sphere diameter
``cbrt(6 V / pi)`` -- the quantity :func:`particleseg.synth.dataset.mean_equivalent_diameter`
computes from the labels, which the datasets store as ``particle_size``. Particles cut by a face
of the scan count with their visible part, as they do there.

**Method.** This module plans and reads the blocks, chooses the smoothing and averages; steps 2,
3, 5 and 6 act on one block and are described in full in
:mod:`particleseg.analysis._block_measure`, which implements them.

1. Read the whole scan if it has at most ``max_voxels`` voxels, else up to three blocks spread
   along Z (centred in Y and X, each as cubic as the scan allows) with ``max_voxels`` in all.
2. Smooth with a Gaussian (``sigma`` in voxels of the finest axis) and find the level and noise
   of the *matrix* phase from the histogram.
3. Foreground: voxels well above the matrix, with each particle's boundary at a fixed fraction
   ``ISO_LEVEL`` of the *local* contrast (Bernsen's local threshold); holes are filled.
4. Smoothing: start at 1 voxel and move to 1.5, 2, 3 voxels while that grows the foreground by
   more than ``SIGMA_GAIN`` (low-contrast particles only emerge from the noise when smoothed
   more; with good contrast the foreground does not grow and the finest smoothing stays).
5. Touching particles: watershed of the distance transform, with basins merged unless a neck
   separates them.
6. Diameters of the particles of at least ``MIN_VOLUME`` voxels and at least
   ``RELATIVE_MIN_DIAMETER`` times the median diameter (smaller ones are specks of noise or
   artefacts, which would drag a number-weighted mean down), weighted by the Miles-Lantuejoul
   factor where blocks were cut out of a larger scan.

The constants (of this module and of :mod:`particleseg.analysis._block_measure`) were set on
generated data only (``particleseg.synth``, full and fast CT, seeds other than those of the
evaluation): ``ISO_LEVEL`` so that the foreground volume matches the labels; ``SEED_K``,
``INTERIOR``, ``CREVICE``, ``SIMILAR`` and ``RELATIVE_MIN_DIAMETER`` by looking at failures
there; the others are round values. See
``benchmarks/bench_particle_size.py`` for the error on the synthetic dataset.

Anisotropic spacing: the smoothing, windows and distances are in physical units, and the
diameter is returned in voxels of the finest axis (``diameter_px``) and in voxels of each axis
(``diameter_px_zyx``, which :func:`particleseg.transforms.resize.zoom_factors` accepts).

Limitations: particles must be brighter than the matrix. Without a matrix phase (grains packed
to percolation, as in soil) nothing stands out from the "matrix" and a ValueError asks for an
explicit size. Particles at a contrast of about the noise level are partly missed, and particles
below about 4 voxels across are lost: both over-estimate the mean. A contact between two grains
wider than a blurred touching point is not split. Only the voxels read are checked for NaN.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from particleseg.analysis._block_measure import (
    DETECT_K,
    _diameters,
    _foreground,
    _matrix,
    _smooth,
    _split,
)
from particleseg.spacing import VOXELS, check_spacing

__all__ = [
    "ParticleSizeEstimate",
    "block_diameters",
    "estimate_particle_size",
    "mean_diameter",
    "plan_blocks",
]

#: Gaussian smoothing (voxels of the finest axis) tried in turn.
SMOOTHING_SIGMAS = (1.0, 1.5, 2.0, 3.0)
#: Move to the next smoothing only when it grows the foreground by more than this factor.
SIGMA_GAIN = 1.15
#: Particles whose diameter is below this fraction of the median one are taken for specks.
RELATIVE_MIN_DIAMETER = 0.25
#: Largest number of blocks read from a scan larger than ``max_voxels``.
MAX_BLOCKS = 3
#: The smoothing is chosen on a central part of a block of at most this many voxels.
LADDER_VOXELS = 8_000_000
#: Fewer particles than this give a warning: the mean is then uncertain.
FEW_PARTICLES = 10

_HINT = "pass particle_size (or particle_size_px) explicitly"


@dataclass(frozen=True)
class ParticleSizeEstimate:
    """Result of :func:`estimate_particle_size`.

    Attributes:
        diameter_px: Estimated number-weighted mean equivalent-sphere diameter, in voxels of the
            finest axis (of any axis when the spacing is isotropic).
        diameter_px_zyx: The same diameter in voxels of each axis (Z, Y, X).
        method: How it was obtained (smoothing used, blocks read), for logs.
        n_particles_used: Number of particles averaged.
        foreground_fraction: Fraction of the voxels read that are particle.
        threshold: Intensity (image units) above which voxels were particle candidates; the
            particle boundaries themselves follow the local contrast (mean over blocks).
        voxels_read: Number of voxels read from the image.
    """

    diameter_px: float
    diameter_px_zyx: tuple[float, float, float]
    method: str
    n_particles_used: int
    foreground_fraction: float
    threshold: float
    voxels_read: int

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable dictionary of the fields."""
        out = dataclasses.asdict(self)
        out["diameter_px_zyx"] = list(self.diameter_px_zyx)
        return out


# -- input -----------------------------------------------------------------------------------


def _shape_of(image: Any) -> tuple[int, ...]:
    shape = getattr(image, "shape", None)
    if shape is None:
        shape = np.shape(image)
    return tuple(int(n) for n in shape)


def _box(shape: tuple[int, ...], budget: int) -> list[int]:
    """Block extents as close to a cube as ``shape`` allows, with at most ``budget`` voxels."""
    dims = [0, 0, 0]
    free = [0, 1, 2]
    left = float(budget)
    while free:
        side = left ** (1.0 / len(free))
        small = [a for a in free if shape[a] <= side]
        if not small:
            for a in free:
                dims[a] = max(1, min(shape[a], int(side)))
            break
        for a in small:
            dims[a] = shape[a]
            left /= shape[a]
            free.remove(a)
    return dims


def plan_blocks(
    shape: Sequence[int], max_voxels: int, max_blocks: int = MAX_BLOCKS
) -> list[tuple[slice, slice, slice]]:
    """The blocks :func:`estimate_particle_size` reads from a volume of ``shape``.

    The whole volume when it has at most ``max_voxels`` voxels; otherwise up to ``max_blocks``
    blocks, as cubic as the shape allows, spread evenly along Z (without overlap) and centred in
    Y and X, with at most ``max_voxels`` voxels in all.

    Args:
        shape: (Z, Y, X) volume shape.
        max_voxels: Voxel budget (>= 1).
        max_blocks: Largest number of blocks.

    Returns:
        One (Z, Y, X) tuple of slices per block.
    """
    shape = tuple(int(n) for n in shape)
    if math.prod(shape) <= max_voxels:
        return [tuple(slice(0, n) for n in shape)]
    n = max(1, int(max_blocks))
    while True:
        dims = _box(shape, max_voxels // n)
        if n == 1 or dims[0] * n <= shape[0]:
            break
        n -= 1
    blocks = []
    for i in range(n):
        z0 = round((i + 0.5) * shape[0] / n - dims[0] / 2)
        z0 = min(max(z0, 0), shape[0] - dims[0])
        starts = (z0, (shape[1] - dims[1]) // 2, (shape[2] - dims[2]) // 2)
        blocks.append(tuple(slice(s, s + d) for s, d in zip(starts, dims, strict=True)))
    return blocks


def _read(image: Any, block: tuple[slice, slice, slice]) -> np.ndarray:
    """One block as float32, after checking its dtype and values."""
    raw = np.asarray(image[block])
    if raw.dtype == bool or not np.issubdtype(raw.dtype, np.number) or np.iscomplexobj(raw):
        raise ValueError(f"image must have a real numeric dtype, got {raw.dtype}")
    out = raw.astype(np.float32)
    if not np.isfinite(out).all():
        raise ValueError("image contains NaN or infinite values (in the voxels read)")
    return out


# -- smoothing -------------------------------------------------------------------------------


def _central(shape: tuple[int, ...], budget: int) -> tuple[slice, ...]:
    dims = _box(shape, budget)
    return tuple(slice((n - d) // 2, (n - d) // 2 + d) for n, d in zip(shape, dims, strict=True))


def _choose_sigma(block: np.ndarray, spacing: np.ndarray) -> float:
    """The smoothing of step 4 in the module docstring, chosen on (a central part of) a block."""
    part = block[_central(block.shape, LADDER_VOXELS)] if block.size > LADDER_VOXELS else block
    chosen, fraction = SMOOTHING_SIGMAS[0], -1.0
    for sigma in SMOOTHING_SIGMAS:
        s = _smooth(part, sigma, spacing)
        level, noise = _matrix(s)
        f = float(_foreground(s, level, noise, sigma, spacing).mean())
        if fraction >= 0 and f <= SIGMA_GAIN * fraction:
            break
        chosen, fraction = sigma, f
    return chosen


# -- public ----------------------------------------------------------------------------------


def block_diameters(
    labels: np.ndarray, spacing: Sequence[float], cut: Sequence[tuple[bool, bool]]
) -> tuple[np.ndarray, np.ndarray]:
    """Equivalent diameters and Miles-Lantuejoul weights of the particles of a labelled block.

    Args:
        labels: (Z, Y, X) integer labels, 0 = background, ids consecutive from 1.
        spacing: (3,) voxel size in the unit the diameters come in (e.g. voxels of the scan's
            finest axis).
        cut: per axis, whether the block's (low, high) face cuts through a larger scan; a
            particle touching such a face is left out, the others are weighted for it.

    Returns:
        (diameters, weights), float64 (n,), particles below ``MIN_VOLUME`` left out.
    """
    return _diameters(labels, np.asarray(spacing, float), list(cut))


def mean_diameter(diameters: np.ndarray, weights: np.ndarray) -> tuple[float, int]:
    """The weighted mean diameter, specks below RELATIVE_MIN_DIAMETER x the median left out.

    Returns:
        (mean, particles used); (nan, 0) when nothing is left or the weights are all zero.
    """
    d, w = np.asarray(diameters, float), np.asarray(weights, float)
    if len(d):  # specks far smaller than the typical particle: noise or artefacts
        keep = d >= RELATIVE_MIN_DIAMETER * np.median(d)
        d, w = d[keep], w[keep]
    if len(d) == 0 or not w.sum() > 0:
        return math.nan, 0
    return float(np.sum(w * d) / np.sum(w)), len(d)


def estimate_particle_size(
    image: Any,
    spacing: float | Sequence[float] | None = None,
    max_voxels: int = 32_000_000,
    seed: int = 0,
) -> ParticleSizeEstimate:
    """Estimate the mean particle diameter (voxels) of a scan from the image alone.

    The target is the number-weighted mean equivalent-sphere diameter of the particles, as
    ``particle_size`` in the datasets (see the module docstring for the method and its limits).

    Args:
        image: (Z, Y, X) greyscale volume of bright particles in a darker matrix: a numpy
            array, memmap, zarr array or anything sliceable with ``shape`` (uint8, uint16,
            float, ...). Read lazily: at most about ``max_voxels`` voxels.
        spacing: Voxel size, one number or (Z, Y, X); only ratios matter. None: isotropic.
        max_voxels: Voxel budget of what is read (the whole scan when it is that small).
        seed: Kept for API stability; the estimate is deterministic and does not use it.

    Returns:
        The :class:`ParticleSizeEstimate`.

    Raises:
        ValueError: If the image is not 3D, is empty, has a non-numeric dtype, NaN or infinite
            values or a constant value, or if no particles can be found in it (then pass
            ``particle_size`` or ``particle_size_px`` explicitly).
    """
    del seed  # deterministic; the argument keeps the API open to a randomised sampler
    shape = _shape_of(image)
    if len(shape) != 3:
        raise ValueError(f"image must be a 3D (Z, Y, X) volume, got shape {shape}")
    if math.prod(shape) == 0:
        raise ValueError(f"image is empty (shape {shape})")
    if isinstance(max_voxels, bool) or not isinstance(max_voxels, int | np.integer):
        raise ValueError(f"max_voxels must be a positive integer, got {max_voxels!r}")
    if max_voxels < 1:
        raise ValueError(f"max_voxels must be a positive integer, got {max_voxels!r}")
    rel = np.array(check_spacing(spacing, default=VOXELS))
    rel /= rel.min()  # relative to the finest axis
    if not hasattr(image, "shape"):
        image = np.asarray(image)

    blocks = plan_blocks(shape, max_voxels)
    data = []
    low = high = None
    for block in blocks:
        values = _read(image, block)
        low = values.min() if low is None else min(low, values.min())
        high = values.max() if high is None else max(high, values.max())
        data.append(values)
    if low == high:
        raise ValueError(
            f"image is constant (value {float(low):g} in the voxels read); there are no "
            f"particles to measure: {_HINT}"
        )

    sigma = _choose_sigma(data[len(data) // 2], rel)
    diameters, weights, thresholds = [], [], []
    foreground = 0
    for block, values in zip(blocks, data, strict=True):
        s = _smooth(values, sigma, rel)
        level, noise = _matrix(s)
        thresholds.append(level + DETECT_K * noise)
        mask = _foreground(s, level, noise, sigma, rel)
        del s
        foreground += int(np.count_nonzero(mask))
        cut = [(sl.start > 0, sl.stop < n) for sl, n in zip(block, shape, strict=True)]
        d, w = block_diameters(_split(mask, rel, sigma), rel, cut)
        diameters.append(d)
        weights.append(w)
    mean, used = mean_diameter(np.concatenate(diameters), np.concatenate(weights))
    read = sum(v.size for v in data)
    if used == 0:
        raise ValueError(
            f"no particles found in the image (shape {shape}; nothing stands out from the "
            f"matrix in the {read} voxels read): {_HINT}"
        )
    if used < FEW_PARTICLES:
        warnings.warn(
            f"particle size estimated from only {used} particles; it may be off: {_HINT}",
            stacklevel=2,
        )
    finest = 1.0 / rel  # voxels of each axis per voxel of the finest axis
    return ParticleSizeEstimate(
        diameter_px=mean,
        diameter_px_zyx=tuple(float(mean * f) for f in finest),
        method=(
            f"local-contrast threshold + distance-transform split, mean equivalent-sphere "
            f"diameter (smoothing {sigma:g} voxels, {len(blocks)} block(s))"
        ),
        n_particles_used=used,
        foreground_fraction=foreground / read,
        threshold=float(np.mean(thresholds)),
        voxels_read=int(read),
    )

"""Estimate the mean particle diameter of a scan from the image alone (``particle_size=auto``).

The network needs the scan resized so that particles have a common diameter, hence the mean
particle diameter in voxels. :func:`estimate_particle_size` estimates it for a scan of bright
particles embedded in a darker matrix (mineral grains in epoxy resin), from at most
``max_voxels`` voxels read lazily from a numpy array, memmap or zarr array.

**Target quantity.** The number-weighted mean, over particles, of the equivalent-sphere diameter
``cbrt(6 V / pi)`` -- the quantity :func:`particleseg.synth.dataset.mean_equivalent_diameter`
computes from the labels, which the datasets store as ``particle_size``. Particles cut by a face
of the scan count with their visible part, as they do there.

**Method.**

1. Read the whole scan if it has at most ``max_voxels`` voxels, else up to three blocks spread
   along Z (centred in Y and X, each as cubic as the scan allows) with ``max_voxels`` in all.
2. Smooth with a Gaussian (``sigma`` in voxels of the finest axis). Split the histogram into
   modes at its valleys; the *matrix* is the brightest mode whose band of intensities holds a
   connected region at least a quarter as large as the largest one (resin rather than the air
   around the sample, and rather than a mineral phase, which is broken into grains). Its level is
   the mode, its noise the MAD below the mode inside the band (particles only add to the bright
   side, even where their contrast is too low to form a mode of their own).
3. Foreground: voxels ``DETECT_K`` noise levels above the matrix, opened, keeping only the
   connected parts that reach ``SEED_K`` noise levels, and nothing at all unless some voxel of
   the block reaches ``STRONG_K`` (smoothed noise alone does not). Each particle's boundary is
   then placed at a fixed fraction ``ISO_LEVEL`` of the *local* contrast: near the candidates'
   border a voxel stays where it is above ``min + ISO_LEVEL * (max - min)`` of a window about
   twice the edge width, or where that window is flat. This is Bernsen's local threshold; it
   places boundaries of dim and bright particles alike and follows cupping. Holes (pores,
   cracks) are filled.
4. Smoothing: start at 1 voxel and move to 1.5, 2, 3 voxels while that grows the foreground by
   more than ``SIGMA_GAIN`` (low-contrast particles only emerge from the noise when smoothed
   more; with good contrast the foreground does not grow and the finest smoothing stays).
5. Touching particles: watershed of the distance transform from its local maxima, then adjacent
   basins are merged, strongest saddle first, unless the saddle's distance is below
   ``SPLIT_RATIO`` times the smaller of the two basins' peaks (a narrow neck between two thick
   parts) or, for basins of similar peaks, below the neck that blur leaves between two touching
   balls (``sqrt(2 * CREVICE * edge * R)``). Elongated particles, whose ridges have no such
   neck, stay whole; lobes of star-shaped particles mostly do.
6. Diameters of the particles of at least ``MIN_VOLUME`` voxels and at least
   ``RELATIVE_MIN_DIAMETER`` times the median diameter (smaller ones are specks of noise or
   artefacts, which would drag a number-weighted mean down). Particles touching a face where
   a block was cut out of a larger scan are dropped and the others weighted by the
   Miles-Lantuejoul factor ``prod L / (L - extent)`` over the cut axes, which undoes the bias
   towards small particles of dropping them.

The constants were set on generated data only (``particleseg.synth``, full and fast CT, seeds
other than those of the evaluation): ``ISO_LEVEL`` so that the foreground volume matches the
labels; ``SEED_K``, ``INTERIOR``, ``CREVICE``, ``SIMILAR`` and ``RELATIVE_MIN_DIAMETER`` by
looking at failures there; the others are round values. See
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

import cc3d
import edt
import fastremap
import numpy as np
import scipy.ndimage as ndi
from skimage.segmentation import watershed

__all__ = ["ParticleSizeEstimate", "estimate_particle_size", "plan_blocks"]

#: Gaussian smoothing (voxels of the finest axis) tried in turn.
SMOOTHING_SIGMAS = (1.0, 1.5, 2.0, 3.0)
#: Move to the next smoothing only when it grows the foreground by more than this factor.
SIGMA_GAIN = 1.15
#: Foreground candidates: matrix level plus this many noise levels.
DETECT_K = 3.0
#: A candidate region is kept only if some voxel reaches this many noise levels.
SEED_K = 4.5
#: A block holds particles only if some voxel reaches this many noise levels (smoothed noise
#: alone stays below about 5.5 in 32 million voxels).
STRONG_K = 6.0
#: A window whose contrast is below this many noise levels counts as flat (particle interior).
FLAT_K = 4.0
#: Candidate voxels farther than this many edge widths from the candidates' border are
#: particle whatever their local contrast (noise inside large grains).
INTERIOR = 3.0
#: Particle boundary at this fraction of the local contrast (calibrated on generated data).
ISO_LEVEL = 0.45
#: Two basins of the distance transform are split when the saddle between them is below this
#: fraction of the smaller peak.
SPLIT_RATIO = 0.5
#: ... or below the neck that blur leaves between two touching balls of that peak radius R,
#: ``sqrt(2 * CREVICE * edge * R)`` (the crevice around their contact fills to a depth of about
#: ``CREVICE`` edge widths).
CREVICE = 0.8
#: The second rule applies only to basins whose peaks differ by at most this factor (two
#: touching grains, rather than a lobe of a star-shaped grain).
SIMILAR = 1.5
#: Basins whose peak distance is below this (voxels) are never split off.
MIN_SPLIT_RADIUS = 2.0
#: ... nor those whose peak rises less than this (voxels) above the saddle.
MIN_SPLIT_DEPTH = 1.0
#: Smallest particle counted, in voxels of the finest axis (a ball about 2.5 voxels across).
MIN_VOLUME = 8.0
#: Particles whose diameter is below this fraction of the median one are taken for specks.
RELATIVE_MIN_DIAMETER = 0.25
#: Largest number of blocks read from a scan larger than ``max_voxels``.
MAX_BLOCKS = 3
#: The smoothing is chosen on a central part of a block of at most this many voxels.
LADDER_VOXELS = 8_000_000
#: Fewer particles than this give a warning: the mean is then uncertain.
FEW_PARTICLES = 10

_CROSS = ndi.generate_binary_structure(3, 1)
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


def _check_spacing(spacing: float | Sequence[float] | None) -> np.ndarray:
    """Spacing as 3 positive finite floats, relative to the finest axis (min 1)."""
    if spacing is None:
        return np.ones(3)
    values = np.atleast_1d(np.asarray(spacing, dtype=float))
    if values.size == 1:
        values = np.repeat(values, 3)
    if values.shape != (3,) or not np.all(np.isfinite(values)) or np.any(values <= 0):
        raise ValueError(
            f"spacing must be a positive number or 3 positive numbers (Z, Y, X), got {spacing!r}"
        )
    return values / values.min()


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


# -- one block -------------------------------------------------------------------------------


def _smooth(block: np.ndarray, sigma: float, spacing: np.ndarray) -> np.ndarray:
    return ndi.gaussian_filter(block, sigma / spacing, mode="nearest")


def _modes(values: np.ndarray, bins: int = 256) -> list[tuple[float, float, float]]:
    """Histogram modes of ``values`` as (peak, low bound, high bound), split at valleys."""
    lo, hi = np.percentile(values, [0.05, 99.95])
    if not hi > lo:
        lo, hi = float(values.min()), float(values.max())
    hist, edges = np.histogram(values, bins=bins, range=(lo, hi))
    h = ndi.gaussian_filter1d(hist.astype(float), 2.0)
    centres = 0.5 * (edges[:-1] + edges[1:])
    left = np.r_[-np.inf, h[:-1]]
    right = np.r_[h[1:], -np.inf]
    peaks = [int(i) for i in np.flatnonzero((h >= left) & (h > right) & (h > 0.02 * h.max()))]
    merged = True
    while merged and len(peaks) > 1:  # merge modes without a real valley between them
        merged = False
        for j in range(len(peaks) - 1):
            a, b = peaks[j], peaks[j + 1]
            if h[a : b + 1].min() >= 0.8 * min(h[a], h[b]):
                peaks.pop(j if h[a] < h[b] else j + 1)
                merged = True
                break
    bounds = [-np.inf]
    for a, b in zip(peaks[:-1], peaks[1:], strict=True):
        bounds.append(float(centres[a + int(np.argmin(h[a : b + 1]))]))
    bounds.append(np.inf)
    return [(float(centres[p]), bounds[j], bounds[j + 1]) for j, p in enumerate(peaks)]


def _matrix(s: np.ndarray) -> tuple[float, float]:
    """Level and noise (std) of the matrix phase of smoothed block ``s``."""
    step = max(1, round((s.size / 4_000_000) ** (1 / 3)))
    coarse = s[::step, ::step, ::step]
    modes = _modes(coarse.ravel())
    largest = []
    for _, lo, hi in modes:
        counts = np.bincount(
            cc3d.connected_components((coarse >= lo) & (coarse < hi), connectivity=6).ravel()
        )[1:]
        largest.append(int(counts.max()) if len(counts) else 0)
    j = max(i for i, n in enumerate(largest) if n >= 0.25 * max(largest))
    level, lo, hi = modes[j]
    band = (s >= lo) & (s < hi)
    core = ndi.binary_erosion(band, structure=_CROSS, iterations=2)
    values = s[core] if core.sum() >= 1000 else s[band]
    below = values[values <= level]  # particles only ever add to the bright side
    noise = 1.4826 * float(np.median(level - below)) if below.size else 0.0
    spread = float(np.percentile(coarse, 99.9) - np.percentile(coarse, 0.1))
    return level, max(noise, 1e-3 * spread, 1e-12)


def _fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fill background regions that do not reach the block border (pores, cracks)."""
    background = cc3d.connected_components(~mask, connectivity=6)
    faces = [background[0], background[-1], background[:, 0], background[:, -1]]
    faces += [background[:, :, 0], background[:, :, -1]]
    outside = np.unique(np.concatenate([f.ravel() for f in faces]))
    holes = (background > 0) & ~np.isin(background, outside)
    return mask | holes


def _edge_width(sigma: float) -> float:
    """Blur of particle edges (voxels): the smoothing plus about a voxel of scanner blur."""
    return math.sqrt(sigma**2 + 1.0)


def _foreground(
    s: np.ndarray, level: float, noise: float, sigma: float, spacing: np.ndarray
) -> np.ndarray:
    """Particle mask of smoothed block ``s`` (see the module docstring, step 3)."""
    candidates = ndi.binary_opening(s > level + DETECT_K * noise, structure=_CROSS)
    regions = cc3d.connected_components(candidates, connectivity=6)
    # seeds keep off the faces, where the smoothed noise is stronger (fewer voxels averaged)
    inner = tuple(
        slice(r, n - r)
        for n, sp in zip(s.shape, spacing, strict=True)
        for r in [min(math.ceil(2 * sigma / sp), (n - 1) // 2)]
    )
    if not (s[inner] > level + STRONG_K * noise).any():
        return np.zeros(s.shape, bool)
    seeds = np.zeros(s.shape, bool)
    seeds[inner] = s[inner] > level + SEED_K * noise
    keep = np.unique(regions[seeds])
    del seeds
    keep = keep[keep > 0]
    if len(keep) == 0:
        return np.zeros(s.shape, bool)
    candidates = np.isin(regions, keep)
    del regions
    edge = _edge_width(sigma)
    size = [max(3, 2 * math.ceil(2 * edge / sp) + 1) for sp in spacing]
    high = ndi.maximum_filter(s, size=size)
    low = ndi.minimum_filter(s, size=size)
    contrast = high - low
    del high
    # the local threshold only moves boundaries: deeper inside, candidates stay particle
    reach = INTERIOR * edge
    deep = edt.edt(candidates, anisotropy=tuple(spacing), black_border=False) > reach
    mask = candidates & (deep | (s >= low + ISO_LEVEL * contrast) | (contrast < FLAT_K * noise))
    del low, contrast, candidates, deep
    mask = ndi.binary_opening(mask, structure=_CROSS)
    return _fill_holes(mask)


def _split(mask: np.ndarray, spacing: np.ndarray, sigma: float) -> np.ndarray:
    """Instance labels of ``mask`` with touching particles separated (module docstring, 5)."""
    dist = edt.edt(mask, anisotropy=tuple(spacing), black_border=False).astype(np.float32)
    maxima = (dist == ndi.maximum_filter(dist, size=3)) & mask
    markers = cc3d.connected_components(maxima, connectivity=26)
    n = int(markers.max())
    if n < 2:
        return markers if n == 0 else mask.astype(np.uint32)
    basins = watershed(-dist, markers, mask=mask)
    peak = np.zeros(n + 1, np.float64)
    np.maximum.at(peak, markers[maxima], dist[maxima])
    del markers, maxima
    lows, highs, saddles = [], [], []
    for axis in range(3):
        a = [slice(None)] * 3
        b = [slice(None)] * 3
        a[axis], b[axis] = slice(None, -1), slice(1, None)
        la, lb = basins[tuple(a)], basins[tuple(b)]
        sel = (la != lb) & (la > 0) & (lb > 0)
        va, vb = la[sel].astype(np.int64), lb[sel].astype(np.int64)
        lows.append(np.minimum(va, vb))
        highs.append(np.maximum(va, vb))
        saddles.append(np.minimum(dist[tuple(a)][sel], dist[tuple(b)][sel]))
    key = np.concatenate(lows) * (n + 1) + np.concatenate(highs)
    value = np.concatenate(saddles)
    parent = np.arange(n + 1)
    crevice = CREVICE * _edge_width(sigma)

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    if len(key):
        order = np.argsort(key, kind="stable")
        key, value = key[order], value[order]
        first = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
        saddle = np.maximum.reduceat(value, first)
        pairs = key[first]
        for j in np.argsort(-saddle, kind="stable"):
            ra, rb = root(int(pairs[j] // (n + 1))), root(int(pairs[j] % (n + 1)))
            if ra == rb:
                continue
            smaller, larger = sorted((peak[ra], peak[rb]))
            neck = SPLIT_RATIO * smaller
            if larger <= SIMILAR * smaller:
                neck = max(neck, math.sqrt(2.0 * crevice * smaller))
            if (
                smaller < MIN_SPLIT_RADIUS
                or smaller - saddle[j] < MIN_SPLIT_DEPTH
                or saddle[j] >= neck
            ):
                parent[rb] = ra
                peak[ra] = max(peak[ra], peak[rb])
    roots = np.array([root(i) for i in range(n + 1)], dtype=np.uint32)
    labels, _ = fastremap.renumber(roots[basins], in_place=True)
    return labels


def _diameters(
    labels: np.ndarray, spacing: np.ndarray, cut: list[tuple[bool, bool]]
) -> tuple[np.ndarray, np.ndarray]:
    """Equivalent diameters and Miles-Lantuejoul weights of the labelled particles.

    ``cut[axis]`` says whether the block's low / high face along that axis is a cut through a
    larger scan; particles touching such a face are dropped.
    """
    counts = np.bincount(labels.ravel())[1:]
    boxes = ndi.find_objects(labels)
    volume = counts * float(np.prod(spacing))
    diam, weight = [], []
    for i, box in enumerate(boxes):
        if box is None or volume[i] < MIN_VOLUME:
            continue
        w = 1.0
        for axis, (cut_low, cut_high) in enumerate(cut):
            extent, length = box[axis].stop - box[axis].start, labels.shape[axis]
            if (cut_low and box[axis].start == 0) or (cut_high and box[axis].stop == length):
                w = 0.0
                break
            if cut_low or cut_high:
                w *= length / max(length - extent, 1)
        if w > 0:
            diam.append(math.cbrt(6.0 * volume[i] / math.pi))
            weight.append(w)
    return np.asarray(diam, float), np.asarray(weight, float)


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
    rel = _check_spacing(spacing)
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
        d, w = _diameters(_split(mask, rel, sigma), rel, cut)
        diameters.append(d)
        weights.append(w)
    d, w = np.concatenate(diameters), np.concatenate(weights)
    if len(d):  # specks far smaller than the typical particle: noise or artefacts
        keep = d >= RELATIVE_MIN_DIAMETER * np.median(d)
        d, w = d[keep], w[keep]
    read = sum(v.size for v in data)
    if len(d) == 0 or not w.sum() > 0:
        raise ValueError(
            f"no particles found in the image (shape {shape}; nothing stands out from the "
            f"matrix in the {read} voxels read): {_HINT}"
        )
    if len(d) < FEW_PARTICLES:
        warnings.warn(
            f"particle size estimated from only {len(d)} particles; it may be off: {_HINT}",
            stacklevel=2,
        )
    mean = float(np.sum(w * d) / np.sum(w))
    finest = 1.0 / rel  # voxels of each axis per voxel of the finest axis
    return ParticleSizeEstimate(
        diameter_px=mean,
        diameter_px_zyx=tuple(float(mean * f) for f in finest),
        method=(
            f"local-contrast threshold + distance-transform split, mean equivalent-sphere "
            f"diameter (smoothing {sigma:g} voxels, {len(blocks)} block(s))"
        ),
        n_particles_used=len(d),
        foreground_fraction=foreground / read,
        threshold=float(np.mean(thresholds)),
        voxels_read=int(read),
    )

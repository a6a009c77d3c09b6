"""Particles of one block for :mod:`particleseg.analysis.particle_size`: matrix, foreground, split.

Steps 2, 3, 5 and 6 of the method in :mod:`particleseg.analysis.particle_size` (numbered as
there): the matrix level and noise of a smoothed block, its particle mask, the split of touching
particles and their diameters.

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
5. Touching particles: watershed of the distance transform from its local maxima, then adjacent
   basins are merged, strongest saddle first, unless the saddle's distance is below
   ``SPLIT_RATIO`` times the smaller of the two basins' peaks (a narrow neck between two thick
   parts) or, for basins of similar peaks, below the neck that blur leaves between two touching
   balls (``sqrt(2 * CREVICE * edge * R)``). Elongated particles, whose ridges have no such
   neck, stay whole; lobes of star-shaped particles mostly do.
6. Diameters of the particles of at least ``MIN_VOLUME`` voxels (smaller ones are specks of
   noise or artefacts, which would drag a number-weighted mean down). Particles touching a face
   where a block was cut out of a larger scan are dropped and the others weighted by the
   Miles-Lantuejoul factor ``prod L / (L - extent)`` over the cut axes, which undoes the bias
   towards small particles of dropping them.
"""

from __future__ import annotations

import math

import cc3d
import edt
import fastremap
import numpy as np
import scipy.ndimage as ndi
from skimage.segmentation import watershed

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

_CROSS = ndi.generate_binary_structure(3, 1)


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

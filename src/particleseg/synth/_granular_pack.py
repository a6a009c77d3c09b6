"""Seed spheres of a dense granular packing: log-normal sizes, relaxed to a jammed state (internal).

Spheres are drawn until their volumes fill ``fraction`` of a box (or a cylinder) slightly larger
than the scan, put at random and pushed apart pairwise (each pair by its overlap, the smaller
sphere moving more) for a fixed number of sweeps. Above the jamming fraction (about 0.64 for
equal spheres, a little more for log-normal sizes) overlaps cannot all vanish, so every sphere
ends up pressed against several neighbours: these become the contacts of the grains.

Neighbour search is a cell list; each sphere looks only for neighbours no larger than itself,
within twice its radius, so the cost grows with the number of spheres, not with their spread in
size.
"""

from __future__ import annotations

import math

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def _cell_list(pos, lo, cell, dims):  # pragma: no cover - compiled
    """CSR cell list: ``start`` (ncell + 1,) and ``items`` (n,) sphere ids per cell."""
    n = pos.shape[0]
    ncell = dims[0] * dims[1] * dims[2]
    idx = np.empty(n, np.int64)
    for i in range(n):
        c = 0
        for a in range(3):
            k = int(math.floor((pos[i, a] - lo[a]) / cell))
            k = min(max(k, 0), dims[a] - 1)
            c = c * dims[a] + k
        idx[i] = c
    start = np.zeros(ncell + 1, np.int64)
    for i in range(n):
        start[idx[i] + 1] += 1
    for c in range(ncell):
        start[c + 1] += start[c]
    fill = start[:-1].copy()
    items = np.empty(n, np.int64)
    for i in range(n):
        items[fill[idx[i]]] = i
        fill[idx[i]] += 1
    return start, items


@numba.njit(cache=True, nogil=True)
def _relax(pos, r, lo, hi, cell, sweeps, step, cyl):  # pragma: no cover - compiled
    """Push overlapping spheres apart in place; returns the mean overlap of the last sweep.

    ``cyl`` is (enabled, cy, cx, radius): with it, sphere centres are kept so that the spheres
    stay inside the cylinder (axis Z); centres stay in the box [lo, hi] in any case.
    """
    n = pos.shape[0]
    dims = np.empty(3, np.int64)
    for a in range(3):
        dims[a] = max(1, int(math.ceil((hi[a] - lo[a]) / cell)))
    disp = np.zeros((n, 3))
    mean_overlap = 0.0
    for _ in range(sweeps):
        start, items = _cell_list(pos, lo, cell, dims)
        disp[:] = 0.0
        total, count = 0.0, 0
        for i in range(n):
            ci = np.empty(3, np.int64)
            for a in range(3):
                ci[a] = min(max(int(math.floor((pos[i, a] - lo[a]) / cell)), 0), dims[a] - 1)
            reach = int(math.ceil(2.0 * r[i] / cell))
            for z in range(max(ci[0] - reach, 0), min(ci[0] + reach + 1, dims[0])):
                for y in range(max(ci[1] - reach, 0), min(ci[1] + reach + 1, dims[1])):
                    for x in range(max(ci[2] - reach, 0), min(ci[2] + reach + 1, dims[2])):
                        c = (z * dims[1] + y) * dims[2] + x
                        for t in range(start[c], start[c + 1]):
                            j = items[t]
                            if r[j] > r[i] or (r[j] == r[i] and j <= i):
                                continue
                            d0 = pos[i, 0] - pos[j, 0]
                            d1 = pos[i, 1] - pos[j, 1]
                            d2 = pos[i, 2] - pos[j, 2]
                            d = math.sqrt(d0 * d0 + d1 * d1 + d2 * d2)
                            overlap = r[i] + r[j] - d
                            if overlap <= 0.0:
                                continue
                            total += overlap
                            count += 1
                            if d < 1e-9:
                                d0, d1, d2, d = 1.0, 0.0, 0.0, 1.0
                            mi, mj = r[i] ** 3, r[j] ** 3
                            fi = overlap * mj / (mi + mj) / d
                            fj = overlap * mi / (mi + mj) / d
                            disp[i, 0] += fi * d0
                            disp[i, 1] += fi * d1
                            disp[i, 2] += fi * d2
                            disp[j, 0] -= fj * d0
                            disp[j, 1] -= fj * d1
                            disp[j, 2] -= fj * d2
        for i in range(n):
            for a in range(3):
                pos[i, a] = min(max(pos[i, a] + step * disp[i, a], lo[a]), hi[a])
            if cyl[0] > 0:
                dy, dx = pos[i, 1] - cyl[1], pos[i, 2] - cyl[2]
                rr = math.sqrt(dy * dy + dx * dx)
                limit = max(cyl[3] - r[i], 0.0)
                if rr > limit and rr > 0:
                    pos[i, 1] = cyl[1] + dy * limit / rr
                    pos[i, 2] = cyl[2] + dx * limit / rr
        mean_overlap = total / max(count, 1)
    return mean_overlap


def draw_diameters(
    volume: float,
    median: float,
    sigma: float,
    bounds: tuple[float, float],
    cap: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Log-normal diameters (clipped to ``bounds``) until their spheres fill ``volume``.

    Returns:
        (n,) float64 diameters in voxels, at most ``cap`` of them.
    """
    out: list[np.ndarray] = []
    total, n = 0.0, 0
    while total < volume and n < cap:
        d = np.clip(rng.lognormal(np.log(median), sigma, 256), *bounds)
        cum = total + np.cumsum(np.pi / 6 * d**3)
        stop = int(np.searchsorted(cum, volume)) + 1
        d = d[: min(stop, cap - n)]
        out.append(d)
        total += float(np.pi / 6 * (d**3).sum())
        n += len(d)
    return np.concatenate(out) if out else np.zeros(0)


def pack_spheres(
    lo: np.ndarray,
    hi: np.ndarray,
    diameters: np.ndarray,
    rng: np.random.Generator,
    *,
    cylinder: tuple[float, float, float] | None = None,
    sweeps: int = 40,
) -> tuple[np.ndarray, float]:
    """Random positions for spheres in a box, relaxed towards a jammed packing.

    Args:
        lo: (3,) float lower corner of the box (voxel coordinates).
        hi: (3,) float upper corner.
        diameters: (n,) float sphere diameters in voxels.
        rng: random generator.
        cylinder: (cy, cx, radius) of a container (axis Z) the spheres must stay in, or None.
        sweeps: relaxation sweeps.

    Returns:
        ``(centres (n, 3) float64, mean overlap of the last sweep in voxels)``.
    """
    lo, hi = np.asarray(lo, np.float64), np.asarray(hi, np.float64)
    r = np.ascontiguousarray(diameters, np.float64) / 2
    n = len(r)
    if n == 0:
        return np.zeros((0, 3)), 0.0
    pos = rng.uniform(lo, hi, (n, 3))
    cyl = np.zeros(4)
    if cylinder is not None:
        cy, cx, radius = cylinder
        rho = np.sqrt(rng.uniform(0, 1, n)) * np.maximum(radius - r, 0)
        phi = rng.uniform(0, 2 * np.pi, n)
        pos[:, 1], pos[:, 2] = cy + rho * np.sin(phi), cx + rho * np.cos(phi)
        cyl[:] = (1.0, cy, cx, radius)
    cell = max(float(np.median(r)) * 2.0, 1.0)
    overlap = _relax(pos, r, lo, hi, cell, int(sweeps), 0.6, cyl)
    return pos, float(overlap)

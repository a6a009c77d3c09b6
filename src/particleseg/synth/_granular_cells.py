"""Grain depth fields of a granular packing: power cells, rounding, facets (internal, numba).

Every grain ``i`` has a seed sphere (centre ``s_i``, radius ``r_i``, power weight ``w_i = r_i^2``).
A voxel belongs to the power (Laguerre) cell of the seed with the least power distance
``|x - s_i|^2 - w_i``; two overlapping spheres meet exactly on their radical plane. Inside its
cell a grain's *depth* at ``x`` is a smooth minimum of:

- the distance to each bisector plane with another seed: ``(pd_j - pd_i) / (2 |s_j - s_i|)``;
- a ball term ``ball_i - |x - s_i|`` (rounded grains; ``ball_i <= 0`` leaves it out);
- facet planes ``h - n . (x - s_i)`` (angular grains: cut corners);
- the container wall ``R - |x_yx - c|`` (when there is a container);

with the polynomial smooth minimum of width ``k_i`` between planes (0: sharp edges) and
``kb_i`` where the ball meets them. A grain fills the voxels
where its depth exceeds the local gap; the gap is applied by the caller. Faces where two grains
reach their common plane are contacts.

For partial volume at contacts, voxels within one voxel of their cell's nearest plane also get
the depth of the grain across that plane (negative there: the caller turns both depths into
occupancies).

Candidate seeds are listed per bucket of ``B`` voxels per axis: every seed that can own a voxel of
the bucket (its least power distance over the bucket is below the bucket's upper bound of the
owner's power distance), or whose plane with the owner can come within ``reach`` voxels.
"""

from __future__ import annotations

import math

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def _bucket_box(b, bdims, size, shape):  # pragma: no cover - compiled
    """Index box (lo, hi) of voxel centres in bucket ``b``."""
    lo = np.empty(3)
    hi = np.empty(3)
    rest = b
    for a in range(2, -1, -1):
        k = rest % bdims[a]
        rest //= bdims[a]
        lo[a] = k * size
        hi[a] = min((k + 1) * size, shape[a]) - 1
    return lo, hi


@numba.njit(cache=True, nogil=True)
def _bucket_range(centre, rad, bdims, size, a):  # pragma: no cover - compiled
    k0 = int(math.floor((centre - rad) / size))
    k1 = int(math.floor((centre + rad) / size))
    return max(k0, 0), min(k1, bdims[a] - 1)


@numba.njit(cache=True, nogil=True)
def bucket_candidates(pos, w, r, margin, size, shape):  # pragma: no cover - compiled
    """Per-bucket candidate seeds as CSR arrays ``(start, items)`` (see the module docstring).

    Args:
        pos: (n, 3) float64 seed centres.
        w: (n,) float64 power weights.
        r: (n,) float64 radii.
        margin: (n,) float64 extra power distance allowed per seed (plane reach).
        size: bucket edge in voxels.
        shape: (3,) int64 volume shape.

    Returns:
        ``start`` (n_buckets + 1,) int64 and ``items`` int64 seed ids, buckets in C order.
    """
    n = pos.shape[0]
    bdims = np.empty(3, np.int64)
    for a in range(3):
        bdims[a] = (shape[a] + size - 1) // size
    nb = bdims[0] * bdims[1] * bdims[2]
    upper = np.full(nb, np.inf)
    s3 = math.sqrt(3.0) * size
    for c in range(n):  # least upper bound of the owner's power distance, per bucket
        rad = r[c] + 2.0 * s3
        z0, z1 = _bucket_range(pos[c, 0], rad, bdims, size, 0)
        y0, y1 = _bucket_range(pos[c, 1], rad, bdims, size, 1)
        x0, x1 = _bucket_range(pos[c, 2], rad, bdims, size, 2)
        for bz in range(z0, z1 + 1):
            for by in range(y0, y1 + 1):
                for bx in range(x0, x1 + 1):
                    b = (bz * bdims[1] + by) * bdims[2] + bx
                    lo, hi = _bucket_box(b, bdims, size, shape)
                    far = 0.0
                    for a in range(3):
                        e = max(abs(lo[a] - pos[c, a]), abs(hi[a] - pos[c, a]))
                        far += e * e
                    upper[b] = min(upper[b], far - w[c])
    top = -np.inf
    for b in range(nb):
        if np.isfinite(upper[b]):
            top = max(top, upper[b])
    for b in range(nb):
        if not np.isfinite(upper[b]):
            upper[b] = top
    start = np.zeros(nb + 1, np.int64)
    items = np.empty(0, np.int64)
    for fill_pass in range(2):
        fill = start[:-1].copy()
        for c in range(n):
            rad = math.sqrt(max(top + margin[c] + w[c], 0.0)) + 1.0
            z0, z1 = _bucket_range(pos[c, 0], rad, bdims, size, 0)
            y0, y1 = _bucket_range(pos[c, 1], rad, bdims, size, 1)
            x0, x1 = _bucket_range(pos[c, 2], rad, bdims, size, 2)
            for bz in range(z0, z1 + 1):
                for by in range(y0, y1 + 1):
                    for bx in range(x0, x1 + 1):
                        b = (bz * bdims[1] + by) * bdims[2] + bx
                        lo, hi = _bucket_box(b, bdims, size, shape)
                        near = 0.0
                        for a in range(3):
                            e = max(lo[a] - pos[c, a], 0.0, pos[c, a] - hi[a])
                            near += e * e
                        if near - w[c] <= upper[b] + margin[c]:
                            if fill_pass == 0:
                                start[b + 1] += 1
                            else:
                                items[fill[b]] = c
                                fill[b] += 1
        if fill_pass == 0:
            for b in range(nb):
                start[b + 1] += start[b]
            items = np.empty(start[nb], np.int64)
    return start, items


@numba.njit(cache=True, nogil=True, inline="always")
def _smin(a, b, k):  # pragma: no cover - compiled
    """Polynomial smooth minimum of width ``k`` (the plain minimum for k <= 0)."""
    m = min(a, b)
    if k <= 0.0:
        return m
    h = max(k - abs(a - b), 0.0) / k
    return m - 0.25 * k * h * h


@numba.njit(cache=True, nogil=True)
def _depth(kk, z, y, x, cand, pd, nc, pos, k, kb, ball, facets, nfac, cyl):  # pragma: no cover
    """Depth of candidate ``cand[kk]`` at (z, y, x), its nearest plane's candidate and distance."""
    i = cand[kk]
    d = np.inf
    nearest, near_d = -1, np.inf
    ki = k[i]
    for t in range(nc):
        if t == kk:
            continue
        j = cand[t]
        e0 = pos[j, 0] - pos[i, 0]
        e1 = pos[j, 1] - pos[i, 1]
        e2 = pos[j, 2] - pos[i, 2]
        length = math.sqrt(e0 * e0 + e1 * e1 + e2 * e2)
        if length < 1e-9:
            continue
        plane = (pd[t] - pd[kk]) / (2.0 * length)
        if plane < near_d:
            near_d, nearest = plane, t
        d = _smin(d, plane, ki)
    q0, q1, q2 = z - pos[i, 0], y - pos[i, 1], x - pos[i, 2]
    if ball[i] > 0.0:
        d = _smin(d, ball[i] - math.sqrt(q0 * q0 + q1 * q1 + q2 * q2), kb[i])
    for f in range(nfac[i]):
        h = facets[i, f, 3] - (facets[i, f, 0] * q0 + facets[i, f, 1] * q1 + facets[i, f, 2] * q2)
        d = _smin(d, h, ki)
    if cyl[0] > 0.0:
        dy, dx = y - cyl[1], x - cyl[2]
        d = _smin(d, cyl[3] - math.sqrt(dy * dy + dx * dx), ki)
    return d, nearest, near_d


@numba.njit(cache=True, nogil=True)
def grain_depths(
    shape, pos, w, k, kb, ball, facets, nfac, cyl, start, items, size
):  # pragma: no cover - compiled
    """Owner, depth, second grain and its depth at every voxel centre.

    Args:
        shape: (3,) int64 volume shape (Z, Y, X).
        pos: (n, 3) float64 seed centres.
        w: (n,) float64 power weights.
        k: (n,) float64 smooth-minimum width between planes, per grain.
        kb: (n,) float64 smooth-minimum width where the ball meets the planes.
        ball: (n,) float64 ball radius (<= 0: none).
        facets: (n, F, 4) float64 facet normals and offsets from the seed.
        nfac: (n,) int64 facets in use.
        cyl: (4,) float64 (enabled, cy, cx, radius) of the container wall.
        start: bucket CSR offsets from :func:`bucket_candidates`.
        items: bucket CSR seed ids.
        size: bucket edge in voxels.

    Returns:
        ``owner`` (Z, Y, X) int32 (-1 where no seed is a candidate), ``depth`` float32,
        ``second`` int32 (the grain across the nearest plane where it is within one voxel, else
        -1) and ``second_depth`` float32 (that grain's depth, -inf where there is none).
    """
    nz, ny, nx = shape[0], shape[1], shape[2]
    owner = np.full((nz, ny, nx), -1, np.int32)
    depth = np.full((nz, ny, nx), -np.inf, np.float32)
    second = np.full((nz, ny, nx), -1, np.int32)
    second_depth = np.full((nz, ny, nx), -np.inf, np.float32)
    bdims = np.empty(3, np.int64)
    for a in range(3):
        bdims[a] = (shape[a] + size - 1) // size
    longest = 0
    for b in range(len(start) - 1):
        longest = max(longest, start[b + 1] - start[b])
    pd = np.empty(max(longest, 1))
    for b in range(len(start) - 1):
        cand = items[start[b] : start[b + 1]]
        nc = len(cand)
        if nc == 0:
            continue
        lo, hi = _bucket_box(b, bdims, size, shape)
        for z in range(int(lo[0]), int(hi[0]) + 1):
            for y in range(int(lo[1]), int(hi[1]) + 1):
                for x in range(int(lo[2]), int(hi[2]) + 1):
                    best, best_pd = -1, np.inf
                    for t in range(nc):
                        c = cand[t]
                        q0, q1, q2 = z - pos[c, 0], y - pos[c, 1], x - pos[c, 2]
                        pd[t] = q0 * q0 + q1 * q1 + q2 * q2 - w[c]
                        if pd[t] < best_pd:
                            best_pd, best = pd[t], t
                    d, nearest, near_d = _depth(
                        best, z, y, x, cand, pd, nc, pos, k, kb, ball, facets, nfac, cyl
                    )
                    owner[z, y, x] = cand[best]
                    depth[z, y, x] = d
                    if nearest >= 0 and near_d < 1.0:
                        d2, _, _ = _depth(
                            nearest, z, y, x, cand, pd, nc, pos, k, kb, ball, facets, nfac, cyl
                        )
                        second[z, y, x] = cand[nearest]
                        second_depth[z, y, x] = d2
    return owner, depth, second, second_depth

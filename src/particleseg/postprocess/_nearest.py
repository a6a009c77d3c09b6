"""Numba kernels of the border assignment: nearest seed per block, and the far-voxel fallback.

Serial and ``nogil`` like those of :mod:`particleseg.postprocess._kernels`. The feature
transform is Felzenszwalb and Huttenlocher's lower envelope of parabolas, one pass per axis.
"""

from __future__ import annotations

import numba
import numpy as np

_INF = np.inf


# ---------------------------------------------------------------- nearest seed (feature transform)
@numba.njit(nogil=True, cache=True, inline="always")
def _envelope(h, n, w2, v, zb, origin):
    """Lower envelope of the parabolas ``w2 * (q - p)^2 + h[p]`` over the sites ``h[p] >= 0``.

    Returns the number ``k`` of parabolas kept; ``v[:k]`` are their sites (increasing) and
    ``zb[i]`` the left end of parabola ``i``. A parabola that only touches the envelope at one
    point is dropped, and at a boundary the left parabola wins: among equally near sites the one
    with the smallest coordinate is chosen. Boundaries are computed in volume coordinates
    (``origin + q``), the very float operations of the whole-volume transform, so that near
    ties (non-integer spacing) mostly round the same way.
    """
    k = -1
    s = 0.0
    for q in range(n):
        if h[q] < 0:
            continue
        gq = origin + q
        fq = h[q] + w2 * gq * gq
        while k >= 0:
            p = v[k]
            gp = origin + p
            s = (fq - (h[p] + w2 * gp * gp)) / (2.0 * w2 * (gq - gp))
            if s <= zb[k]:
                k -= 1
            else:
                break
        k += 1
        v[k] = q
        zb[k] = -_INF if k == 0 else s
        zb[k + 1] = _INF
    return k + 1


@numba.njit(nogil=True, cache=True)
def _ft_x(seeds, x0, x1, sx, d2, lab):
    """Nearest seed along X (ties to the smaller x), kept for columns ``x0 <= x < x1``."""
    nz, ny, nx = seeds.shape
    for z in range(nz):
        for y in range(ny):
            last = -1
            for x in range(x1):
                if seeds[z, y, x] != 0:
                    last = x
                if x >= x0:
                    if last < 0:
                        d2[z, y, x - x0] = -1.0
                        lab[z, y, x - x0] = 0
                    else:
                        d2[z, y, x - x0] = (sx * (x - last)) ** 2
                        lab[z, y, x - x0] = seeds[z, y, last]
            nxt = -1
            for x in range(nx - 1, x0 - 1, -1):
                if seeds[z, y, x] != 0:
                    nxt = x
                if x < x1 and nxt >= 0:
                    d = (sx * (nxt - x)) ** 2
                    if d2[z, y, x - x0] < 0 or d < d2[z, y, x - x0]:
                        d2[z, y, x - x0] = d
                        lab[z, y, x - x0] = seeds[z, y, nxt]


@numba.njit(nogil=True, cache=True)
def _ft_middle(d2_in, lab_in, a0, a1, w, origin, d2_out, lab_out):
    """Combine along the middle axis: (A, B, C) -> (A, a1 - a0, C) for ``a0 <= b < a1``."""
    na, nb, nc = d2_in.shape
    w2 = w * w
    h = np.empty((nc, nb), np.float64)
    hl = np.empty((nc, nb), np.uint32)
    v = np.empty(nb, np.int64)
    zb = np.empty(nb + 1, np.float64)
    for i in range(na):
        for b in range(nb):
            for c in range(nc):
                h[c, b] = d2_in[i, b, c]
                hl[c, b] = lab_in[i, b, c]
        for c in range(nc):
            k = _envelope(h[c], nb, w2, v, zb, origin)
            j = 0
            for q in range(a0, a1):
                if k == 0:
                    d2_out[i, q - a0, c] = -1.0
                    lab_out[i, q - a0, c] = 0
                    continue
                while j + 1 < k and zb[j + 1] < origin + q:
                    j += 1
                p = v[j]
                d2_out[i, q - a0, c] = w2 * (q - p) ** 2 + h[c, p]
                lab_out[i, q - a0, c] = hl[c, p]


def nearest_seed(seeds, lo, hi, spacing, origin):
    """Nearest seed voxel of the region for every interior voxel (any component).

    Separable exact Euclidean feature transform (lower envelopes of parabolas, one pass per
    axis, each pass only computing what the next one needs). Among equally near seeds the one
    with the smallest raster index wins (for integer offsets and unit spacing the squared
    distances are exact integers, so ties are exact).

    Args:
        seeds: (Z, Y, X) uint32 region, seed label where non-zero.
        lo: interior start in region coordinates.
        hi: interior stop.
        spacing: voxel size (Z, Y, X).
        origin: the region's start in the volume.

    Returns:
        Interior-shaped float32 squared distance (-1 where the region has no seed) and uint32
        label of the nearest seed.
    """
    nz, ny, _ = seeds.shape
    sz, sy, sx = spacing
    ix = hi[2] - lo[2]
    iy = hi[1] - lo[1]
    iz = hi[0] - lo[0]
    d2 = np.empty((nz, ny, ix), np.float32)
    lab = np.empty((nz, ny, ix), np.uint32)
    _ft_x(seeds, lo[2], hi[2], sx, d2, lab)
    d2y = np.empty((nz, iy, ix), np.float32)
    laby = np.empty((nz, iy, ix), np.uint32)
    _ft_middle(d2, lab, lo[1], hi[1], sy, origin[1], d2y, laby)
    del d2, lab
    # Z: the same pass on the (Y, Z, X) view, written as (Y, Z, X) then viewed back.
    d2z = np.empty((iy, iz, ix), np.float32)
    labz = np.empty((iy, iz, ix), np.uint32)
    _ft_middle(
        np.ascontiguousarray(d2y.transpose(1, 0, 2)),
        np.ascontiguousarray(laby.transpose(1, 0, 2)),
        lo[0],
        hi[0],
        sz,
        origin[0],
        d2z,
        labz,
    )
    return d2z.transpose(1, 0, 2), labz.transpose(1, 0, 2)


# ---------------------------------------------------------------- border assignment
@numba.njit(nogil=True, cache=True)
def assign(comp, seeds, lo, hi, ft_d2, ft_lab, comp_label, seed_comp, limit2, probes, out):
    """Label every interior voxel; returns how many foreground voxels stayed 0 ("far").

    A voxel of a coreless component takes its component's label; a seed keeps its own; any
    other voxel takes the nearest seed of its own component if one lies at squared distance
    ``< limit2`` (then every voxel at least as near is inside the region, so the choice is the
    global one): from the feature transform when its nearest seed is in the same component,
    else from the first hit among ``probes``, the offsets sorted by (length, raster order).
    """
    nz, ny, nx = comp.shape
    n_far = 0
    for z in range(lo[0], hi[0]):
        for y in range(lo[1], hi[1]):
            for x in range(lo[2], hi[2]):
                oz = z - lo[0]
                oy = y - lo[1]
                ox = x - lo[2]
                c = comp[z, y, x]
                if c == 0:
                    out[oz, oy, ox] = 0
                    continue
                if comp_label[c] != 0:
                    out[oz, oy, ox] = comp_label[c]
                    continue
                if seeds[z, y, x] != 0:
                    out[oz, oy, ox] = seeds[z, y, x]
                    continue
                lab = ft_lab[oz, oy, ox]
                if lab != 0 and seed_comp[lab] == c and ft_d2[oz, oy, ox] < limit2:
                    out[oz, oy, ox] = lab
                    continue
                found = 0
                if ft_d2[oz, oy, ox] >= 0 and ft_d2[oz, oy, ox] < limit2:
                    for k in range(probes.shape[0]):
                        zz = z + probes[k, 0]
                        yy = y + probes[k, 1]
                        xx = x + probes[k, 2]
                        if 0 <= zz < nz and 0 <= yy < ny and 0 <= xx < nx:
                            s = seeds[zz, yy, xx]
                            if s != 0 and comp[zz, yy, xx] == c:
                                found = s
                                break
                out[oz, oy, ox] = found
                if found == 0:
                    n_far += 1
    return n_far


# ---------------------------------------------------------------- far voxels (exact fallback)
@numba.njit(nogil=True, cache=True)
def surface_seeds(seeds, comp, wanted, lo, hi, origin, volume_shape):
    """Interior seed voxels of wanted components with a 6-neighbour that is not a seed.

    The nearest voxel of a set, seen from outside it, always has such a neighbour (a step
    towards the viewer would otherwise be nearer). The volume edge is not a neighbour.

    Returns (K, 3) global coordinates, their raster indices, seed labels and components.
    """
    nz, ny, nx = seeds.shape
    coords = np.empty((0, 3), np.int64)
    for sweep in range(2):
        k = 0
        for z in range(lo[0], hi[0]):
            for y in range(lo[1], hi[1]):
                for x in range(lo[2], hi[2]):
                    if seeds[z, y, x] == 0 or not wanted[comp[z, y, x]]:
                        continue
                    edge = (
                        (z > 0 and seeds[z - 1, y, x] == 0)
                        or (z + 1 < nz and seeds[z + 1, y, x] == 0)
                        or (y > 0 and seeds[z, y - 1, x] == 0)
                        or (y + 1 < ny and seeds[z, y + 1, x] == 0)
                        or (x > 0 and seeds[z, y, x - 1] == 0)
                        or (x + 1 < nx and seeds[z, y, x + 1] == 0)
                    )
                    if not edge:
                        continue
                    if sweep == 1:
                        coords[k, 0] = origin[0] + z
                        coords[k, 1] = origin[1] + y
                        coords[k, 2] = origin[2] + x
                    k += 1
        if sweep == 0:
            coords = np.empty((k, 3), np.int64)
    n = coords.shape[0]
    raster = np.empty(n, np.int64)
    labels = np.empty(n, np.uint32)
    comps = np.empty(n, np.int64)
    for i in range(n):
        z = coords[i, 0] - origin[0]
        y = coords[i, 1] - origin[1]
        x = coords[i, 2] - origin[2]
        raster[i] = (coords[i, 0] * volume_shape[1] + coords[i, 1]) * volume_shape[2] + coords[i, 2]
        labels[i] = seeds[z, y, x]
        comps[i] = comp[z, y, x]
    return coords, raster, labels, comps

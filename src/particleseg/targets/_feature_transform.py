"""Exact Euclidean nearest-seed labelling (a feature transform), compiled with numba.

scipy's ``distance_transform_edt(return_indices=True)`` gives the same answer but takes 4.5 s
and 800 MB at 256^3 on two cores; this separable version (Felzenszwalb & Huttenlocher's lower
envelope of parabolas, one pass per axis, tracking the arg-min) takes a fraction of that and
keeps one int32 per voxel per pass. It never imports torch.
"""

from __future__ import annotations

import numba
import numpy as np

_NONE = -1


@numba.njit(cache=True, inline="always")
def _lower_envelope(h, w2, v, z, n):
    """Build the lower envelope of parabolas ``w2 * (q - p)^2 + h[p]`` over finite ``h[p]``.

    Returns the number of parabolas ``k``; ``v[:k]`` are their sites and ``z[:k+1]`` the
    boundaries between them. ``h[p] < 0`` marks "no site at p".
    """
    k = -1
    for q in range(n):
        if h[q] < 0:
            continue
        if k < 0:
            k = 0
            v[0] = q
            z[0] = -np.inf
            z[1] = np.inf
            continue
        fq = h[q] + w2 * q * q
        while True:
            p = v[k]
            s = (fq - (h[p] + w2 * p * p)) / (2.0 * w2 * (q - p))
            if s <= z[k]:
                k -= 1
                if k < 0:
                    break
            else:
                break
        if k < 0:
            k = 0
            v[0] = q
            z[0] = -np.inf
            z[1] = np.inf
        else:
            k += 1
            v[k] = q
            z[k] = s
            z[k + 1] = np.inf
    return k + 1


@numba.njit(cache=True, parallel=True)
def _pass_x(seeds):
    """Nearest seed along X for every voxel: its x index, or -1 when the row has no seed."""
    nz, ny, nx = seeds.shape
    out = np.empty(seeds.shape, np.int32)
    for zy in numba.prange(nz * ny):
        z = zy // ny
        y = zy % ny
        last = _NONE
        for x in range(nx):
            if seeds[z, y, x]:
                last = x
            out[z, y, x] = last
        nxt = _NONE
        for x in range(nx - 1, -1, -1):
            if seeds[z, y, x]:
                nxt = x
            if nxt != _NONE and (out[z, y, x] == _NONE or nxt - x < x - out[z, y, x]):
                out[z, y, x] = nxt
    return out


@numba.njit(cache=True, parallel=True)
def _pass_y(fx, sy, sx):
    """Nearest seed within each Z slice.

    Returns its flat in-slice index ``y * nx + x`` (-1 when the slice has no seed) and the
    squared in-slice distance to it (float32), read row by row by :func:`_pass_z`.
    """
    nz, ny, nx = fx.shape
    out = np.empty(fx.shape, np.int32)
    dist2 = np.empty(fx.shape, np.float32)
    w2 = sy * sy
    for z in numba.prange(nz):
        plane_h = np.empty((nx, ny), np.float64)
        for y in range(ny):
            for x in range(nx):
                f = fx[z, y, x]
                plane_h[x, y] = -1.0 if f == _NONE else (sx * (x - f)) ** 2
        v = np.empty(ny, np.int64)
        zb = np.empty(ny + 1, np.float64)
        best = np.empty((ny, nx), np.int64)
        for x in range(nx):
            k = _lower_envelope(plane_h[x], w2, v, zb, ny)
            if k == 0:
                for y in range(ny):
                    best[y, x] = _NONE
                continue
            j = 0
            for y in range(ny):
                while j + 1 < k and zb[j + 1] < y:
                    j += 1
                best[y, x] = v[j]
        for y in range(ny):
            for x in range(nx):
                yy = best[y, x]
                if yy == _NONE:
                    out[z, y, x] = _NONE
                    dist2[z, y, x] = -1.0
                else:
                    out[z, y, x] = yy * nx + fx[z, yy, x]
                    dist2[z, y, x] = (sy * (y - yy)) ** 2 + plane_h[x, yy]
    return out, dist2


@numba.njit(cache=True, parallel=True)
def _pass_z(fyx, dist2, seed_labels, components, seed_component, sz):
    """Label of the nearest seed in 3D at every voxel with ``components != 0``.

    Voxels whose nearest seed lies in another component (``seed_component[label]`` differs
    from theirs) get 0, for the caller to resolve. Works on one (Z, X) plane per y so that
    every read is a contiguous row.
    """
    nz, ny, nx = fyx.shape
    out = np.zeros(fyx.shape, seed_labels.dtype)
    w2 = sz * sz
    for y in numba.prange(ny):
        plane_h = np.empty((nx, nz), np.float64)
        for z in range(nz):
            for x in range(nx):
                plane_h[x, z] = dist2[z, y, x]
        best = np.empty((nz, nx), np.int64)
        v = np.empty(nz, np.int64)
        zb = np.empty(nz + 1, np.float64)
        for x in range(nx):
            k = _lower_envelope(plane_h[x], w2, v, zb, nz)
            if k == 0:
                for z in range(nz):
                    best[z, x] = _NONE
                continue
            j = 0
            for z in range(nz):
                while j + 1 < k and zb[j + 1] < z:
                    j += 1
                best[z, x] = v[j]
        for z in range(nz):
            for x in range(nx):
                zz = best[z, x]
                comp = components[z, y, x]
                if zz != _NONE and comp != 0:
                    f = fyx[zz, y, x]
                    label = seed_labels[zz, f // nx, f % nx]
                    if seed_component[label] == comp:
                        out[z, y, x] = label
    return out


def nearest_seed_label(
    seed_labels: np.ndarray,
    components: np.ndarray,
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0),
) -> np.ndarray:
    """Label of the Euclidean-nearest seed voxel, where that seed is in the voxel's component.

    Args:
        seed_labels: (Z, Y, X) uint32 labels 1..N; non-zero voxels are seeds.
        components: (Z, Y, X) uint32 component ids (0 = outside); every seed lies inside one
            component.
        spacing: voxel size per axis, for anisotropic distances.

    Returns:
        (Z, Y, X) uint32: at voxels of a component, the label of the nearest seed when that seed
        belongs to the same component, else 0 (the caller resolves those); 0 outside. Ties go to
        the seed found first by the separable passes (deterministic for a given input).
    """
    if seed_labels.size >= 2**31:
        raise ValueError(
            f"nearest_seed_label works on blocks under 2^31 voxels, got shape {seed_labels.shape}"
        )
    seed_labels = np.ascontiguousarray(seed_labels, dtype=np.uint32)
    components = np.ascontiguousarray(components, dtype=np.uint32)
    n_seeds = int(seed_labels.max(initial=0))
    seed_component = np.zeros(n_seeds + 1, np.uint32)
    is_seed = seed_labels != 0
    seed_component[seed_labels[is_seed]] = components[is_seed]
    sz, sy, sx = (float(s) for s in spacing)
    fx = _pass_x(is_seed)
    del is_seed
    fyx, dist2 = _pass_y(fx, sy, sx)
    del fx
    return _pass_z(fyx, dist2, seed_labels, components, seed_component, sz)


@numba.njit(cache=True, parallel=True)
def _nearest_in_component(points, point_comp, cand, cand_comp_start, cand_labels, sz, sy, sx):
    """Brute force: for each point, the label of the nearest candidate of its component.

    ``cand`` (M, 3) holds candidate voxel coordinates sorted by component;
    ``cand_comp_start[c]:cand_comp_start[c+1]`` are those of component c.
    """
    n = points.shape[0]
    out = np.zeros(n, cand_labels.dtype)
    for i in numba.prange(n):
        c = point_comp[i]
        lo = cand_comp_start[c]
        hi = cand_comp_start[c + 1]
        best = np.inf
        for j in range(lo, hi):
            dz = sz * (points[i, 0] - cand[j, 0])
            dy = sy * (points[i, 1] - cand[j, 1])
            dx = sx * (points[i, 2] - cand[j, 2])
            d = dz * dz + dy * dy + dx * dx
            if d < best:
                best = d
                out[i] = cand_labels[j]
    return out


def nearest_seed_label_in_component(
    points: np.ndarray,
    point_comp: np.ndarray,
    seed_labels: np.ndarray,
    components: np.ndarray,
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0),
) -> np.ndarray:
    """Nearest seed of the same component for a (small) list of voxels, by brute force.

    Only seed voxels on the seed's surface are candidates: the Euclidean-nearest voxel of a set
    seen from outside it always has a 6-neighbour outside the set.

    Args:
        points: (K, 3) int coordinates of the voxels to assign.
        point_comp: (K,) component id of each point.
        seed_labels: (Z, Y, X) seed labels (0 = no seed).
        components: (Z, Y, X) component ids, the same for a seed and the voxels it may take.
        spacing: voxel size per axis.

    Returns:
        (K,) label of the nearest seed in the point's component, 0 where the component has none.
    """
    if len(points) == 0:
        return np.zeros(0, seed_labels.dtype)
    seeds = seed_labels != 0
    interior = seeds.copy()
    for axis in range(3):
        for shift in (1, -1):
            rolled = np.roll(seeds, shift, axis=axis)
            edge = [slice(None)] * 3
            edge[axis] = 0 if shift == 1 else -1
            rolled[tuple(edge)] = True  # the array edge is not a surface
            interior &= rolled
    surface = np.argwhere(seeds & ~interior)
    surf_comp = components[tuple(surface.T)].astype(np.int64)
    wanted = np.isin(surf_comp, np.unique(point_comp))
    surface, surf_comp = surface[wanted], surf_comp[wanted]
    order = np.argsort(surf_comp, kind="stable")
    surface, surf_comp = surface[order], surf_comp[order]
    n_comp = int(max(surf_comp.max(initial=0), int(point_comp.max(initial=0)))) + 1
    start = np.zeros(n_comp + 1, np.int64)
    np.cumsum(np.bincount(surf_comp, minlength=n_comp), out=start[1:])
    labels = seed_labels[tuple(surface.T)]
    sz, sy, sx = (float(s) for s in spacing)
    return _nearest_in_component(
        points.astype(np.int64), point_comp.astype(np.int64), surface.astype(np.int64),
        start, labels, sz, sy, sx,
    )

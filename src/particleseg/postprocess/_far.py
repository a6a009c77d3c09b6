"""Exact nearest seed of the own component for "far" voxels, with k-d trees (no brute force).

The voxels of a foreground component that have no core of their component within the halo are
few in ordinary scans, but a badly segmented scan (one huge component spanning the volume, with
its cores far apart) can hold millions of them: a brute force over all seed surfaces then takes
hours. Here the seed surface voxels of each such component go into a k-d tree and every point
queries it; ties are resolved exactly as the brute force does (smallest squared distance, in the
same floating-point formula, then the smallest raster index).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from particleseg.postprocess._blocks import read, slices
from particleseg.postprocess._nearest import surface_seeds
from particleseg.postprocess._pieces import Objects, region_table

K = 4  # neighbours asked first; a point whose K-th is as near as its 1st asks a ball
FAR_REGION_VOXELS = 2**23  # the largest region read at once for far voxels (~16 bytes a voxel)


def _d2(points: np.ndarray, cand: np.ndarray, spacing) -> np.ndarray:
    """Squared distances in the brute force's formula: ``dz*dz + dy*dy + dx*dx``, scaled."""
    sz, sy, sx = spacing
    dz = sz * (points[..., 0] - cand[..., 0])
    dy = sy * (points[..., 1] - cand[..., 1])
    dx = sx * (points[..., 2] - cand[..., 2])
    return dz * dz + dy * dy + dx * dx


def nearest_candidate(
    points: np.ndarray,
    point_comp: np.ndarray,
    cand: np.ndarray,
    cand_raster: np.ndarray,
    cand_comp: np.ndarray,
    spacing=(1.0, 1.0, 1.0),
) -> np.ndarray:
    """Index of the nearest candidate of the same component, for every point.

    Args:
        points: (P, 3) int64 voxel coordinates.
        point_comp: (P,) component of each point.
        cand: (S, 3) int64 coordinates of candidate seed voxels.
        cand_raster: (S,) raster index of each candidate (tie-break: smaller wins).
        cand_comp: (S,) component of each candidate.
        spacing: voxel size (z, y, x).

    Returns:
        (P,) int64 indices into ``cand``; -1 for a point whose component has no candidate.
    """
    spacing = tuple(float(s) for s in spacing)
    scale = np.asarray(spacing)
    out = np.full(len(points), -1, np.int64)
    p_order = np.argsort(point_comp, kind="stable")
    c_order = np.argsort(cand_comp, kind="stable")
    p_sorted, c_sorted = point_comp[p_order], cand_comp[c_order]
    for comp in np.unique(point_comp).tolist():  # components with far voxels: few
        pi = p_order[np.searchsorted(p_sorted, comp) : np.searchsorted(p_sorted, comp, "right")]
        cj = c_order[np.searchsorted(c_sorted, comp) : np.searchsorted(c_sorted, comp, "right")]
        if not len(cj):
            continue
        own = cand[cj]
        tree = cKDTree(own * scale)
        pts = points[pi]
        k = min(K, len(cj))
        _, idx = tree.query(pts * scale, k=k)
        idx = idx.reshape(len(pts), k)
        d2 = _d2(pts[:, None, :], own[idx], spacing)
        raster = cand_raster[cj][idx]
        best = np.lexsort((raster, d2), axis=-1)[:, 0] if k > 1 else np.zeros(len(pts), int)
        rows = np.arange(len(pts))
        choice = idx[rows, best]
        dmin = d2[rows, best]
        # a K-th neighbour (about) as near as the best: more ties may lie outside the K
        unsure = np.flatnonzero(d2.max(axis=1) <= dmin * (1 + 1e-9)) if k < len(cj) else []
        for r in np.asarray(unsure).tolist():
            near = np.asarray(
                tree.query_ball_point(pts[r] * scale, np.sqrt(dmin[r]) * (1 + 1e-6) + 1e-12)
            )
            dd = _d2(pts[r][None, :], own[near], spacing)
            m = dd == dd.min()
            choice[r] = near[m][np.argmin(cand_raster[cj][near[m]])]
        out[pi] = cj[choice]
    return out


def nearest_in_component(
    points: np.ndarray,
    point_comp: np.ndarray,
    cand: np.ndarray,
    cand_raster: np.ndarray,
    cand_label: np.ndarray,
    cand_comp: np.ndarray,
    spacing=(1.0, 1.0, 1.0),
) -> np.ndarray:
    """Label of the nearest candidate of the same component (:func:`nearest_candidate`).

    Returns:
        (P,) uint32 labels; 0 for a point whose component has no candidate.
    """
    choice = nearest_candidate(points, point_comp, cand, cand_raster, cand_comp, spacing)
    out = np.zeros(len(points), np.uint32)
    out[choice >= 0] = cand_label[choice[choice >= 0]]
    return out


class _Best:
    """Per point, the best candidate so far: squared distance, raster index, label."""

    def __init__(self, points: np.ndarray, comps: np.ndarray, spacing):
        self.points, self.comps, self.spacing = points, comps, spacing
        self.d2 = np.full(len(points), np.inf)
        self.raster = np.full(len(points), np.iinfo(np.int64).max, np.int64)
        self.label = np.zeros(len(points), np.uint32)

    def offer(self, which: np.ndarray, found) -> None:
        """Take the candidates ``found`` (coords, raster, labels, comps) where they are nearer."""
        coords, raster, labels, comps = found
        if not len(coords) or not len(which):
            return
        pts = self.points[which]
        choice = nearest_candidate(pts, self.comps[which], coords, raster, comps, self.spacing)
        has = choice >= 0
        which, pts, choice = which[has], pts[has], choice[has]
        d2 = _d2(pts, coords[choice], self.spacing)
        r = raster[choice]
        better = (d2 < self.d2[which]) | ((d2 == self.d2[which]) & (r < self.raster[which]))
        which, choice = which[better], choice[better]
        self.d2[which], self.raster[which] = d2[better], r[better]
        self.label[which] = labels[choice]


def _scan_bounds(r0, r1, shape):
    """The part of a region whose seed surfaces are exact: all but a face inside the volume."""
    lo = np.array([1 if a > 0 else 0 for a in r0], np.int64)
    hi = np.array(
        [b - a - 1 if b < n else b - a for a, b, n in zip(r0, r1, shape, strict=True)], np.int64
    )
    return lo, hi


def _sure(best: _Best, r0, r1, shape, spacing) -> np.ndarray:
    """Points whose best candidate beats every seed outside the exactly scanned region part."""
    p = best.points
    bound = np.full(len(p), np.inf)
    for a in range(3):
        if r0[a] > 0:  # the unscanned face r0 and beyond
            bound = np.minimum(bound, (p[:, a] - r0[a]) * spacing[a])
        if r1[a] < shape[a]:  # the unscanned face r1 - 1 and beyond
            bound = np.minimum(bound, (r1[a] - 1 - p[:, a]) * spacing[a])
    return best.d2 < bound * bound


def resolve_far(n_far, scratch, out, grid, objs: Objects, labels, halo, spacing, run) -> int:
    """Pass 5, exact: the border voxels with no core of their component within the halo.

    Per block with such ("far") voxels, found again in ``out`` (still 0 there): the block grown
    by a reach of ``max(2 * halo, block // 4)`` voxels per axis is read, the seed surfaces of
    the far voxels' components in it are collected, and each voxel takes its nearest by k-d
    trees (:func:`nearest_candidate`, the in-memory tie-break). A voxel whose best is nearer
    than anything outside that region is final. For the others the region grows to their
    farthest best so far, while it holds at most :data:`FAR_REGION_VOXELS` (or 4 blocks);
    beyond that they stream the blocks holding seeds of their components, nearest block first,
    each clipped to where a nearer seed could lie, until no block can. Each block's far voxels
    are written back into it, so memory per worker is one bounded region and the far voxels of
    one block, whatever the volume (the old whole-volume list of far voxels and seed surfaces
    grew to 1.9 GB on a 384^3 map with a fifth of the cores missing).

    Args:
        n_far: far voxels per block (from the assign pass).
        scratch: the block-local piece ids (zarr).
        out: the labels, 0 at the far voxels; their blocks are rewritten.
        grid: the block grid.
        objs: the global pieces, cores and components.
        labels: the final ids (:class:`particleseg.postprocess._assign.Labels`).
        halo: the assign pass's halo (far voxels are farther than it from their seeds).
        spacing: voxel size (z, y, x).
        run: runs the per-block function over block numbers.

    Returns:
        The number of far voxels.
    """
    spacing = tuple(float(s) for s in spacing)
    shape = np.array(grid.shape, np.int64)
    first_reach = tuple(max(2 * halo, b // 4) for b in grid.block)
    max_region = max(FAR_REGION_VOXELS, 4 * int(np.prod(grid.block)))
    scale = np.asarray(spacing)
    block_starts = np.array([grid.bounds(b)[0] for b in range(grid.n_blocks)], np.int64)
    block_stops = np.array([grid.bounds(b)[1] for b in range(grid.n_blocks)], np.int64)

    def surfaces(r0, r1, lo, hi, wanted):
        local = read(scratch, r0, r1)
        seeds = region_table(grid, objs, local, r0, labels.piece_seed)
        comp = region_table(grid, objs, local, r0, labels.piece_comp)
        del local
        origin = np.array(r0, np.int64)
        return surface_seeds(seeds, comp, wanted, lo, hi, origin, shape)

    def stream(best: _Best, b: int, which: np.ndarray) -> None:
        wanted = np.zeros(objs.n_comps + 1, bool)
        wanted[best.comps[which]] = True
        pieces = np.flatnonzero((labels.piece_seed != 0) & wanted[labels.piece_comp])
        blocks = np.unique(np.searchsorted(objs.offsets, pieces, side="left") - 1)
        near = np.maximum(
            block_starts[blocks] - block_stops[b], block_starts[b] - block_stops[blocks]
        )
        box_d2 = ((np.maximum(0, near + 1) * scale) ** 2).sum(1)  # block to block
        order = np.argsort(box_d2, kind="stable")
        for c, c_d2 in zip(blocks[order].tolist(), box_d2[order].tolist(), strict=True):
            d2 = best.d2[which].max()
            if c_d2 > d2:  # no seed there can be nearer (or tie)
                break
            # only the part of block c that a nearer seed could lie in, and its scan bounds
            lo_c, hi_c = block_starts[c], block_stops[c]
            if np.isfinite(d2):
                r = np.ceil(np.sqrt(d2) / scale).astype(np.int64)
                lo_c = np.maximum(lo_c, block_starts[b] - r)
                hi_c = np.minimum(hi_c, block_stops[b] + r)
            r0 = np.maximum(lo_c - 1, 0)
            r1 = np.minimum(hi_c + 1, shape)
            best.offer(which, surfaces(tuple(r0), tuple(r1), lo_c - r0, hi_c - r0, wanted))

    def one(b: int) -> int:
        start, stop = grid.bounds(b)
        block = read(out, start, stop)
        own = region_table(grid, objs, read(scratch, start, stop), start, labels.piece_comp)
        far = (block == 0) & (own != 0)
        best = _Best(np.argwhere(far) + np.array(start), own[far].astype(np.int64), spacing)
        del own
        which = np.arange(len(best.points))
        reach = first_reach
        while True:  # regions grown to the farthest best so far, while they stay small
            wanted = np.zeros(objs.n_comps + 1, bool)
            wanted[best.comps[which]] = True
            r0, r1, _, _ = grid.region(b, reach)
            lo, hi = _scan_bounds(r0, r1, shape)
            best.offer(which, surfaces(r0, r1, lo, hi, wanted))
            which = which[~_sure(best, r0, r1, shape, spacing)[which]]
            if not len(which) or (not any(r0) and np.array_equal(r1, shape)):  # whole volume
                break
            d2 = best.d2[which].max()
            grow = 2 * max(reach) if np.isinf(d2) else int(np.sqrt(d2) / min(spacing)) + 2
            reach = tuple(max(r, grow) for r in reach)
            if np.prod(np.add(grid.block, np.multiply(2, reach))) > max_region:
                stream(best, b, which)  # a region that large: block by block instead
                break
        block[far] = best.label
        out[slices(start, stop)] = block
        return len(best.points)

    return int(sum(run(one, [b for b, n in enumerate(n_far) if n], "far voxels")))

"""Small-core rule, final ids and the border assignment, block by block with a halo."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from particleseg.postprocess._blocks import BlockGrid, read, slices
from particleseg.postprocess._far import nearest_in_component
from particleseg.postprocess._kernels import core_stats, map_region
from particleseg.postprocess._nearest import assign, nearest_seed, surface_seeds
from particleseg.postprocess._pieces import Objects
from particleseg.targets import ball_offsets


def _region_table(grid: BlockGrid, objs: Objects, local, r0, table):
    return map_region(
        local,
        np.array(r0, np.int64),
        np.array(grid.block, np.int64),
        np.array(grid.grid, np.int64),
        objs.offsets,
        table,
    )


def kept_cores(scratch, grid, objs: Objects, near, fraction, deep, spacing, run) -> np.ndarray:
    """Pass 2: the small-core rule per global core; returns (n_cores + 1,) bool "kept".

    Each block reads its cores with a halo as deep as the rule looks (so each voxel's test is
    the whole-volume one) and counts per piece; the counts are summed per global core.
    """
    n = objs.n_cores
    if n == 0:
        return np.zeros(1, bool)
    near_offsets = ball_offsets(near, spacing, False)
    deep_offsets = ball_offsets(deep, spacing, True)
    both = np.concatenate([near_offsets, deep_offsets, np.zeros((1, 3), np.int64)])
    reach = tuple(int(r) for r in np.abs(both).max(axis=0))
    piece_core = objs.piece_core.astype(np.uint32)

    def one(b):
        o, count = int(objs.offsets[b]), int(objs.counts[b])
        if not piece_core[o + 1 : o + count + 1].any():
            return None
        r0, r1, lo, hi = grid.region(b, reach)
        local = read(scratch, r0, r1)
        core = _region_table(grid, objs, local, r0, piece_core)
        return core_stats(local, core, lo, hi, near_offsets, deep_offsets, count)

    size = np.zeros(n + 1, np.int64)
    surface = np.zeros(n + 1, np.int64)
    deep_any = np.zeros(n + 1, bool)
    for b, result in enumerate(run(one, range(grid.n_blocks), "small cores")):
        if result is None:
            continue
        o, count = int(objs.offsets[b]), int(objs.counts[b])
        ids = objs.piece_core[o + 1 : o + count + 1]
        np.add.at(size, ids, result[0][1:])
        np.add.at(surface, ids, result[1][1:])
        deep_any[ids[result[2][1:]]] = True
    # the rule exactly as targets.demote_small_cores applies it
    candidate = (size > 0) & (surface >= fraction * size)
    candidate[0] = False
    keep = (size > 0) & ~(candidate & ~deep_any)
    keep[0] = False
    return keep


@dataclass
class Labels:
    """Final ids: per piece (seeds), per component (coreless ones), per seed (its component)."""

    piece_seed: np.ndarray  # (P + 1,) uint32 final id of kept-core pieces, else 0
    piece_comp: np.ndarray  # (P + 1,) uint32 component of each piece
    comp_label: np.ndarray  # (C + 1,) uint32 final id of coreless components, else 0
    seed_comp: np.ndarray  # (n_kept + 1,) uint32 component of each kept core
    n: int


def final_labels(objs: Objects, keep: np.ndarray) -> Labels:
    """Kept cores take 1..K in cc3d order, coreless components K+1..N by first voxel."""
    n_kept = int(keep.sum())
    core_final = np.zeros(objs.n_cores + 1, np.uint32)
    core_final[keep] = np.arange(1, n_kept + 1, dtype=np.uint32)
    has_core = np.zeros(objs.n_comps + 1, bool)
    has_core[objs.core_comp[keep]] = True
    coreless = np.flatnonzero(~has_core[1:]) + 1
    comp_label = np.zeros(objs.n_comps + 1, np.uint32)
    comp_label[coreless] = n_kept + np.arange(1, len(coreless) + 1, dtype=np.uint32)
    seed_comp = np.zeros(n_kept + 1, np.uint32)
    seed_comp[core_final[keep]] = objs.core_comp[keep]
    return Labels(
        core_final[objs.piece_core],
        objs.piece_comp.astype(np.uint32),
        comp_label,
        seed_comp,
        n_kept + len(coreless),
    )


def probe_offsets(halo: int, spacing) -> tuple[np.ndarray, float]:
    """Offsets inside the halo cube nearer than ``(halo + 1) * min(spacing)``, sorted.

    Sorted by length, then in raster order: the first seed hit is the nearest, ties going to
    the smaller raster index. Returns them and the squared limit.
    """
    limit2 = ((halo + 1) * min(spacing)) ** 2
    r = np.arange(-halo, halo + 1)
    grid = np.stack(np.meshgrid(r, r, r, indexing="ij"), -1).reshape(-1, 3).astype(np.int64)
    length2 = ((grid * np.asarray(spacing, float)) ** 2).sum(1)
    keep = (length2 < limit2) & (length2 > 0)
    grid, length2 = grid[keep], length2[keep]
    order = np.lexsort((grid[:, 2], grid[:, 1], grid[:, 0], length2))
    return np.ascontiguousarray(grid[order]), limit2


def assign_blocks(scratch, out, grid, objs, labels: Labels, halo, spacing, run) -> list:
    """Pass 3: label each block from its halo'd region, write it whole; returns far voxels."""
    probes, limit2 = probe_offsets(halo, spacing)
    spacing = tuple(float(s) for s in spacing)

    def one(b):
        start, stop = grid.bounds(b)
        if objs.counts[b] == 0:  # no foreground in the block
            out[slices(start, stop)] = np.zeros(np.subtract(stop, start), np.uint32)
            return None
        r0, r1, lo, hi = grid.region(b, (halo,) * 3)
        local = read(scratch, r0, r1)
        comp = _region_table(grid, objs, local, r0, labels.piece_comp)
        seeds = _region_table(grid, objs, local, r0, labels.piece_seed)
        del local
        inner = tuple(np.subtract(hi, lo))
        if seeds.any():
            ft_d2, ft_lab = nearest_seed(seeds, lo, hi, spacing, r0)
        else:
            ft_d2, ft_lab = np.full(inner, -1, np.float32), np.zeros(inner, np.uint32)
        result = np.empty(inner, np.uint32)
        n_far = assign(
            comp,
            seeds,
            lo,
            hi,
            ft_d2,
            ft_lab,
            labels.comp_label,
            labels.seed_comp,
            limit2,
            probes,
            result,
        )
        out[slices(start, stop)] = result
        if not n_far:
            return None
        own = comp[slices(lo, hi)]
        far = (result == 0) & (own != 0)
        return np.argwhere(far) + np.array(start), own[far].astype(np.int64)

    return run(one, range(grid.n_blocks), "assign")


def resolve_far(far: list, scratch, out, grid, objs, labels: Labels, spacing) -> int:
    """Exact fallback for voxels with no core of their component within the halo.

    Collects the seed surfaces of those components block by block (only blocks holding such
    seeds), finds each voxel's nearest with k-d trees (:func:`nearest_in_component`, exact,
    same tie-break as the in-memory path), then rewrites the blocks concerned. Returns the
    number of voxels resolved.
    """
    far = [f for f in far if f is not None]
    if not far:
        return 0
    points = np.concatenate([f[0] for f in far]).astype(np.int64)
    point_comp = np.concatenate([f[1] for f in far])
    wanted = np.zeros(objs.n_comps + 1, bool)
    wanted[point_comp] = True
    seed_pieces = np.flatnonzero((labels.piece_seed != 0) & wanted[labels.piece_comp])
    blocks = np.unique(np.searchsorted(objs.offsets, seed_pieces, side="left") - 1)
    shape = np.array(grid.shape, np.int64)
    parts = []
    for b in blocks.tolist():  # keep only the seed surfaces of the components concerned
        r0, r1, lo, hi = grid.region(b, (1, 1, 1))
        local = read(scratch, r0, r1)
        seeds = _region_table(grid, objs, local, r0, labels.piece_seed)
        comp = _region_table(grid, objs, local, r0, labels.piece_comp)
        found = surface_seeds(seeds, comp, wanted, lo, hi, np.array(r0, np.int64), shape)
        if len(found[0]):
            parts.append(found)
    if parts:
        coords, raster, labs, comps = (np.concatenate(p) for p in zip(*parts, strict=True))
        best_label = nearest_in_component(
            points, point_comp, coords, raster, labs, comps, tuple(float(s) for s in spacing)
        )
    else:
        best_label = np.zeros(len(points), np.uint32)
    owner = np.ravel_multi_index(tuple((points // np.array(grid.block)).T), grid.grid)
    for b in np.unique(owner):
        start, stop = grid.bounds(int(b))
        mine = owner == b
        block = read(out, start, stop)
        block[tuple((points[mine] - np.array(start)).T)] = best_label[mine]
        out[slices(start, stop)] = block
    return len(points)

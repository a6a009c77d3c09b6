"""Small-core rule, final ids and the border assignment, block by block with a halo."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from particleseg.postprocess._blocks import read, slices
from particleseg.postprocess._kernels import core_stats
from particleseg.postprocess._nearest import assign, nearest_seed
from particleseg.postprocess._pieces import Objects, region_table
from particleseg.targets import ball_offsets


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
        core = region_table(grid, objs, local, r0, piece_core)
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
    """Pass 3: label each block from its halo'd region, write it whole.

    Returns the number of far voxels per block (left 0 in ``out`` for :func:`resolve_far`).
    """
    probes, limit2 = probe_offsets(halo, spacing)
    spacing = tuple(float(s) for s in spacing)

    def one(b):
        start, stop = grid.bounds(b)
        if objs.counts[b] == 0:  # no foreground in the block
            out[slices(start, stop)] = np.zeros(np.subtract(stop, start), np.uint32)
            return 0
        r0, r1, lo, hi = grid.region(b, (halo,) * 3)
        local = read(scratch, r0, r1)
        comp = region_table(grid, objs, local, r0, labels.piece_comp)
        seeds = region_table(grid, objs, local, r0, labels.piece_seed)
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
        return int(n_far)

    return run(one, range(grid.n_blocks), "assign")

"""Global components and cores from block-wise cc3d, merged across block faces.

Every block is labelled on its own (cc3d on the foreground and on the cores). Its labels are
*pieces*: border voxels keep their component label ``c`` (1..n_comp) and core voxels get
``n_comp + k`` for core label ``k``. The block-local piece ids go to a scratch zarr array; a
piece's global id is ``offsets[block] + local``. Pieces that touch across a block face (with
the same connectivity) are merged by a union-find over the face-adjacent voxel pairs (one
sparse graph, scipy's connected components), and the merged objects are numbered by the raster
index of their first voxel, which is the order cc3d gives on the whole volume.
"""

from __future__ import annotations

from dataclasses import dataclass

import cc3d
import numpy as np
from scipy import sparse
from scipy.sparse import csgraph

from particleseg.postprocess._blocks import BlockGrid, read, slices
from particleseg.postprocess._kernels import block_pieces, map_region

_FACE_OFFSETS = {
    6: [(0, 0)],
    18: [(0, 0), (-1, 0), (1, 0), (0, -1), (0, 1)],
    26: [(du, dv) for du in (-1, 0, 1) for dv in (-1, 0, 1)],
}


@dataclass
class Objects:
    """Global cores and components, and how block pieces map to them.

    Attributes:
        offsets: (n_blocks,) int64, global piece id = ``offsets[block] + local``.
        counts: (n_blocks,) pieces per block.
        piece_core: (P + 1,) int64 global core id (1..n_cores, in cc3d order) of each piece,
            0 for border pieces.
        piece_comp: (P + 1,) int64 global component id (1..n_comps, first-voxel order) of each
            piece.
        core_comp: (n_cores + 1,) int64 component of each core.
        n_cores: number of cores (before the small-core rule).
        n_comps: number of foreground components.
    """

    offsets: np.ndarray
    counts: np.ndarray
    piece_core: np.ndarray
    piece_comp: np.ndarray
    core_comp: np.ndarray
    n_cores: int
    n_comps: int


def region_table(grid: BlockGrid, objs: Objects, local: np.ndarray, r0, table) -> np.ndarray:
    """``table`` at every voxel of a region of block-local piece ids read from the scratch.

    Args:
        grid: the block grid.
        objs: the global tables (``offsets`` turn block-local ids into global piece ids).
        local: (z, y, x) block-local piece ids of the region starting at ``r0``.
        r0: the region's start in volume coordinates.
        table: (P + 1,) value per global piece (e.g. its component or its final seed id).

    Returns:
        (z, y, x) array of ``table``'s dtype.
    """
    return map_region(
        local,
        np.array(r0, np.int64),
        np.array(grid.block, np.int64),
        np.array(grid.grid, np.int64),
        objs.offsets,
        table,
    )


def _check_values(bc: np.ndarray, start) -> None:
    if bc.size == 0 or bc.dtype == bool:
        return
    if int(bc.min()) < 0 or int(bc.max()) > 2:
        bad = np.unique(bc[(bc < 0) | (bc > 2)])[:8].tolist()
        raise ValueError(
            "border_core values must be 0 (background), 1 (core) or 2 (border); "
            f"found {bad} in the block starting at {tuple(start)}"
        )


def label_blocks(border_core, scratch, grid: BlockGrid, connectivity: int, run) -> list:
    """Pass 1: per block, cc3d + piece ids to ``scratch``; returns the per-block tables."""
    shape = np.array(grid.shape, np.int64)

    def one(b):
        start, stop = grid.bounds(b)
        bc = read(border_core, start, stop)
        _check_values(bc, start)
        comps, n_comp = cc3d.connected_components(
            bc != 0, connectivity=connectivity, return_N=True, out_dtype=np.uint32
        )
        cores = cc3d.connected_components(bc == 1, connectivity=connectivity, out_dtype=np.uint32)
        del bc
        local, first, core_comp = block_pieces(
            comps, cores, int(n_comp), np.array(start, np.int64), shape
        )
        scratch[slices(start, stop)] = local
        return int(n_comp), first, core_comp

    return run(one, range(grid.n_blocks), "label blocks")


def global_pieces(grid: BlockGrid, offsets: np.ndarray, local: np.ndarray, start) -> np.ndarray:
    """Global piece ids (int64) of a region of the scratch array starting at ``start``."""
    idx = [
        (start[a] + np.arange(local.shape[a], dtype=np.int64)) // grid.block[a] for a in range(3)
    ]
    _, gy, gx = grid.grid
    block = (idx[0][:, None, None] * gy + idx[1][None, :, None]) * gx + idx[2][None, None, :]
    return np.where(local > 0, offsets[block] + local, 0)


def merge(grid: BlockGrid, scratch, blocks: list, connectivity: int, run) -> Objects:
    """Union-find of the pieces over block faces; objects numbered by first voxel."""
    counts = np.array([len(first) - 1 for _, first, _ in blocks], np.int64)
    offsets = np.zeros(grid.n_blocks, np.int64)
    np.cumsum(counts[:-1], out=offsets[1:])
    n_pieces = int(counts.sum())
    is_core = np.zeros(n_pieces + 1, bool)
    comp_of = np.arange(n_pieces + 1, dtype=np.int64)
    first = np.full(n_pieces + 1, np.iinfo(np.int64).max, np.int64)
    for b, (n_comp, first_b, core_comp_b) in enumerate(blocks):
        o, n = int(offsets[b]), int(counts[b])
        first[o + 1 : o + n + 1] = first_b[1:]
        is_core[o + n_comp + 1 : o + n + 1] = True
        comp_of[o + n_comp + 1 : o + n + 1] = o + core_comp_b[1:]

    face_offsets = _FACE_OFFSETS[connectivity]

    def pairs(b):
        start, stop = grid.bounds(b)
        if not any(start):
            return np.zeros((0, 2), np.int64)
        # the block and the planes just below its low faces (and beyond its other edges when
        # diagonal neighbours connect), read once
        grow = 1 if connectivity > 6 else 0
        r0 = [max(0, a - 1) for a in start]
        r1 = [min(n, a + grow) for a, n in zip(stop, grid.shape, strict=True)]
        local = read(scratch, r0, r1)
        found = []
        for a in range(3):
            if start[a] == 0:
                continue
            # the two planes on either side of the face, as global piece ids
            at = start[a] - r0[a]
            cut = tuple(slice(at - 1, at + 1) if o == a else slice(None) for o in range(3))
            origin = [start[o] - 1 if o == a else r0[o] for o in range(3)]
            planes = np.moveaxis(global_pieces(grid, offsets, local[cut], origin), a, 0)
            other = [o for o in range(3) if o != a]
            u0, v0 = (start[o] - r0[o] for o in other)
            u1, v1 = (stop[o] - r0[o] for o in other)
            nu, nv = planes.shape[1:]
            for du, dv in face_offsets:
                ua, ub = max(u0, -du), min(u1, nu - du)
                va, vb = max(v0, -dv), min(v1, nv - dv)
                if ua >= ub or va >= vb:
                    continue
                high = planes[1, ua:ub, va:vb]
                low = planes[0, ua + du : ub + du, va + dv : vb + dv]
                both = (high > 0) & (low > 0)
                p, q = high[both], low[both]
                found.append(np.stack([comp_of[p], comp_of[q]], 1))
                core = is_core[p] & is_core[q]
                found.append(np.stack([p[core], q[core]], 1))
        if not found:
            return np.zeros((0, 2), np.int64)
        return np.unique(np.concatenate(found), axis=0)

    edges = np.concatenate([np.zeros((0, 2), np.int64), *run(pairs, range(grid.n_blocks), "faces")])
    graph = sparse.coo_matrix(
        (np.ones(len(edges), np.int32), (edges[:, 0], edges[:, 1])),
        shape=(n_pieces + 1, n_pieces + 1),
    )
    n_cc, cc = csgraph.connected_components(graph, directed=False)
    first_cc = np.full(n_cc, np.iinfo(np.int64).max, np.int64)
    np.minimum.at(first_cc, cc[1:], first[1:])
    core_cc = np.zeros(n_cc, bool)
    core_cc[cc[1:][is_core[1:]]] = True
    present = np.zeros(n_cc, bool)
    present[cc[1:]] = True

    def number(which):
        ids = np.flatnonzero(which)
        ids = ids[np.argsort(first_cc[ids], kind="stable")]
        table = np.zeros(n_cc, np.int64)
        table[ids] = np.arange(1, len(ids) + 1)
        return table, len(ids)

    cc_core, n_cores = number(core_cc)
    cc_comp, n_comps = number(present & ~core_cc)
    piece_core = cc_core[cc]
    piece_comp = cc_comp[cc[comp_of]]
    piece_comp[0] = 0
    core_comp = np.zeros(n_cores + 1, np.int64)
    core_comp[piece_core[is_core]] = piece_comp[is_core]
    return Objects(offsets, counts, piece_core, piece_comp, core_comp, n_cores, n_comps)

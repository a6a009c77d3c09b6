"""Numba kernels of the block-wise post-processing: labelling and the small-core rule.

All kernels are serial and release the GIL (``nogil``): the parallelism is across blocks (dask
threads), so no kernel ever launches a parallel region from inside another thread.

Conventions: a *region* is a block grown by a halo and clipped to the volume; *interior*
bounds ``lo``/``hi`` are the block's own voxels in region coordinates. Raster indices are global
C-order indices ``(z * Y + y) * X + x`` (int64).
"""

from __future__ import annotations

import numba
import numpy as np

from particleseg.targets import other_label_within


# ---------------------------------------------------------------- labelling
@numba.njit(nogil=True, cache=True)
def block_pieces(comps, cores, n_comp, origin, volume_shape):
    """Local piece ids of one block, from its foreground and core labels.

    Border voxels keep their component label ``c`` (1..n_comp); core voxels get ``n_comp + k``
    for core label ``k``. Returns the (Z, Y, X) uint32 piece ids, the (n + 1,) global raster
    index of each piece's first voxel and, per core label, the component label around it.
    """
    nz, ny, nx = comps.shape
    n_core = 0
    for z in range(nz):
        for y in range(ny):
            for x in range(nx):
                n_core = max(n_core, int(cores[z, y, x]))
    local = np.empty(comps.shape, np.uint32)
    first = np.full(n_comp + n_core + 1, -1, np.int64)
    core_comp = np.zeros(n_core + 1, np.int64)
    big_y = volume_shape[1]
    big_x = volume_shape[2]
    for z in range(nz):
        for y in range(ny):
            row = ((origin[0] + z) * big_y + origin[1] + y) * big_x + origin[2]
            for x in range(nx):
                c = int(comps[z, y, x])
                k = int(cores[z, y, x])
                if c != 0 and first[c] < 0:  # a component starts where its first voxel is
                    first[c] = row + x
                if k != 0:
                    core_comp[k] = c
                    if first[n_comp + k] < 0:
                        first[n_comp + k] = row + x
                    local[z, y, x] = n_comp + k
                else:
                    local[z, y, x] = c
    return local, first, core_comp


@numba.njit(nogil=True, cache=True)
def map_region(local, origin, block_shape, grid_shape, offsets, table):
    """``table[global piece id]`` for every voxel of a region read from the scratch array.

    The global id of a voxel's piece is ``offsets[b] + local`` where ``b`` is the block that
    holds the voxel (block-local ids are stored, so a region spanning blocks needs this).
    """
    nz, ny, nx = local.shape
    out = np.zeros(local.shape, table.dtype)
    gy = grid_shape[1]
    gx = grid_shape[2]
    for z in range(nz):
        bz = (origin[0] + z) // block_shape[0]
        for y in range(ny):
            bzy = (bz * gy + (origin[1] + y) // block_shape[1]) * gx
            for x in range(nx):
                p = local[z, y, x]
                if p != 0:
                    b = bzy + (origin[2] + x) // block_shape[2]
                    out[z, y, x] = table[offsets[b] + p]
    return out


# ---------------------------------------------------------------- small-core rule
@numba.njit(nogil=True, cache=True)
def core_stats(local, core, lo, hi, near_offsets, deep_offsets, n_local):
    """Per local piece of the block: core voxels, those near another label, any deep voxel.

    ``core`` holds global core ids (0 elsewhere) over the region, which must reach past the
    interior by the offsets' extent wherever the volume allows (outside the region is outside
    the volume, which is not another label).
    """
    size = np.zeros(n_local + 1, np.int64)
    near = np.zeros(n_local + 1, np.int64)
    deep = np.zeros(n_local + 1, np.bool_)
    for z in range(lo[0], hi[0]):
        for y in range(lo[1], hi[1]):
            for x in range(lo[2], hi[2]):
                lab = core[z, y, x]
                if lab == 0:
                    continue
                p = local[z, y, x]
                size[p] += 1
                if other_label_within(core, z, y, x, lab, near_offsets):
                    near[p] += 1
                if not deep[p] and not other_label_within(core, z, y, x, lab, deep_offsets):
                    deep[p] = True
    return size, near, deep

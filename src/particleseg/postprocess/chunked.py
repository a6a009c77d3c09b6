"""Out-of-core border-core -> instance labels and small-particle filter, block by block.

Both functions give exactly what their in-memory counterparts in :mod:`particleseg.targets`
give on the whole array, while holding only a few blocks (with a halo) and tables of the size
of the number of objects in memory. Inputs and outputs are zarr arrays (v3) or numpy
arrays/memmaps; outputs are written one whole block at a time, blocks aligned to the output's
chunks (or shards), so parallel writers never share a zarr chunk.

:func:`border_core_to_instance_chunked` runs four passes over the blocks, each a set of dask
tasks (``scheduler="threads"`` by default; every kernel is serial and releases the GIL):

1. label: per block, cc3d of the foreground and of the cores; block-local ids ("pieces") go to
   a scratch zarr array on disk (uint32, Blosc-zstd, ~5 % of raw size, deleted at the end);
2. merge: pieces touching across block faces are merged (union-find over the face-adjacent
   voxel pairs, vectorized per face); cores and components are numbered by the raster index of
   their first voxel, the order cc3d gives on the whole volume;
3. small cores: per block with a halo of the rule's reach, each core voxel's "near the
   surface" and "deep" tests, summed per global core; thin cores are dropped globally;
4. assign: per block with a ``halo``, an exact Euclidean feature transform of the kept cores
   over the halo'd block gives each border voxel its nearest core of its own component (ties to
   the smallest raster index, as the in-memory transform breaks them); the rare voxels with no
   such core within the halo are resolved exactly afterwards by a brute-force scan over the
   core surfaces of their component, streamed block by block.
"""

from __future__ import annotations

import tempfile
from functools import partial
from pathlib import Path

import numpy as np

from particleseg.postprocess._assign import assign_blocks, final_labels, kept_cores
from particleseg.postprocess._blocks import (
    BlockGrid,
    StageBar,
    choose_block_shape,
    make_scratch,
    read,
    run_blocks,
    slices,
)
from particleseg.postprocess._far import resolve_far
from particleseg.postprocess._pieces import label_blocks, merge
from particleseg.spacing import VOXELS, check_spacing
from particleseg.targets.border_core import (
    MIN_RELATIVE_SIZE,
    SMALL_CORE_DISTANCE,
    SMALL_CORE_FRACTION,
    SMALL_CORE_MAX_DISTANCE,
)

HALO = 8  # voxels of context around each block of the chunked post-processing


def _check_volume(array, what: str) -> tuple[int, int, int]:
    shape = tuple(getattr(array, "shape", ()))
    if len(shape) != 3:
        raise ValueError(f"{what} must be a 3D array (Z, Y, X), got shape {shape}")
    dtype = np.dtype(array.dtype)
    if dtype != np.dtype(bool) and not np.issubdtype(dtype, np.integer):
        raise ValueError(f"{what} must have an integer dtype, got {dtype}")
    return tuple(int(s) for s in shape)


def _check_out(out, shape, what: str) -> None:
    got = tuple(getattr(out, "shape", ()))
    if got != shape:
        raise ValueError(f"{what} must have the input's shape {shape}, got {got}")
    if np.dtype(out.dtype) != np.uint32:
        raise ValueError(f"{what} must be uint32, got {np.dtype(out.dtype)}")


def border_core_to_instance_chunked(
    border_core,
    out,
    block_shape=None,
    halo: int = HALO,
    small_core_distance: float = SMALL_CORE_DISTANCE,
    small_core_fraction: float = SMALL_CORE_FRACTION,
    small_core_max_distance: float = SMALL_CORE_MAX_DISTANCE,
    spacing=None,
    progress: bool | StageBar = False,
    *,
    connectivity: int = 6,
    scheduler="threads",
    num_workers: int | None = None,
    scratch_dir: str | Path | None = None,
) -> int:
    """Convert a border-core map to instance labels block by block, writing ``out``.

    The result equals ``targets.border_core_to_instance(np.asarray(border_core), ...)`` voxel
    for voxel, with the same ids, whatever the ``halo`` (see the module docstring for the
    passes). A border voxel whose nearest core of its own component lies nearer than
    ``(halo + 1) * min(spacing)`` is decided inside its halo'd block; the others ("far" voxels:
    a border thicker than the halo, a long arm of border, a particle whose core the network
    missed) are resolved exactly afterwards, block by block, from the core surfaces of their
    components around the block: the halo only trades speed. Equal distances
    go to the core voxel with the smallest raster index, as in the in-memory code. This is
    exact whenever squared distances are exact in floating point (``spacing`` None, integer
    or dyadic like 0.5); with other spacings the in-memory transform breaks exact ties by
    float32 rounding, and a voxel equidistant from two cores may then get the other one (seen
    only for far voxels, a handful per 30,000 in the tests).

    Memory (peak RSS above the imports, measured): about 115 MB with one worker for 128^3
    blocks and halo 8, i.e. ~40 bytes per voxel of a halo'd block ``(block + 2 * halo)^3``
    (block-local ids, component and seed ids, the transform's distances and labels, the output
    block, zarr's decoded chunks), times the number of workers with ``scheduler="threads"``
    (``num_workers``, default the core count). Plus tables of ~50 bytes per piece (an object
    counts once per block it touches) and per core. The far-voxel pass holds per worker one
    region of at most ``2**23`` voxels or 4 blocks (~16 bytes each) and the far voxels of one
    block. No full-volume array and no list growing with the volume is ever held (a test
    guards it).
    Disk: the scratch array under ``scratch_dir`` (default the system temp dir), ~0.2 bytes
    per voxel.

    Args:
        border_core: (Z, Y, X) integer map with values in {0, 1, 2}: a zarr array, a numpy
            array or memmap, or anything with ``shape``, ``dtype`` and numpy slicing.
        out: uint32 zarr array or numpy array of the same shape, written block by block.
        block_shape: (Z, Y, X) block size; default the input's chunks (128^3 for numpy)
            rounded up to a multiple of ``out``'s chunks (shards). An explicit one must be
            such a multiple along every axis it does not cover whole.
        halo: voxels of context around each block for the border assignment.
        small_core_distance: small-core rule, see :func:`particleseg.targets.demote_small_cores`.
        small_core_fraction: small-core rule.
        small_core_max_distance: small-core rule.
        spacing: optional voxel size per axis (Z, Y, X).
        progress: print a progress bar per pass (True), or add to one stage's bar.
        connectivity: 6, 18 or 26, for the cores and the foreground components.
        scheduler: dask scheduler for the per-block passes ("threads", "synchronous", ...).
        num_workers: number of dask workers (threads); default the core count.
        scratch_dir: directory for the temporary scratch array.

    Returns:
        N, the number of particles; ``out`` holds ids 1..N (0 background).

    Raises:
        ValueError: input not 3D or not integer, values outside {0, 1, 2}, ``out`` of another
            shape or dtype, bad ``block_shape``/``halo``/``connectivity``/``spacing``.
    """
    shape = _check_volume(border_core, "border_core")
    _check_out(out, shape, "out")
    if connectivity not in (6, 18, 26):
        raise ValueError(f"connectivity must be 6, 18 or 26, got {connectivity}")
    if int(halo) != halo or halo < 1:
        raise ValueError(f"halo must be a positive int, got {halo!r}")
    halo = int(halo)
    spacing = check_spacing(spacing, default=VOXELS)
    grid = BlockGrid(shape, choose_block_shape(block_shape, border_core, out, shape))
    if 0 in shape:
        return 0
    run = partial(run_blocks, scheduler=scheduler, num_workers=num_workers, progress=progress)
    with tempfile.TemporaryDirectory(prefix="particleseg-", dir=scratch_dir) as tmp:
        scratch = make_scratch(tmp, shape, grid.block)
        blocks = label_blocks(border_core, scratch, grid, connectivity, run)
        objs = merge(grid, scratch, blocks, connectivity, run)
        del blocks
        keep = kept_cores(
            scratch,
            grid,
            objs,
            small_core_distance,
            small_core_fraction,
            small_core_max_distance,
            spacing,
            run,
        )
        labels = final_labels(objs, keep)
        n_far = assign_blocks(scratch, out, grid, objs, labels, halo, spacing, run)
        resolve_far(n_far, scratch, out, grid, objs, labels, halo, spacing, run)
    return labels.n


def filter_small_particles_chunked(
    labels_in,
    labels_out,
    min_relative_size: float = MIN_RELATIVE_SIZE,
    block_shape=None,
    *,
    scheduler="threads",
    num_workers: int | None = None,
    progress: bool | StageBar = False,
) -> int:
    """:func:`particleseg.targets.filter_small_particles`, block by block.

    Voxel counts per id are summed over blocks, then every block is remapped: particles smaller
    than ``min_relative_size`` times the mean particle size become background and the others
    are renumbered 1..M keeping their order. Equal to the in-memory result. ``labels_out`` may
    be ``labels_in`` (in place). Memory: per worker a few copies of one block, plus tables of
    the size of the largest id.

    Args:
        labels_in: (Z, Y, X) non-negative integer labels (zarr, numpy, memmap).
        labels_out: uint32 array of the same shape, written block by block.
        min_relative_size: keep particles with at least this fraction of the mean voxel count.
        block_shape: as in :func:`border_core_to_instance_chunked`.
        scheduler: dask scheduler for the per-block passes.
        num_workers: number of dask workers.
        progress: print a progress bar per pass (True), or add to one stage's bar.

    Returns:
        M, the number of particles kept.
    """
    shape = _check_volume(labels_in, "labels")
    _check_out(labels_out, shape, "labels_out")
    grid = BlockGrid(shape, choose_block_shape(block_shape, labels_in, labels_out, shape))
    if 0 in shape:
        return 0
    run = partial(run_blocks, scheduler=scheduler, num_workers=num_workers, progress=progress)

    def load(b):
        start, stop = grid.bounds(b)
        block = read(labels_in, start, stop)
        if block.dtype.kind == "i" and block.size and block.min() < 0:
            raise ValueError("labels must be non-negative")
        return start, stop, block.astype(np.uint32, copy=False)

    def count(b):
        block = load(b)[2]
        sizes = np.bincount(block.ravel())
        ids = np.flatnonzero(sizes)
        return ids, sizes[ids]

    counted = run(count, range(grid.n_blocks), "count")
    sizes = np.zeros(max(int(ids[-1]) for ids, _ in counted) + 1, np.int64)
    for ids, n in counted:
        sizes[ids] += n
    del counted
    # the in-memory rule, on the same size table
    sizes[0] = 0
    present = sizes > 0
    remap = np.zeros(len(sizes), np.uint32)
    if present.any():
        threshold = min_relative_size * sizes[present].mean()
        keep = present & ~(sizes < threshold)
        remap[keep] = np.arange(1, int(keep.sum()) + 1, dtype=np.uint32)

    def write(b):
        start, stop, block = load(b)
        labels_out[slices(start, stop)] = remap[block]

    run(write, range(grid.n_blocks), "remap")
    return int(remap.max(initial=0))

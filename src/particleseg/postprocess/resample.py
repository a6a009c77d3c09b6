"""Out-of-core nearest-neighbour resampling of instance labels, one output block at a time.

:func:`resample_labels_chunked` applies the nearest-exact index rule
(:func:`particleseg.nearest_index.nearest_source_index`, shared with the in-memory
:func:`particleseg.transforms.resize.resize_labels`) to a whole volume, reading for each output
block only the source box that block needs.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from particleseg.nearest_index import nearest_source_index
from particleseg.postprocess._blocks import (
    BlockGrid,
    StageBar,
    choose_block_shape,
    read,
    run_blocks,
    slices,
)


def _check_labels(array, what: str) -> tuple[tuple[int, int, int], np.dtype]:
    shape = tuple(getattr(array, "shape", ()))
    if len(shape) != 3:
        raise ValueError(f"{what} must be a 3D array (Z, Y, X), got shape {shape}")
    dtype = np.dtype(array.dtype)
    if dtype != np.dtype(bool) and not np.issubdtype(dtype, np.integer):
        raise ValueError(f"{what} must have an integer dtype, got {dtype} (shape {shape})")
    return tuple(int(s) for s in shape), dtype


def resample_labels_chunked(
    labels_in,
    labels_out,
    block_shape=None,
    *,
    scheduler="threads",
    num_workers: int | None = None,
    progress: bool | StageBar = False,
) -> None:
    """Nearest-neighbour resample of labels to ``labels_out``'s shape, block by block.

    Writes ``labels_out[...] = labels_in[np.ix_(iz, iy, ix)]`` with
    ``iz = nearest_source_index(in_z, out_z)`` and so on: the gather step of
    :func:`particleseg.transforms.resize.resize_labels`, without its restoring of particles
    that the sampling misses (a particle thinner than the sampling step may vanish when
    downsampling; none is ever created or merged). Output blocks cover whole chunks (shards)
    of ``labels_out`` so parallel writers never share one; each block reads only the source
    box its indices span. Memory per worker: the output block, plus for zarr input the chunks
    being decoded (only the sampled voxels are kept: 0.5 s and 112 MB instead of 0.74 s and
    347 MB for a 128^3 block sampled from 384^3, zoom 3), for other input the source box (the
    block times the shrink factor of each axis, when downsampling).

    Args:
        labels_in: (Z, Y, X) integer (or bool) labels: zarr, numpy, memmap or anything with
            ``shape``, ``dtype`` and numpy slicing.
        labels_out: (Z', Y', X') array of ``labels_in``'s dtype or uint32 (zarr or numpy),
            written block by block; its shape is the output shape.
        block_shape: (Z, Y, X) output block size; default ``labels_out``'s chunks (128^3 for
            numpy). For zarr it must be a multiple of the chunks (shards) along every axis it
            does not cover whole.
        scheduler: dask scheduler for the blocks ("threads", "synchronous", ...).
        num_workers: number of dask workers; default the core count.
        progress: print a progress bar (True), or add to one stage's bar.

    Raises:
        ValueError: an array is not 3D or not integer; ``labels_out``'s dtype is neither
            ``labels_in``'s nor uint32; ``labels_in`` is empty but ``labels_out`` is not; a
            value does not fit uint32 when converting (raised by the block that holds it,
            after other blocks may have been written); bad ``block_shape``.
    """
    in_shape, in_dtype = _check_labels(labels_in, "labels_in")
    out_shape, out_dtype = _check_labels(labels_out, "labels_out")
    if out_dtype not in (in_dtype, np.dtype(np.uint32)):
        raise ValueError(
            f"labels_out must have labels_in's dtype {in_dtype} or uint32, got {out_dtype} "
            f"(shapes {in_shape} -> {out_shape})"
        )
    grid = BlockGrid(out_shape, choose_block_shape(block_shape, labels_out, labels_out, out_shape))
    if 0 in out_shape:
        return
    if 0 in in_shape:
        raise ValueError(f"cannot resample empty labels of shape {in_shape} to {out_shape}")
    check_range = not np.can_cast(in_dtype, out_dtype)
    limit = np.iinfo(out_dtype).max if check_range else None

    def write(b: int) -> None:
        start, stop = grid.bounds(b)
        index = [
            nearest_source_index(n, m, a, z)
            for n, m, a, z in zip(in_shape, out_shape, start, stop, strict=True)
        ]
        lo = [int(i[0]) for i in index]
        hi = [int(i[-1]) + 1 for i in index]
        if hasattr(labels_in, "get_orthogonal_selection"):  # zarr: only the sampled voxels
            block = np.asarray(labels_in.get_orthogonal_selection(tuple(index)))
        else:
            source = read(labels_in, lo, hi)
            block = source[np.ix_(*(i - a for i, a in zip(index, lo, strict=True)))]
        if check_range and (block.min() < 0 or block.max() > limit):
            raise ValueError(
                f"labels must lie in [0, {limit}] to be written as {out_dtype}, got values in "
                f"[{block.min()}, {block.max()}] (source box {lo} to {hi})"
            )
        labels_out[slices(start, stop)] = block.astype(out_dtype, copy=False)

    run = partial(run_blocks, scheduler=scheduler, num_workers=num_workers, progress=progress)
    run(write, range(grid.n_blocks), "resample")

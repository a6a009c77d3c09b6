"""Block grid, block-aligned reads and writes, the scratch array, and running blocks with dask."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import dask
import numpy as np
import zarr
from zarr.codecs import BloscCodec

DEFAULT_BLOCK = 128


class BlockGrid:
    """A regular grid of blocks over a (Z, Y, X) volume; the last block of an axis may be short.

    Blocks are numbered in C order of their grid position.
    """

    def __init__(self, shape: Sequence[int], block_shape: Sequence[int]):
        self.shape = tuple(int(s) for s in shape)
        self.block = tuple(int(b) for b in block_shape)
        self.grid = tuple(math.ceil(s / b) for s, b in zip(self.shape, self.block, strict=True))
        self.n_blocks = int(np.prod(self.grid))

    def position(self, b: int) -> tuple[int, int, int]:
        """Grid position (i, j, k) of block ``b``."""
        return tuple(int(i) for i in np.unravel_index(b, self.grid))

    def bounds(self, b: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Start and stop (exclusive) of block ``b`` in volume coordinates."""
        pos = self.position(b)
        start = tuple(p * s for p, s in zip(pos, self.block, strict=True))
        stop = tuple(min(a + s, n) for a, s, n in zip(start, self.block, self.shape, strict=True))
        return start, stop

    def region(self, b: int, halo: Sequence[int]):
        """Block ``b`` grown by ``halo`` per axis, clipped to the volume.

        Returns:
            Region start, region stop, and the block's own voxels as ``lo``/``hi`` in region
            coordinates (int64 arrays).
        """
        start, stop = self.bounds(b)
        r0 = tuple(max(0, a - h) for a, h in zip(start, halo, strict=True))
        r1 = tuple(min(n, a + h) for a, h, n in zip(stop, halo, self.shape, strict=True))
        lo = np.array([a - r for a, r in zip(start, r0, strict=True)], np.int64)
        hi = np.array([a - r for a, r in zip(stop, r0, strict=True)], np.int64)
        return r0, r1, lo, hi


def slices(start: Sequence[int], stop: Sequence[int]) -> tuple[slice, ...]:
    """Slices for a box."""
    return tuple(slice(a, b) for a, b in zip(start, stop, strict=True))


def read(array, start, stop) -> np.ndarray:
    """A C-contiguous numpy copy of ``array[start:stop]`` (zarr, numpy, memmap or alike)."""
    return np.ascontiguousarray(np.asarray(array[slices(start, stop)]))


def chunk_shape(array) -> tuple[int, ...] | None:
    """The write unit of ``array``: its shard shape, else its chunk shape; None for numpy."""
    shards = getattr(array, "shards", None)
    if shards is not None:
        return tuple(int(c) for c in shards)
    chunks = getattr(array, "chunks", None)
    if chunks is None:
        return None
    # dask arrays give a tuple of per-axis chunk tuples
    return tuple(int(c[0]) if isinstance(c, tuple) else int(c) for c in chunks)


def choose_block_shape(block_shape, source, target, shape) -> tuple[int, int, int]:
    """The block shape: given, else the source's chunks (128^3 for numpy), aligned to ``target``.

    A block must cover whole chunks (shards) of ``target`` so that parallel writers never share
    one; a default block is rounded up to a multiple of them, an explicit one must already be.
    """
    target_chunks = chunk_shape(target)
    if block_shape is None:
        block = chunk_shape(source) or (DEFAULT_BLOCK,) * 3
        if target_chunks is not None:
            block = tuple(math.ceil(b / c) * c for b, c in zip(block, target_chunks, strict=True))
    else:
        block = tuple(int(b) for b in block_shape)
        if len(block) != 3 or any(b < 1 for b in block):
            raise ValueError(f"block_shape must be 3 positive ints (Z, Y, X), got {block_shape!r}")
        if target_chunks is not None:
            bad = [
                (b, c)
                for b, c, n in zip(block, target_chunks, shape, strict=True)
                if b % c and b < n
            ]
            if bad:
                raise ValueError(
                    f"block_shape {block} must be a multiple of the output's chunks "
                    f"{target_chunks} (so that no two blocks write the same zarr chunk)"
                )
    return tuple(min(b, n) if n > 0 else b for b, n in zip(block, shape, strict=True))


def _sub_chunk(b: int) -> int:
    """Largest divisor of ``b`` up to 64 (the block itself when that is tiny)."""
    best = max(d for d in range(1, min(b, 64) + 1) if b % d == 0)
    return best if best >= 8 else b


def make_scratch(directory: str | Path, shape, block_shape) -> zarr.Array:
    """A uint32 zarr array on disk, chunks dividing the blocks, for cheap halo reads.

    Unsharded (reading a halo'd region from shards cost three times as much here) and
    compressed with Blosc-zstd level 1: block-local ids take ~5 % of their raw size (so the
    scratch is small even on a RAM-backed temp dir) and read as fast as raw chunks.
    """
    return zarr.create_array(
        store=str(Path(directory) / "pieces.zarr"),
        shape=shape,
        chunks=tuple(_sub_chunk(b) for b in block_shape),
        dtype="uint32",
        fill_value=0,
        compressors=BloscCodec(cname="zstd", clevel=1, shuffle="noshuffle"),
    )


class StageBar:
    """One progress bar for all the passes of a stage: each pass adds its blocks to the total.

    The bar's label names the stage and, after a colon, the pass under way. Passes are not all
    known in advance (the far-voxel passes depend on the data), so the total grows as they
    start; the count never runs past it.
    """

    def __init__(self, stage: str, **tqdm_kwargs):
        from tqdm.auto import tqdm

        self.stage = stage
        self.bar = tqdm(total=0, desc=stage, unit="block", mininterval=0.5, **tqdm_kwargs)

    def begin(self, what: str, n: int) -> None:
        """A pass of ``n`` blocks starts."""
        self.bar.total += n
        self.bar.set_description_str(f"{self.stage}: {what}", refresh=False)
        self.bar.refresh()

    def advance(self, n: int = 1) -> None:
        """``n`` blocks done."""
        self.bar.update(min(n, self.bar.total - self.bar.n))

    def close(self) -> None:
        """Finish the bar (the stage is done)."""
        self.bar.set_description_str(self.stage, refresh=False)
        self.bar.close()

    def __enter__(self) -> StageBar:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def run_blocks(
    fn: Callable,
    items: Sequence,
    what: str,
    *,
    scheduler,
    num_workers: int | None,
    progress: bool | StageBar,
) -> list:
    """``[fn(i) for i in items]``, as dask tasks on ``scheduler``.

    Args:
        fn: the work on one item (a block number).
        items: the items.
        what: the pass's name (a progress bar's label, the dask keys).
        scheduler: a dask scheduler name or a distributed client.
        num_workers: threads of a local scheduler (None: dask's default).
        progress: False for none, True for a bar of this pass, or a :class:`StageBar` that
            this pass adds to.
    """
    if not len(items):
        return []
    stage_bar = progress if isinstance(progress, StageBar) else None
    if stage_bar is not None:
        stage_bar.begin(what, len(items))
    if scheduler == "synchronous" and (not progress or stage_bar is not None):
        results = []
        for i in items:
            results.append(fn(i))
            if stage_bar is not None:
                stage_bar.advance()
        return results
    tasks = [dask.delayed(fn, pure=False)(i, dask_key_name=f"{what}-{i}") for i in items]
    bar = contextlib.nullcontext()
    if stage_bar is not None and isinstance(scheduler, str):
        from dask.callbacks import Callback

        bar = Callback(posttask=lambda *_: stage_bar.advance())
    elif progress is True:
        from dask.diagnostics import ProgressBar

        print(f"{what}:", flush=True)
        bar = ProgressBar()
    kwargs = {"scheduler": scheduler}
    if num_workers is not None:
        kwargs["num_workers"] = num_workers
    with bar:
        results = list(dask.compute(*tasks, **kwargs))
    if stage_bar is not None and not isinstance(scheduler, str):
        stage_bar.advance(len(items))  # a distributed run has no callbacks: the pass at once
    return results

"""Particle properties of label volumes larger than memory, block by block with dask.

:func:`particle_properties_chunked` returns the same table as
:func:`particleseg.analysis.properties.particle_properties` (same ids, same values: sizes,
moments, boxes and geometry bit-identical, intensity sums up to float64 summation order) for
labels and image given as zarr, numpy or dask arrays, reading at most a few blocks at a time.

**Method.**

0. Without ``hist_range`` and with an image: the image's (min, max), block by block.
1. Per block of ``block_shape``: additive statistics by id (voxel count, int64 coordinate sums and
   second moments, bounding box, intensity sum / sum of squares / min / max, histogram counts),
   then reduced by id over all blocks. Particles crossing blocks just add up.
2. Per-particle geometry (surface, hulls, Feret) needs the whole particle: each particle is
   *owned* by the block that holds the first corner of its bounding box; a task per block reads
   once the union of its particles' bounding boxes (at most about twice the block per axis) and
   runs the geometry on each particle's exact bounding-box crop, as the in-memory path does.
   A particle larger than a block along some axis gets a task of its own reading its box.
   A particle whose box holds more than ``geometry_max_voxels`` (default 2^24, a 256^3 box)
   is measured on every s-th voxel along each axis instead, with s the smallest stride that
   fits, read slab by slab: its surface, Feret diameters and convex volume are then
   approximations (a warning names such particles), and the task's memory stays bounded even
   for a "particle" that spans the scan (the matrix, a merged mass). Everything else is exact.

Memory: a few blocks (and their boxes) per worker, plus the per-particle table.

**Scheduling.** The default for zarr (or dask) inputs is dask's ``"processes"`` scheduler, one
pool of ``num_workers`` processes shared by the passes: the geometry is mostly Python and does
not run in parallel in threads. Those processes are *spawned*, so a script calling this must
guard its entry point with ``if __name__ == "__main__":`` (a notebook needs nothing). Numpy
inputs default to ``"threads"`` (processes would receive a copy of the array per task). The
time of each pass is logged at INFO level (logger ``particleseg.analysis.chunked``).
"""

from __future__ import annotations

import concurrent.futures
import itertools
import logging
import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from particleseg.analysis.block_stats import HistSpec, block_stats, hist_spec, merge_stats
from particleseg.analysis.properties import (
    GEOMETRY_COLUMNS,
    assemble,
    check_inputs,
    crop_geometry,
    geometry_arrays,
)
from particleseg.io import read_box, slab_depth
from particleseg.spacing import check_spacing

__all__ = ["particle_properties_chunked"]

#: Largest particle box whose geometry is measured on every voxel (see the module docstring).
GEOMETRY_MAX_VOXELS = 2**24

log = logging.getLogger(__name__)

Box = tuple[slice, slice, slice]


class _Source:
    """A numpy, zarr or dask array read by boxes into numpy (opaque to dask's graph walking)."""

    def __init__(self, array: Any) -> None:
        self.array = array
        self.shape = tuple(int(n) for n in array.shape)
        self.dtype = np.dtype(array.dtype)

    def read(self, box: Box) -> np.ndarray:
        return read_box(self.array, box)


def _blocks(shape: Sequence[int], block: Sequence[int]) -> list[Box]:
    """Boxes of a regular grid of ``block`` covering ``shape`` (the last ones clipped)."""
    grid = [range(0, n, b) for n, b in zip(shape, block, strict=True)]
    return [
        tuple(slice(o, min(o + b, n)) for o, b, n in zip(origin, block, shape, strict=True))
        for origin in itertools.product(*grid)
    ]


def _range_task(image: _Source, box: Box) -> tuple[float, float]:
    values = image.read(box)
    return float(values.min()), float(values.max())


def _stats_task(
    labels: _Source, image: _Source | None, box: Box, hist: HistSpec | None
) -> dict[str, np.ndarray]:
    lab = labels.read(box)
    img = image.read(box) if image is not None else None
    return block_stats(lab, img, tuple(s.start for s in box), hist)


def geometry_stride(extent: Sequence[int], max_voxels: int) -> int:
    """The smallest stride s whose subsample of a box of ``extent`` holds <= ``max_voxels``."""
    s = 1
    while math.prod(-(-int(n) // s) for n in extent) > max_voxels:
        s += 1
    return s


def _strided_mask(labels: _Source, region: Box, pid: int, stride: int) -> np.ndarray:
    """``labels[region][::stride, ::stride, ::stride] == pid``, read a slab of z at a time."""
    start = [r.start for r in region]
    extent = tuple(r.stop - r.start for r in region)
    mask = np.zeros([-(-n // stride) for n in extent], bool)
    # a multiple of the stride, so that the samples stay aligned from slab to slab
    slab = slab_depth(extent, labels.dtype, multiple=stride)
    for z0 in range(start[0], region[0].stop, slab):
        box = (slice(z0, min(z0 + slab, region[0].stop)), region[1], region[2])
        part = labels.read(box)[::stride, ::stride, ::stride] == pid
        k = (z0 - start[0]) // stride
        mask[k : k + part.shape[0]] = part
    return mask


def _geometry_task(
    labels: _Source,
    region: Box,
    rows: np.ndarray,
    ids: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    spacing: tuple[float, float, float],
    stride: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Geometry of particles ``ids`` whose boxes ``[lo, hi)`` (local to ``region``) it holds.

    With ``stride`` > 1 (one particle whose box is ``region``), on every stride-th voxel.

    Returns:
        (rows, values): the table rows and a (len(rows), 4) float64 array of surface area,
        Feret max, Feret min and convex volume.
    """
    if stride > 1:
        mask = _strided_mask(labels, region, int(ids[0]), stride)
        coarse = tuple(float(d) * stride for d in spacing)
        return rows, np.asarray([crop_geometry(mask, 1, coarse)], np.float64)
    data = labels.read(region)
    values = np.empty((len(rows), 4), np.float64)
    for k, pid in enumerate(ids):
        box = tuple(slice(a, b) for a, b in zip(lo[k], hi[k], strict=True))
        values[k] = crop_geometry(data[box], int(pid), spacing)
    return rows, values


def _geometry_plan(
    stats: dict[str, np.ndarray], block: Sequence[int], max_voxels: int = GEOMETRY_MAX_VOXELS
) -> list[tuple[Box, np.ndarray, int]]:
    """Group particles by the block owning their box's first corner.

    Returns:
        (region, rows, stride) per task: the box to read (union of the particles' boxes), the
        rows of the particles it serves, and the sampling stride (1: every voxel). Particles
        longer than a block along some axis get their own task, strided when their box holds
        more than ``max_voxels``.
    """
    lo, hi = stats["lo"], stats["hi"]
    block_arr = np.asarray(block, np.int64)
    big = ((hi - lo) > block_arr).any(axis=1)
    plan: list[tuple[Box, np.ndarray, int]] = []
    for row in np.flatnonzero(big):
        box = tuple(slice(a, b) for a, b in zip(lo[row], hi[row], strict=True))
        plan.append((box, [row], geometry_stride(hi[row] - lo[row], max_voxels)))
    small = np.flatnonzero(~big)
    if len(small):
        owner = lo[small] // block_arr
        key = np.ravel_multi_index(owner.T, owner.max(axis=0) + 1)
        order = np.argsort(key, kind="stable")
        splits = np.flatnonzero(np.diff(key[order])) + 1
        for group in np.split(small[order], splits):
            start, stop = lo[group].min(axis=0), hi[group].max(axis=0)
            box = tuple(slice(a, b) for a, b in zip(start, stop, strict=True))
            plan.append((box, group, 1))
    return [(region, np.asarray(rows, np.intp), stride) for region, rows, stride in plan]


def _compute(tasks: list[Any], scheduler: Any, pool: Any) -> list[Any]:
    import dask

    if not tasks:
        return []
    kwargs = {"pool": pool} if pool is not None else {}
    return list(dask.compute(*tasks, scheduler=scheduler, **kwargs))


def _default_scheduler(labels: Any, image: Any | None) -> str:
    """Processes for arrays that pickle cheaply (zarr, dask); threads for in-memory numpy."""
    arrays = [labels] if image is None else [labels, image]
    in_memory = any(isinstance(a, np.ndarray) for a in arrays)
    return "threads" if in_memory else "processes"


def particle_properties_chunked(
    labels: Any,
    image: Any | None = None,
    spacing: Sequence[float] = (1.0, 1.0, 1.0),
    block_shape: Sequence[int] = (128, 128, 128),
    scheduler: Any | None = None,
    *,
    hist_bins: int = 8,
    hist_range: Sequence[float] | None = None,
    num_workers: int | None = None,
    geometry_max_voxels: int = GEOMETRY_MAX_VOXELS,
    warnings: list[str] | None = None,
) -> dict[str, np.ndarray]:
    """Particle properties of a label volume read block by block (same table as in memory).

    Args:
        labels: (Z, Y, X) integer labels as a zarr, numpy or dask array (0 = background).
        image: (Z, Y, X) numeric image of the same shape (zarr, numpy or dask), or None.
        spacing: (sz, sy, sx) voxel size in physical units.
        block_shape: (bz, by, bx) voxels per block; a multiple of the zarr chunks reads best.
        scheduler: A dask scheduler (``"threads"``, ``"processes"``, ``"synchronous"``, a
            ``distributed.Client``). Default ``"processes"`` for zarr/dask inputs (the geometry is
            mostly Python, which threads do not run in parallel) and ``"threads"`` when an input
            is a numpy array (which processes would have to copy).
        hist_bins: Number of histogram bins (with an image).
        hist_range: (lo, hi) of the histogram; default the image's (min, max).
        num_workers: Workers of a local scheduler (default: dask's, the number of cores).
        geometry_max_voxels: A particle whose box holds more voxels has its geometry measured
            on a strided subsample (module docstring).
        warnings: A list to append what the caller should report to (the particles measured
            strided); they are logged either way.

    Returns:
        The column table of :func:`particleseg.analysis.properties.particle_properties`.

    Raises:
        ValueError: For bad shapes, dtypes, spacing, block shape or negative labels.
    """
    check_inputs(labels, image)
    spacing = check_spacing(spacing)
    block = tuple(int(b) for b in block_shape)
    if len(block) != 3 or any(b < 1 for b in block):
        raise ValueError(f"block_shape must be three positive integers, got {block_shape}")
    lab_src = _Source(labels)
    img_src = _Source(image) if image is not None else None
    blocks = _blocks(lab_src.shape, block)
    if scheduler is None:
        scheduler = _default_scheduler(labels, image)

    import dask
    from dask.multiprocessing import get_context

    pool = None
    if scheduler == "processes":
        workers = num_workers or dask.system.CPU_COUNT
        pool = concurrent.futures.ProcessPoolExecutor(workers, mp_context=get_context())
    elif num_workers is not None and scheduler == "threads":
        pool = concurrent.futures.ThreadPoolExecutor(num_workers)
    delayed = dask.delayed(pure=False)
    start = time.perf_counter()
    try:
        hist = None
        if img_src is not None:
            lo, hi = 0.0, 1.0
            if hist_range is None and math.prod(lab_src.shape):
                ranges = _compute(
                    [delayed(_range_task)(img_src, box) for box in blocks], scheduler, pool
                )
                lo, hi = min(r[0] for r in ranges), max(r[1] for r in ranges)
            hist = hist_spec(hist_bins, hist_range, lo, hi)
            log.info("image range %s..%s in %.1f s", lo, hi, time.perf_counter() - start)
        bins = hist.bins if hist is not None else None

        parts = _compute(
            [delayed(_stats_task)(lab_src, img_src, box, hist) for box in blocks], scheduler, pool
        )
        stats = merge_stats(parts, bins)
        del parts
        log.info(
            "statistics of %d particles in %d blocks: %.1f s",
            len(stats["id"]),
            len(blocks),
            time.perf_counter() - start,
        )

        geometry = geometry_arrays(len(stats["id"]))
        tasks = []
        plan = _geometry_plan(stats, block, geometry_max_voxels)
        strided = [(int(stats["id"][rows[0]]), stride) for _, rows, stride in plan if stride > 1]
        if strided:
            text = (
                f"{len(strided)} particle(s) with boxes above {geometry_max_voxels} voxels: "
                "surface, Feret diameters and convex volume measured on every s-th voxel "
                f"(id, s): {strided[:10]}"
            )
            log.warning("%s", text)
            if warnings is not None:
                warnings.append(text)
        for region, rows, stride in plan:
            origin = np.asarray([s.start for s in region], np.int64)
            tasks.append(
                delayed(_geometry_task)(
                    lab_src,
                    region,
                    rows,
                    stats["id"][rows],
                    stats["lo"][rows] - origin,
                    stats["hi"][rows] - origin,
                    spacing,
                    stride,
                )
            )
        for rows, values in _compute(tasks, scheduler, pool):
            for col, name in enumerate(GEOMETRY_COLUMNS):
                geometry[name][rows] = values[:, col]
        log.info("geometry in %d tasks: %.1f s", len(tasks), time.perf_counter() - start)
    finally:
        if pool is not None:
            pool.shutdown()
    return assemble(stats, geometry, spacing, lab_src.shape, hist)

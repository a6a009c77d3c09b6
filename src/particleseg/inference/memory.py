"""Predict's peak memory, estimated before the run from its settings (not from the scan's size).

Every stage of predict works chunk by chunk or block by block, so its peak depends on the
chunk, block, halo and worker settings and on the model's window, not on the scan or the
network grid. The estimate adds, to the process's memory when it is made (the imports and the
model), the network stage's working set and the largest of the CPU stages' (what the network
stage freed is not always given back to the system, so the two are added, not maxed):

- network: the chunk's region (interior plus one window) with its image, class sums and window
  weights (``NETWORK_BYTES_PER_VOXEL``), plus one forward pass's activations
  (``ACTIVATION_BYTES_PER_VOXEL`` per window voxel and window of the batch);
- instances: per worker, the largest of a halo'd block (``INSTANCE_BYTES_PER_VOXEL``) and the
  far-voxel region (``FAR_REGION_VOXELS`` at ``FAR_BYTES_PER_VOXEL``);
- resample and filter: per worker a scan-grid block and its source region on the network grid
  (the block times the zoom), ``LABEL_BYTES_PER_VOXEL`` each.

The per-voxel constants are read off measured runs; the estimate is a guard against settings
that cannot fit, not a prediction to the megabyte. On the bundled sample (128 x 256 x 256,
network grid 174 x 348 x 348, 2 workers), with ``ACTIVATION_BYTES_PER_VOXEL`` = 400, the run
estimated 1.19 GB and peaked at 1.11 GB with torch bf16, 1.26 GB with OpenVINO bf16 (after the
network 0.95 GB, after the instances 1.17 GB, from 0.63 GB at the start); the constant was then
raised to 700 so that the network stage's share covers OpenVINO's runtime too.
"""

from __future__ import annotations

import math
import os

from particleseg.inference.settings import resolve_inference
from particleseg.postprocess._far import FAR_REGION_VOXELS

NETWORK_BYTES_PER_VOXEL = 20  # float32 image, 3 class sums, weights
ACTIVATION_BYTES_PER_VOXEL = 700  # live activations per window voxel (OpenVINO's runtime too)
INSTANCE_BYTES_PER_VOXEL = 40  # block-local ids, tables mapped per voxel, transform, output
FAR_BYTES_PER_VOXEL = 16  # piece ids, seed and component ids of the far-voxel region
LABEL_BYTES_PER_VOXEL = 8  # uint32 labels and their remapped copy (resample, filter)
SCAN_BLOCK = 128  # the scan-grid stages' block edge (cpu_stages.SCAN_BLOCKS)


def stage_bytes(
    chunk_size: int,
    patch_size,
    batch_size: int,
    block: int,
    halo: int,
    workers: int,
    zoom=(1.0, 1.0, 1.0),
) -> dict[str, int]:
    """Bytes each stage adds to the process, by the module's per-voxel figures.

    Args:
        chunk_size: the network stage's chunk interior per axis (network voxels).
        patch_size: the model's window (z, y, x).
        batch_size: windows per forward pass.
        block: the instance stage's block edge (the chunk interior on the network grid).
        halo: the instance stage's halo.
        workers: dask threads of the CPU stages.
        zoom: scan to network grid, per axis.

    Returns:
        ``{"network": ..., "instances": ..., "resample": ...}`` in bytes.
    """
    region = math.prod(int(chunk_size) + int(p) for p in patch_size)
    window = math.prod(int(p) for p in patch_size)
    far = max(FAR_REGION_VOXELS, 4 * block**3)
    per_worker = max((block + 2 * halo) ** 3 * INSTANCE_BYTES_PER_VOXEL, far * FAR_BYTES_PER_VOXEL)
    return {
        "network": region * NETWORK_BYTES_PER_VOXEL
        + batch_size * window * ACTIVATION_BYTES_PER_VOXEL,
        "instances": workers * per_worker,
        "resample": workers
        * LABEL_BYTES_PER_VOXEL
        * (SCAN_BLOCK**3 + math.prod(math.ceil(SCAN_BLOCK * z) + 2 for z in zoom)),
    }


def available_bytes() -> int | None:
    """Memory available to new allocations now (``MemAvailable``), None where unknown."""
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:  # pragma: no cover - psutil comes with distributed
        return None


def estimate_peak(base: int, inference: dict, halo: int, workers: int | None, patch, zoom):
    """The estimated peak of the run (bytes) and each stage's share.

    Args:
        base: the process's resident memory now (imports and model).
        inference: predict's ``inference`` settings (``chunk_size``, ``batch_size``).
        halo: the instance stage's halo (its blocks are the network stage's chunks).
        workers: dask threads (None: the core count, as dask takes it).
        patch: the model's window.
        zoom: scan to network grid, per axis.
    """
    workers = int(workers or os.cpu_count() or 1)
    inference = resolve_inference(inference)
    chunk = int(inference["chunk_size"])
    stages = stage_bytes(chunk, patch, inference["batch_size"], chunk, halo, workers, zoom)
    return base + stages["network"] + max(stages["instances"], stages["resample"]), stages


def settings_that_fit(
    base: int, available: int, inference: dict, halo: int, workers: int | None, patch, zoom
) -> list[str]:
    """Overrides (smaller chunks, fewer workers) whose estimated peak fits ``available``."""
    workers = int(workers or os.cpu_count() or 1)
    fits = []
    inference = resolve_inference(inference)
    for chunk in sorted({int(inference["chunk_size"]), 128, 96, max(patch)}, reverse=True):
        if chunk < max(patch):
            continue
        for n in range(workers, 0, -1):
            need = estimate_peak(base, {**inference, "chunk_size": chunk}, halo, n, patch, zoom)
            if need[0] - base <= available:
                fits.append(f"inference.chunk_size={chunk} dask.num_workers={n}")
                break
    return fits[:2]


def check_memory(path, inference: dict, halo: int, dask: dict, patch, zoom) -> dict:
    """Refuse settings whose estimated peak exceeds the memory available now.

    Args:
        path: the scan (named in the error).
        inference: predict's ``inference`` settings.
        halo: the instance stage's halo (resolved).
        dask: predict's ``dask`` settings (``num_workers``; a cluster's workers are not local
            and are not counted).
        patch: the model's window.
        zoom: scan to network grid, per axis.

    Returns:
        ``peak_memory_bytes`` (the estimate), ``memory_available_bytes`` and the per-stage
        figures, for the cost estimate in ``summary.json``.

    Raises:
        ValueError: the estimate does not fit; the message gives settings that would.
    """
    from particleseg.inference.run_state import current_rss_bytes

    workers = 1 if dask.get("address") else dask.get("num_workers")
    base = current_rss_bytes()
    peak, stages = estimate_peak(base, inference, halo, workers, patch, zoom)
    available = available_bytes()
    facts = {
        "peak_memory_bytes": int(peak),
        "memory_available_bytes": available,
        "memory_by_stage_bytes": {k: int(v) for k, v in stages.items()},
    }
    if available is not None and peak - base > available:
        fits = settings_that_fit(base, available, inference, halo, workers, patch, zoom)
        hint = (
            f"settings that fit: {' or '.join(fits)}"
            if fits
            else "no smaller chunk or fewer workers fit: free memory or use a larger machine"
        )
        raise ValueError(
            f"{path}: predict would need about {peak / 2**30:.1f} GiB at its peak "
            f"(the {max(stages, key=stages.get)} stage; this process holds {base / 2**30:.1f} "
            f"GiB already) but {available / 2**30:.1f} GiB is available; {hint}. The peak "
            "depends on these settings, not on the scan's size; force=true runs anyway"
        )
    return facts

"""The CPU stages of predict, after the network: instances, resample, filter, outputs.

Each is a set of dask tasks (local threads, or a dask.distributed cluster given by address) and
ends with a marker, so a resumed run skips the finished ones; a stage cut short is run again
whole (each rewrites its output completely).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import zarr

from particleseg.inference.inputs import ScanInput
from particleseg.inference.plan import ChunkPlan
from particleseg.inference.run_state import Stages, folder_bytes, peak_rss_bytes
from particleseg.io import write_volume
from particleseg.postprocess import (
    border_core_to_instance_chunked,
    filter_small_particles_chunked,
    resample_labels_chunked,
)

# Zarr chunks of the labels on the scan's grid: thin in Z, so that the TIFF copy (written in
# Z slabs of whole chunks) holds few slices at once; the blocks that write them are larger.
SCAN_CHUNKS = (16, 128, 128)
SCAN_BLOCKS = (128, 128, 128)


def run_cpu_stages(
    work: Path,
    scan: ScanInput,
    plan: ChunkPlan,
    pp: dict,
    dask: dict,
    stages: Stages,
    timings: dict,
    peaks: dict,
) -> None:
    """Instances on the network grid, nearest back to the scan's grid, small-particle filter.

    Reads ``work/border_core.zarr``, writes ``work/instances.zarr`` (uint32, the scan's grid,
    with its spacing); records seconds in ``timings`` and peak RSS in ``peaks``.
    """
    scheduler, num_workers, client = dask_scheduler(dask)
    try:
        bc = zarr.open_array(str(work / "border_core.zarr"), mode="r")
        inst_net_path = work / "instances_network.zarr"
        if stages.done("instances") is None:
            t0 = time.perf_counter()
            inst_net = zarr.create_array(
                store=str(inst_net_path),
                shape=plan.network_shape,
                chunks=bc.chunks,
                dtype="uint32",
                fill_value=0,
                overwrite=True,
            )
            n = border_core_to_instance_chunked(
                bc,
                inst_net,
                block_shape=bc.chunks,
                halo=pp.get("halo", 8),
                small_core_distance=pp.get("small_core_distance", 1.0),
                small_core_fraction=pp.get("small_core_fraction", 0.95),
                small_core_max_distance=pp.get("small_core_max_distance", 3.0),
                connectivity=pp.get("connectivity", 6),
                progress=True,
                scheduler=scheduler,
                num_workers=num_workers,
                scratch_dir=work,
            )
            timings["instances"] = time.perf_counter() - t0
            peaks["instances"] = peak_rss_bytes()["self"]
            stages.mark(
                "instances",
                {"particles": n, "seconds": timings["instances"], "work_bytes": folder_bytes(work)},
            )
        inst_scan_path = work / "instances_scan.zarr"
        if stages.done("resample") is None:
            t0 = time.perf_counter()
            inst_scan = zarr.create_array(
                store=str(inst_scan_path),
                shape=scan.shape,
                chunks=tuple(min(c, s) for c, s in zip(SCAN_CHUNKS, scan.shape, strict=True)),
                dtype="uint32",
                fill_value=0,
                overwrite=True,
            )
            resample_labels_chunked(
                zarr.open_array(str(inst_net_path), mode="r"),
                inst_scan,
                block_shape=_blocks(scan.shape),
                scheduler=scheduler,
                num_workers=num_workers,
                progress=True,
            )
            timings["resample"] = time.perf_counter() - t0
            peaks["resample"] = peak_rss_bytes()["self"]
            stages.mark(
                "resample", {"seconds": timings["resample"], "work_bytes": folder_bytes(work)}
            )
        final_path = work / "instances.zarr"
        if stages.done("filter") is None:
            t0 = time.perf_counter()
            src = zarr.open_array(str(inst_scan_path), mode="r")
            final = zarr.create_array(
                store=str(final_path),
                shape=scan.shape,
                chunks=src.chunks,
                dtype="uint32",
                fill_value=0,
                overwrite=True,
                attributes={"spacing": list(scan.spacing)} if scan.spacing else {},
            )
            n = filter_small_particles_chunked(
                src,
                final,
                min_relative_size=pp.get("min_relative_size", 0.005),
                block_shape=_blocks(scan.shape),
                scheduler=scheduler,
                num_workers=num_workers,
                progress=True,
            )
            timings["filter"] = time.perf_counter() - t0
            peaks["filter"] = peak_rss_bytes()["self"]
            stages.mark(
                "filter",
                {"particles": n, "seconds": timings["filter"], "work_bytes": folder_bytes(work)},
            )
    finally:
        if client is not None:
            client.close()


def _blocks(shape) -> tuple[int, int, int]:
    """Blocks of the scan-grid stages: whole chunks, at most :data:`SCAN_BLOCKS`."""
    return tuple(min(b, s) for b, s in zip(SCAN_BLOCKS, shape, strict=True))


def dask_scheduler(dask: dict):
    """``(scheduler, num_workers, client)``: local threads, or a dask.distributed cluster.

    The cluster is the one at ``dask["address"]``; its client must be closed afterwards.
    """
    address = dask.get("address")
    if not address:
        return "threads", dask.get("num_workers"), None
    from distributed import Client

    client = Client(address)
    return client, None, client


def finish_outputs(out: Path, work: Path, scan: ScanInput, outputs: dict) -> dict[str, int]:
    """Move the results into ``out`` (idempotent) and write the TIFF copy; return their bytes."""
    written = {}
    moves = [("instances.zarr", True)]
    moves += [("border_core.zarr", bool(outputs.get("border_core")))]
    moves += [("probabilities.zarr", bool(outputs.get("probabilities")))]
    for name, wanted in moves:
        src, dst = work / name, out / name
        if wanted and src.exists():
            if dst.exists():
                shutil.rmtree(dst)
            os.replace(src, dst)
        if wanted and dst.exists():
            written[name] = folder_bytes(dst)
    final = zarr.open_array(str(out / "instances.zarr"), mode="r")
    if final.nbytes <= float(outputs.get("tiff_max_bytes", 2**31)):
        write_volume(out / "instances.tif", final, spacing=scan.spacing)
        written["instances.tif"] = folder_bytes(out / "instances.tif")
    return written

"""The CPU stages of predict, after the network: instances, resample, filter, outputs.

Each is a set of dask tasks (local threads, or a dask.distributed cluster given by address) and
ends with a marker, so a resumed run skips the finished ones; a stage cut short is run again
whole (each rewrites its output completely).
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path

import zarr

from particleseg.inference.inputs import ScanInput
from particleseg.inference.plan import ChunkPlan
from particleseg.inference.run_state import Stages, folder_bytes, peak_rss_bytes
from particleseg.io.imagej import label_tiff_dtype, write_label_tiff
from particleseg.io.ome_zarr import write_label_ome_zarr
from particleseg.postprocess import (
    HALO,
    StageBar,
    border_core_to_instance_chunked,
    filter_small_particles_chunked,
    resample_labels_chunked,
)
from particleseg.targets import (
    MIN_RELATIVE_SIZE,
    SMALL_CORE_DISTANCE,
    SMALL_CORE_FRACTION,
    SMALL_CORE_MAX_DISTANCE,
)

# Zarr chunks of the labels on the scan's grid: thin in Z, so that the TIFF copy (written in
# Z slabs of whole chunks) holds few slices at once; the blocks that write them are larger.
SCAN_CHUNKS = (16, 128, 128)
SCAN_BLOCKS = (128, 128, 128)

# Built-in post-processing thresholds; a model's tuned values and then the user's replace them.
log = logging.getLogger(__name__)

POSTPROCESS_DEFAULTS = {
    "halo": HALO,
    "small_core_distance": SMALL_CORE_DISTANCE,
    "small_core_fraction": SMALL_CORE_FRACTION,
    "small_core_max_distance": SMALL_CORE_MAX_DISTANCE,
    "min_relative_size": MIN_RELATIVE_SIZE,
    "connectivity": 6,
}


def resolve_postprocess(given: dict | None, tuned: dict | None) -> dict:
    """The post-processing settings of a run: the user's, else the model's tuned, else built in.

    Args:
        given: predict's ``postprocess`` settings; a None value means "not given".
        tuned: thresholds stored with the model (may be empty).

    Returns:
        Every key of :data:`POSTPROCESS_DEFAULTS` (plus any other given key) with a value.
    """
    given, tuned = dict(given or {}), dict(tuned or {})
    resolved = {k: tuned.get(k, v) for k, v in POSTPROCESS_DEFAULTS.items()}
    resolved.update({k: v for k, v in given.items() if v is not None})
    return resolved


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
    run = {"scheduler": scheduler, "num_workers": num_workers}
    net_path, scan_path = work / "instances_network.zarr", work / "instances_scan.zarr"
    scan_chunks = tuple(min(c, s) for c, s in zip(SCAN_CHUNKS, scan.shape, strict=True))

    def stage(name: str, fn) -> None:
        if stages.done(name) is not None:
            return
        t0 = time.perf_counter()
        with StageBar(name) as bar:  # one bar for all of the stage's passes
            run["progress"] = bar
            facts = fn() or {}
        timings[name] = time.perf_counter() - t0
        peaks[name] = peak_rss_bytes()["self"]
        stages.mark(name, {**facts, "seconds": timings[name], "work_bytes": folder_bytes(work)})

    def instances() -> dict:
        bc = zarr.open_array(str(work / "border_core.zarr"), mode="r")
        n = border_core_to_instance_chunked(
            bc,
            _labels(net_path, plan.network_shape, bc.chunks),
            block_shape=bc.chunks,
            halo=pp["halo"],
            small_core_distance=pp["small_core_distance"],
            small_core_fraction=pp["small_core_fraction"],
            small_core_max_distance=pp["small_core_max_distance"],
            connectivity=pp["connectivity"],
            scratch_dir=work,
            **run,
        )
        return {"particles": n}

    def resample() -> None:
        out = _labels(scan_path, scan.shape, scan_chunks)
        source = zarr.open_array(str(net_path), mode="r")
        resample_labels_chunked(source, out, block_shape=_blocks(scan.shape), **run)

    def small_particles() -> dict:
        spacing = list(scan.spacing) if scan.spacing else None
        out = _labels(work / "instances.zarr", scan.shape, scan_chunks, spacing)
        source = zarr.open_array(str(scan_path), mode="r")
        n = filter_small_particles_chunked(
            source,
            out,
            min_relative_size=pp["min_relative_size"],
            block_shape=_blocks(scan.shape),
            **run,
        )
        return {"particles": n}

    try:
        stage("instances", instances)
        stage("resample", resample)
        stage("filter", small_particles)
    finally:
        if client is not None:
            client.close()


def _labels(path: Path, shape, chunks, spacing=None) -> zarr.Array:
    """A new uint32 zarr array at ``path`` (replacing what a cut-short stage left there)."""
    return zarr.create_array(
        store=str(path),
        shape=tuple(shape),
        chunks=tuple(chunks),
        dtype="uint32",
        fill_value=0,
        overwrite=True,
        attributes={"spacing": spacing} if spacing else {},
    )


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


def finish_outputs(
    out: Path, work: Path, scan: ScanInput, outputs: dict, n_labels: int
) -> tuple[dict[str, int], list[str]]:
    """Move the results into ``out`` (idempotent) and write the viewers' copies of the labels.

    ``instances.ome.zarr`` (``outputs["ome_zarr"]``): an OME-Zarr (NGFF 0.4)
    multiscale label image with the scan's scale and unit, which napari and the NGFF viewers
    open (:func:`particleseg.io.ome_zarr.write_label_ome_zarr`). The TIFF copy is an ImageJ
    label TIFF (:func:`particleseg.io.imagej.write_label_tiff`:
    uint16 below 65,536 particles, else float32) that Fiji opens with the scan's scale, written
    when it takes at most ``outputs["tiff_max_bytes"]``.

    Returns:
        (bytes per file written, warnings about the TIFF copy).
    """
    written, warnings = {}, []
    moves = [("instances.zarr", True)]
    moves += [("border_core.zarr", bool(outputs["border_core"]))]
    moves += [("probabilities.zarr", bool(outputs["probabilities"]))]
    for name, wanted in moves:
        src, dst = work / name, out / name
        if wanted and src.exists():
            if dst.exists():
                shutil.rmtree(dst)
            os.replace(src, dst)
        if wanted and dst.exists():
            written[name] = folder_bytes(dst)
    final = zarr.open_array(str(out / "instances.zarr"), mode="r")
    if outputs["ome_zarr"]:
        path = write_label_ome_zarr(
            out / "instances.ome.zarr", final, scan.spacing, scan.unit, name=scan.name
        )
        written["instances.ome.zarr"] = folder_bytes(path)
    dtype, _ = label_tiff_dtype(n_labels)
    size = final.size * (dtype.itemsize if dtype is not None else 0)
    if size <= float(outputs["tiff_max_bytes"]):
        path, warning = write_label_tiff(
            out / "instances.tif", final, n_labels, scan.spacing, scan.unit
        )
        if path is not None:
            written["instances.tif"] = folder_bytes(path)
        if warning:
            log.warning("%s: %s", scan.path, warning)
            warnings.append(warning)
    return written, warnings

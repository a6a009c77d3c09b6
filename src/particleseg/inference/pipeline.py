"""Segment one scan end to end, out of core and resumable: the stages of predict.py.

Stages, each ending with a marker in ``OUT/.work/`` (a run killed at any moment continues from
there when the same command is run again; the markers of the network stage are per chunk):

1. ``network``: the chunked sliding window (:mod:`particleseg.inference.lightning`) writes the
   border-core map on the network grid, ``border_core.zarr``.
2. ``instances``: :func:`~particleseg.postprocess.border_core_to_instance_chunked` on that grid
   (where the border thickness and the small-core rule were trained and validated).
3. ``resample``: nearest-neighbour back to the scan's grid, block by block.
4. ``filter``: the small-particle filter on the scan's grid, ids renumbered 1..N (it also drops
   the ids that a downsampling made vanish).
5. ``finish``: ``instances.zarr`` (uint32, with the spacing) moved into ``OUT``, a TIFF copy
   when small enough, the optional network-grid maps, then ``summary.json`` last: a folder with
   ``summary.json`` is complete, and is not touched again unless ``overwrite=true``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import resource
import shutil
import time
from pathlib import Path

import numpy as np
import torch
import zarr

from particleseg.inference.chunk_store import touch_json
from particleseg.inference.inputs import ScanInput
from particleseg.inference.lightning import (
    ChunkDataModule,
    ChunkPredictor,
    ChunkWriter,
    chunk_image,
)
from particleseg.inference.model import LoadedModel
from particleseg.inference.plan import ChunkPlan, plan_chunks
from particleseg.inference.windows import WindowSums
from particleseg.io import write_volume
from particleseg.postprocess import (
    border_core_to_instance_chunked,
    filter_small_particles_chunked,
    resample_labels_chunked,
)
from particleseg.transforms.resize import resized_shape, zoom_factors

log = logging.getLogger(__name__)

SUMMARY = "summary.json"
WORK = ".work"
# Zarr chunks of the labels on the scan's grid: thin in Z, so that the TIFF copy (written in
# Z slabs of whole chunks) holds few slices at once; the blocks that write them are larger.
SCAN_CHUNKS = (16, 128, 128)
SCAN_BLOCKS = (128, 128, 128)


def is_global_zero() -> bool:
    """Whether this process is global rank 0, from the launchers' environment.

    Read from the environment because a Trainer knows its rank only once it has launched; the
    processes Lightning starts for DDP (``LOCAL_RANK`` >= 1), torchrun (``RANK``) and SLURM
    (``SLURM_PROCID``) re-run the whole command, and must not touch the output before then.
    """
    for key in ("RANK", "SLURM_PROCID"):
        if key in os.environ:
            return int(os.environ[key]) == 0
    return int(os.environ.get("LOCAL_RANK", 0)) == 0 and int(os.environ.get("NODE_RANK", 0)) == 0


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, streamed."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def peak_rss_bytes() -> dict[str, int]:
    """Peak resident memory of this process (``self``) and of its finished children.

    ``self`` is ``VmHWM`` from ``/proc/self/status`` where there is one (Linux): the peak of this
    program's own memory. ``ru_maxrss`` would do elsewhere, but on Linux it keeps the peak of
    the parent that forked this process before ``exec``, so a small job started by a big one
    would report the big one's peak.
    """
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                own = int(line.split()[1]) * 1024
    except OSError:
        pass
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    return {"self": int(own), "children": int(children)}


def folder_bytes(path: Path) -> int:
    """Bytes of the files under ``path``."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def make_plan(scan: ScanInput, model: LoadedModel, inference: dict) -> tuple[ChunkPlan, tuple]:
    """The zoom to the model's particle size and the chunk plan over the resized scan."""
    zoom = zoom_factors(scan.particle_size_px, model.target_particle_size)
    network_shape = resized_shape(scan.shape, zoom)
    plan = plan_chunks(
        network_shape,
        model.patch_size,
        inference.get("chunk_size", 128),
        overlap=inference.get("overlap", 0.5),
    )
    return plan, zoom


def seconds_per_window(model: LoadedModel, inference: dict, device: torch.device) -> float:
    """Time one forward pass of a window on ``device`` (after one warm-up pass)."""
    sums = WindowSums(model.net, model.patch_size, autocast=inference.get("autocast", False))
    image = torch.zeros(model.patch_size, device=device)
    starts = np.zeros((1, 3), np.int64)
    sums(image, starts)
    t0 = time.perf_counter()
    sums(image, starts)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def check_cost(scan: ScanInput, plan: ChunkPlan, zoom, model, inference, devices, max_hours):
    """Refuse a resize that would take longer than ``max_hours`` (pass force=true to run it).

    Returns:
        The estimate, a dict of network voxels, windows and hours.
    """
    device = next(model.net.parameters()).device
    if torch.cuda.is_available():
        device = torch.device("cuda", torch.cuda.current_device())
        model.net.to(device)
    per_window = seconds_per_window(model, inference, device)
    passes = plan.n_windows * (8 if inference.get("tta") else 1)
    hours = passes * per_window / max(int(devices), 1) / 3600
    ratio = math.prod(plan.network_shape) / math.prod(scan.shape)
    estimate = {
        "network_voxels": math.prod(plan.network_shape),
        "voxels_relative_to_scan": ratio,
        "windows": plan.n_windows,
        "seconds_per_window": per_window,
        "hours": hours,
    }
    if hours > max_hours:
        raise ValueError(
            f"{scan.path}: particles of {scan.particle_size_px[0]:.3g} voxels resized to the "
            f"model's {model.target_particle_size:g} (zoom {tuple(round(z, 3) for z in zoom)}) "
            f"make a network grid of {plan.network_shape} ({ratio:.1f}x the scan's voxels): "
            f"{plan.n_windows} windows, about {_duration(hours * 3600)} on {device} "
            f"(limit max_hours={max_hours}). Check the particle size (a wrong unit makes the "
            "resize huge); pass force=true to run it anyway"
        )
    return estimate


def _duration(seconds: float) -> str:
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:.1f} days"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.1f} min"


def fingerprint(scan: ScanInput, model: LoadedModel, plan: ChunkPlan, settings: dict) -> dict:
    """What a run's result depends on; a resumed run must match it."""
    return {
        "input": str(scan.path.resolve()),
        "shape": list(scan.shape),
        "particle_size_px": list(scan.particle_size_px),
        "model_sha256": file_sha256(model.path),
        "network_shape": list(plan.network_shape),
        "chunk_size": list(plan.chunk_size),
        "settings": settings,
    }


class Stages:
    """Markers of finished stages under ``work`` (each holds the stage's facts as JSON)."""

    def __init__(self, work: Path) -> None:
        self.work = work

    def done(self, name: str) -> dict | None:
        path = self.work / f"stage-{name}.done"
        return json.loads(path.read_text()) if path.exists() else None

    def mark(self, name: str, facts: dict) -> None:
        touch_json(self.work / f"stage-{name}.done", facts)


def prepare_output(out: Path, plan_facts: dict, overwrite: bool, is_rank0: bool) -> str:
    """Decide what to do with ``out``: "complete" (skip), "resume" or "start".

    Raises:
        ValueError: ``out`` holds an unfinished run with other settings, or other files.
    """
    summary = out / SUMMARY
    work = out / WORK
    if summary.exists() and not overwrite:
        return "complete"
    if overwrite:
        if is_rank0 and out.exists():
            for name in (SUMMARY, WORK, "instances.zarr", "instances.tif"):
                path = out / name
                if path.is_dir():
                    shutil.rmtree(path)
                elif path.exists():
                    path.unlink()
            for name in ("border_core.zarr", "probabilities.zarr"):
                shutil.rmtree(out / name, ignore_errors=True)
        return "start"
    plan_path = work / "plan.json"
    if plan_path.exists():
        old = json.loads(plan_path.read_text())
        if old != plan_facts:
            changed = sorted(k for k in plan_facts if old.get(k) != plan_facts[k])
            raise ValueError(
                f"{out}: holds an unfinished run with other settings ({', '.join(changed)} "
                "differ); run the same command to resume it, or pass overwrite=true, or choose "
                "another output folder"
            )
        return "resume"
    if (out / "instances.zarr").exists():
        raise ValueError(
            f"{out}: holds instances.zarr without a summary.json; pass overwrite=true or "
            "choose another output folder"
        )
    return "start"


def predict_scan(
    scan: ScanInput,
    out_dir: str | os.PathLike,
    model: LoadedModel,
    trainer,
    *,
    inference: dict | None = None,
    postprocess: dict | None = None,
    outputs: dict | None = None,
    dask: dict | None = None,
    overwrite: bool = False,
    force: bool = False,
    max_hours: float = 24.0,
    config: dict | None = None,
) -> dict | None:
    """Segment ``scan`` into ``out_dir`` (see the module docstring for the stages).

    Args:
        scan: the resolved scan.
        out_dir: output folder of this scan.
        model: the loaded network (moved to the trainer's device by Lightning).
        trainer: a ``lightning.Trainer`` for the network stage (any accelerator, strategy).
        inference: ``chunk_size``, ``overlap``, ``sigma_scale``, ``tta``, ``autocast``,
            ``batch_size``, ``num_workers``.
        postprocess: ``halo``, ``small_core_distance``, ``small_core_fraction``,
            ``small_core_max_distance``, ``min_relative_size``, ``connectivity``.
        outputs: ``tiff_max_bytes``, ``border_core``, ``probabilities``, ``keep_work``.
        dask: ``address`` (a dask.distributed scheduler, None for local threads),
            ``num_workers``.
        overwrite: replace a complete result (or an unfinished run with other settings).
        force: run even when the estimated time exceeds ``max_hours``.
        max_hours: refuse longer runs unless ``force``.
        config: the run's config, copied into the summary.

    Returns:
        The summary (global rank 0), or None on the other ranks.
    """
    inference = dict(inference or {})
    postprocess = dict(postprocess or {})
    outputs = dict(outputs or {})
    dask = dict(dask or {})
    out = Path(out_dir)
    work = out / WORK
    rank0 = is_global_zero()
    t_start = time.perf_counter()

    plan, zoom = make_plan(scan, model, inference)
    settings = {"inference": inference, "postprocess": postprocess}
    # what the result depends on (the number of DataLoader workers does not change it)
    facts = fingerprint(
        scan,
        model,
        plan,
        {**settings, "inference": {k: v for k, v in inference.items() if k != "num_workers"}},
    )
    state = prepare_output(out, facts, overwrite, rank0)
    if state == "complete":
        log.info("%s: complete result already there (pass overwrite=true to redo it)", out)
        return json.loads((out / SUMMARY).read_text()) if rank0 else None
    stages = Stages(work)
    timings: dict[str, float] = {}
    peaks: dict[str, int] = {"start": peak_rss_bytes()["self"]}

    if stages.done("network") is None:
        cost = None
        if rank0 and not force:
            devices = trainer.num_devices * trainer.num_nodes
            cost = check_cost(scan, plan, zoom, model, inference, devices, max_hours)
        if rank0:
            work.mkdir(parents=True, exist_ok=True)
            if not (work / "plan.json").exists():
                touch_json(work / "plan.json", facts)
            if cost is not None:
                touch_json(work / "cost.json", cost)
        t0 = time.perf_counter()
        datamodule = ChunkDataModule(
            work,
            scan.open,
            plan,
            model.intensity_stats["mean"],
            model.intensity_stats["std"],
            save_probabilities=bool(outputs.get("probabilities")),
            num_workers=inference.get("num_workers", 0),
        )
        module = ChunkPredictor(
            model.net,
            model.patch_size,
            sigma_scale=inference.get("sigma_scale", 0.125),
            tta=bool(inference.get("tta", False)),
            autocast=bool(inference.get("autocast", False)),
            batch_size=inference.get("batch_size", 1),
        )
        writer = ChunkWriter(datamodule, work / "stage-network.done")
        trainer.callbacks.append(writer)
        try:
            trainer.predict(module, datamodule=datamodule, return_predictions=False)
        finally:
            trainer.callbacks.remove(writer)
        timings["network"] = time.perf_counter() - t0
        peaks["network"] = peak_rss_bytes()["self"]
    if not is_global_zero() or trainer.global_rank != 0:
        return None

    network = stages.done("network")
    pp = postprocess
    scheduler, num_workers, client = _dask_scheduler(dask)
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

    work_bytes = max(
        [folder_bytes(work)]
        + [(stages.done(s) or {}).get("work_bytes", 0) for s in ("instances", "resample", "filter")]
    )
    t0 = time.perf_counter()
    written = _finish(out, work, scan, outputs)
    timings["finish"] = time.perf_counter() - t0
    for s in ("instances", "resample", "filter"):
        timings.setdefault(s, (stages.done(s) or {}).get("seconds", 0.0))
    summary = {
        "input": str(scan.path),
        "name": scan.name,
        "shape": list(scan.shape),
        "dtype": scan.dtype,
        "spacing": list(scan.spacing) if scan.spacing else None,
        "unit": scan.unit,
        "particles": (stages.done("filter") or {}).get("particles"),
        "particle_size": {
            "used_px_zyx": list(scan.particle_size_px),
            "source": scan.size_source,
            "estimate": scan.estimate,
        },
        "zoom": list(zoom),
        "network_shape": list(plan.network_shape),
        "model": {
            "path": str(model.path),
            "sha256": facts["model_sha256"],
            "target_particle_size": model.target_particle_size,
            "border_thickness": model.border_thickness,
            "patch_size": list(model.patch_size),
        },
        "windows": {
            "plain_sliding_window": plan.n_windows,
            "forward_passes": network.get("forward_passes"),
            "forward_s": network.get("forward_s"),
            "chunks": plan.n_chunks,
            "chunks_computed_last_run": network.get("chunks_computed_last_run"),
        },
        "timings_s": {**timings, "this_run_total": time.perf_counter() - t_start},
        "peak_rss_bytes": {**peak_rss_bytes(), "after_stage": peaks},
        "disk_bytes": {
            "input": folder_bytes(scan.path),
            "work_peak_measured": work_bytes,
            "outputs": written,
        },
        "settings": settings,
        "config": config,
    }
    touch_json(out / SUMMARY, summary)
    if not outputs.get("keep_work"):
        shutil.rmtree(work, ignore_errors=True)
    return summary


def _blocks(shape) -> tuple[int, int, int]:
    """Blocks of the scan-grid stages: whole chunks, at most :data:`SCAN_BLOCKS`."""
    return tuple(min(b, s) for b, s in zip(SCAN_BLOCKS, shape, strict=True))


def _dask_scheduler(dask: dict):
    address = dask.get("address")
    if not address:
        return "threads", dask.get("num_workers"), None
    from distributed import Client

    client = Client(address)
    return client, None, client


def _finish(out: Path, work: Path, scan: ScanInput, outputs: dict) -> dict[str, int]:
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


__all__ = ["chunk_image", "predict_scan"]

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

import json
import logging
import os
import shutil
import time
from pathlib import Path

from particleseg.inference.checks import (
    check_input_reference,
    check_scan_geometry,
    check_scan_values,
    result_warnings,
    unreadable,
)
from particleseg.inference.chunk_store import touch_json
from particleseg.inference.cost import check_cost, make_plan
from particleseg.inference.cpu_stages import finish_outputs, resolve_postprocess, run_cpu_stages
from particleseg.inference.engines import make_engine
from particleseg.inference.inputs import ScanInput
from particleseg.inference.lightning import ChunkDataModule, ChunkPredictor, ChunkWriter
from particleseg.inference.memory import check_memory
from particleseg.inference.model import LoadedModel
from particleseg.inference.plan import ChunkPlan
from particleseg.inference.reports import write_analysis, write_overlay
from particleseg.inference.run_state import (
    SUMMARY,
    WORK,
    Stages,
    check_same_engine,
    fingerprint,
    folder_bytes,
    is_global_zero,
    peak_rss_bytes,
    prepare_output,
)
from particleseg.inference.settings import resolve_inference, resolve_outputs
from particleseg.inference.windows import WindowSums
from particleseg.io import release_pages
from particleseg.transforms.normalization import Normalization, normalization_for_scan

log = logging.getLogger(__name__)


def _read_json(path: Path):
    """A small JSON file's contents, None when it is not there."""
    return json.loads(path.read_text()) if path.exists() else None


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
        inference: ``chunk_size``, ``overlap``, ``sigma_scale``, ``tta``, ``engine``,
            ``precision``,
            ``batch_size``, ``num_workers``.
        postprocess: ``halo``, ``small_core_distance``, ``small_core_fraction``,
            ``small_core_max_distance``, ``min_relative_size``, ``connectivity``; a missing or
            None value takes the model's tuned threshold, else the built-in default.
        outputs: ``ome_zarr``, ``tiff_max_bytes``, ``border_core``, ``probabilities``,
            ``keep_work``.
        dask: ``address`` (a dask.distributed scheduler, None for local threads),
            ``num_workers``.
        overwrite: replace a complete result (or an unfinished run with other settings).
        force: run even when the estimated time exceeds ``max_hours`` or the estimated peak
            memory the memory available.
        max_hours: refuse longer runs unless ``force``.
        config: the run's config, copied into the summary.

    Returns:
        The summary (global rank 0), or None on the other ranks.
    """
    inference = resolve_inference(inference)
    postprocess = resolve_postprocess(postprocess, model.postprocess)
    outputs = resolve_outputs(outputs)
    dask = dict(dask or {})
    out = Path(out_dir)
    work = out / WORK
    rank0 = is_global_zero()
    t_start = time.perf_counter()

    plan, zoom = make_plan(scan, model, inference)
    normalize = scan_normalization(scan, model)
    settings = {"inference": inference, "postprocess": postprocess}
    # what the result depends on (not the reading workers, nor where OpenVINO caches its model)
    facts = fingerprint(
        scan,
        model,
        plan,
        {
            **settings,
            "inference": {
                k: v for k, v in inference.items() if k not in ("num_workers", "cache_dir")
            },
            "normalization": normalize.to_dict(),
        },
    )
    warnings = check_scan_geometry(scan, plan, model.patch_size)
    state = prepare_output(out, facts, overwrite, rank0)
    if state == "complete":
        log.info("%s: complete result already there (pass overwrite=true to redo it)", out)
        if rank0 and not outputs["keep_work"]:  # left by a kill after the summary
            shutil.rmtree(work, ignore_errors=True)
        return json.loads((out / SUMMARY).read_text()) if rank0 else None
    reference, reference_warnings = scan_reference(scan, model)
    warnings += reference_warnings
    if state == "start":  # a resumed run's input has the fingerprint of the one checked
        _check_values_before_start(scan, out, rank0)
    stages = Stages(work)
    timings: dict[str, float] = {}
    peaks: dict[str, int] = {"start": peak_rss_bytes()["self"]}

    if stages.done("network") is None:
        cost = None
        if rank0 and not force:
            devices = trainer.num_devices * trainer.num_nodes
            cost = check_cost(scan, plan, zoom, model, inference, devices, max_hours)
            cost |= check_memory(
                scan.path, inference, postprocess["halo"], dask, model.patch_size, zoom
            )
        if rank0:
            work.mkdir(parents=True, exist_ok=True)
            if not (work / "plan.json").exists():
                touch_json(work / "plan.json", facts)
            if cost is not None:
                touch_json(work / "cost.json", cost)
        t0 = time.perf_counter()
        run_network_stage(scan, plan, normalize, model, trainer, inference, outputs, work, rank0)
        timings["network"] = time.perf_counter() - t0
        peaks["network"] = peak_rss_bytes()["self"]
    if not is_global_zero() or trainer.global_rank != 0:
        return None

    network = stages.done("network")
    cost_path = work / "cost.json"
    cost = json.loads(cost_path.read_text()) if cost_path.exists() else None
    run_cpu_stages(work, scan, plan, postprocess, dask, stages, timings, peaks)
    work_bytes = max(
        [folder_bytes(work)]
        + [(stages.done(s) or {}).get("work_bytes", 0) for s in ("instances", "resample", "filter")]
    )
    n_particles = (stages.done("filter") or {}).get("particles")
    written, analysis = write_outputs(
        out, work, scan, model, outputs, n_particles, timings, warnings
    )
    for s in ("instances", "resample", "filter"):
        timings.setdefault(s, (stages.done(s) or {}).get("seconds", 0.0))
    warnings += result_warnings(scan, n_particles)
    summary = {
        **scan_section(scan, plan, zoom, normalize, reference),
        "particles": n_particles,
        "warnings": warnings,  # what to check in this result (also logged)
        "size_distribution": analysis,
        "model": model_section(model, facts["model_sha256"]),
        "windows": windows_section(plan, network, _read_json(work / "engine.json"), cost),
        "timings_s": {**timings, "this_run_total": time.perf_counter() - t_start},
        "peak_rss_bytes": {**peak_rss_bytes(), "after_stage": peaks},
        "disk_bytes": {
            "input": folder_bytes(scan.path),
            "work_peak_measured": work_bytes,
            "outputs": written,
        },
        "settings": settings,
        "fingerprint": facts,  # a later run into this folder must match it (run_state)
        "config": config,
    }
    touch_json(out / SUMMARY, summary)
    if not outputs["keep_work"]:
        shutil.rmtree(work, ignore_errors=True)
    return summary


def _check_values_before_start(scan: ScanInput, out: Path, rank0: bool) -> None:
    """Refuse a scan of unusable values (NaN, constant) before any work, leaving nothing."""
    array = scan.open()
    try:
        check_scan_values(array, scan)
    except ValueError:
        if rank0 and out.is_dir() and not any(out.iterdir()):
            out.rmdir()  # made by prepare_output's write check: leave nothing behind
        raise
    finally:
        release_pages(array)  # the streamed pages of a memory-mapped scan


def scan_section(
    scan: ScanInput, plan: ChunkPlan, zoom: tuple, normalize: Normalization, reference: dict
) -> dict:
    """The summary's keys about the scan: geometry, particle size, normalization, resize."""
    return {
        "input": str(scan.path),
        "name": scan.name,
        "shape": list(scan.shape),
        "dtype": scan.dtype,
        "spacing": list(scan.spacing) if scan.spacing else None,
        "unit": scan.unit,
        "particle_size": {
            "used_px_zyx": list(scan.particle_size_px),
            "source": scan.size_source,
            "estimate": scan.estimate,
        },
        "normalization": normalize.to_dict(),
        "input_reference": reference,  # the histogram check against the model's references
        "zoom": list(zoom),
        "network_particle_size": zoom[0] * scan.particle_size_px[0],  # diameter on the grid
        "network_shape": list(plan.network_shape),
    }


def model_section(model: LoadedModel, sha256: str) -> dict:
    """The summary's ``model``: which file, and the sizes it was trained for."""
    return {
        "path": str(model.path),
        "sha256": sha256,
        "target_particle_size": model.target_particle_size,
        "size_band": list(model.size_band) if model.size_band else None,
        "border_thickness": model.border_thickness,
        "patch_size": list(model.patch_size),
    }


def windows_section(plan: ChunkPlan, network: dict, engine: dict | None, cost: dict | None) -> dict:
    """The summary's ``windows``: forward passes against a plain sliding window, the engine."""
    return {
        "plain_sliding_window": plan.n_windows,
        "forward_passes": network.get("forward_passes"),
        "forward_s": network.get("forward_s"),
        "engine": engine,
        "estimate_before_run": cost,
        "chunks": plan.n_chunks,
        "chunks_computed_last_run": network.get("chunks_computed_last_run"),
    }


def run_network_stage(
    scan: ScanInput,
    plan,
    normalize: Normalization,
    model: LoadedModel,
    trainer,
    inference: dict,
    outputs: dict,
    work: Path,
    rank0: bool,
) -> None:
    """The network stage: every chunk of ``plan`` through the model, each written to ``work``.

    Chunks already written (a resumed run) are skipped by the data module; the stage's done
    file is written when the last chunk is.
    """
    datamodule = ChunkDataModule(
        work,
        scan.open,
        plan,
        normalize,
        save_probabilities=bool(outputs["probabilities"]),
        num_workers=inference["num_workers"],
    )
    engine = make_engine(model, inference, trainer.strategy.root_device)
    check_same_engine(work.parent, work, engine.describe())
    if rank0:
        touch_json(work / "engine.json", engine.describe())
    module = ChunkPredictor(
        WindowSums(
            engine.forward,
            model.patch_size,
            sigma_scale=inference["sigma_scale"],
            tta=bool(inference["tta"]),
            autocast=engine.autocast,
            batch_size=inference["batch_size"],
        )
    )
    writer = ChunkWriter(datamodule, work / "stage-network.done")
    trainer.callbacks.append(writer)
    try:
        trainer.predict(module, datamodule=datamodule, return_predictions=False)
    finally:
        trainer.callbacks.remove(writer)


def write_outputs(
    out: Path,
    work: Path,
    scan: ScanInput,
    model: LoadedModel,
    outputs: dict,
    n_particles: int | None,
    timings: dict[str, float],
    warnings: list[str],
) -> tuple[dict[str, int], dict]:
    """The labels into ``out`` and the files made from them: viewers' copies, overlay, analysis.

    Adds each step's seconds to ``timings``, and the TIFF copy's and the analysis's warnings
    to ``warnings``.

    Returns:
        (bytes per file written, the size distribution of the analysis or {}).
    """
    t0 = time.perf_counter()
    written, tiff_warnings = finish_outputs(out, work, scan, outputs, n_particles or 0)
    warnings += tiff_warnings
    timings["finish"] = time.perf_counter() - t0
    if outputs["overlay"]:
        t0 = time.perf_counter()
        written["overlay.png"] = write_overlay(out, scan, n_particles).stat().st_size
        timings["overlay"] = time.perf_counter() - t0
    analysis = {}
    if outputs["analysis"]:
        t0 = time.perf_counter()
        shown = {"scan": scan.name, "particles": n_particles, "model": model.path.name}
        paths, analysis = write_analysis(out, scan, shown, warnings)
        written.update({p.name: p.stat().st_size for p in paths.values()})
        timings["analysis"] = time.perf_counter() - t0
    return written, analysis


def scan_normalization(scan: ScanInput, model: LoadedModel) -> Normalization:
    """The model's intensity normalization fitted to ``scan`` (a bounded sample of its voxels).

    Raises:
        ValueError: naming the scan's file, when its grey values cannot be normalized (constant,
            all NaN, too few voxels).
    """
    try:
        array = scan.open()
        try:
            return normalization_for_scan(array, model.normalization)
        finally:
            release_pages(array)
    except ValueError as err:
        raise ValueError(f"{scan.path}: {err}") from err
    except Exception as err:  # noqa: BLE001 - codecs and readers raise their own types
        raise ValueError(f"{scan.path}: {unreadable(err)}") from err


def scan_reference(scan: ScanInput, model: LoadedModel) -> tuple[dict, list[str]]:
    """The scan's histogram against the model's reference scans (:func:`check_input_reference`).

    Raises:
        ValueError: naming the scan's file, when its sampled voxels cannot be read.
    """
    if not model.input_reference:
        return {"available": False}, []
    try:
        array = scan.open()
        try:
            return check_input_reference(array, scan, model.normalization, model.input_reference)
        finally:
            release_pages(array)
    except ValueError as err:
        raise ValueError(f"{scan.path}: {err}") from err
    except Exception as err:  # noqa: BLE001 - codecs and readers raise their own types
        raise ValueError(f"{scan.path}: {unreadable(err)}") from err


__all__ = ["predict_scan", "scan_normalization", "scan_reference"]

"""The resize a scan needs, its chunk plan, and what running it would cost."""

from __future__ import annotations

import math
import time

import numpy as np
import torch

from particleseg.inference.inputs import ScanInput
from particleseg.inference.model import LoadedModel
from particleseg.inference.plan import ChunkPlan, plan_chunks
from particleseg.inference.settings import resolve_inference
from particleseg.inference.size_band import band_zoom
from particleseg.inference.windows import WindowSums
from particleseg.transforms.resize import resized_shape


def make_plan(scan: ScanInput, model: LoadedModel, inference: dict) -> tuple[ChunkPlan, tuple]:
    """The zoom into the model's size band (``inference.resize``) and the chunk plan."""
    inference = resolve_inference(inference)
    zoom = band_zoom(
        scan.particle_size_px,
        model.target_particle_size,
        model.size_band,
        inference["resize"],
    )
    network_shape = resized_shape(scan.shape, zoom)
    plan = plan_chunks(
        network_shape,
        model.patch_size,
        inference["chunk_size"],
        overlap=inference["overlap"],
    )
    return plan, zoom


def seconds_per_window(model: LoadedModel, inference: dict, device: torch.device) -> float:
    """Time one forward pass of a window on ``device`` (after one warm-up pass)."""
    from particleseg.inference.engines import make_engine

    engine = make_engine(model, inference)
    sums = WindowSums(engine.forward, model.patch_size, autocast=engine.autocast)
    image = torch.zeros(model.patch_size, device=device)
    starts = np.zeros((1, 3), np.int64)
    sums(image, starts)
    t0 = time.perf_counter()
    sums(image, starts)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def estimate_cost(
    scan: ScanInput, plan: ChunkPlan, model, inference, devices, per_window: float | None = None
) -> dict:
    """The network stage's cost: network voxels, windows, seconds per window, hours.

    ``per_window`` (seconds) is measured with one forward pass when not given.
    """
    device = next(model.net.parameters()).device
    if torch.cuda.is_available():
        device = torch.device("cuda", torch.cuda.current_device())
        model.net.to(device)
    if per_window is None:
        per_window = seconds_per_window(model, inference, device)
    passes = plan.n_windows * (8 if resolve_inference(inference)["tta"] else 1)
    hours = passes * per_window / max(int(devices), 1) / 3600
    ratio = math.prod(plan.network_shape) / math.prod(scan.shape)
    estimate = {
        "network_voxels": math.prod(plan.network_shape),
        "voxels_relative_to_scan": ratio,
        "windows": plan.n_windows,
        "seconds_per_window": per_window,
        "hours": hours,
        "device": str(device),
    }
    return estimate


def check_cost(scan: ScanInput, plan: ChunkPlan, zoom, model, inference, devices, max_hours):
    """Refuse a resize that would take longer than ``max_hours`` (pass force=true to run it).

    Returns:
        The estimate (:func:`estimate_cost`).
    """
    estimate = estimate_cost(scan, plan, model, inference, devices)
    hours, ratio, device = (
        estimate["hours"],
        estimate["voxels_relative_to_scan"],
        estimate["device"],
    )
    if hours > max_hours:
        raise ValueError(
            f"{scan.path}: particles of {scan.particle_size_px[0]:.3g} voxels resized to the "
            f"model's {model.target_particle_size:g} (zoom {tuple(round(z, 3) for z in zoom)}) "
            f"make a network grid of {plan.network_shape} ({ratio:.1f}x the scan's voxels): "
            f"{plan.n_windows} windows, about {_duration(hours * 3600)} on {device} "
            f"(limit max_hours={max_hours}). Check the particle size (a wrong unit makes the "
            "resize huge); pass force=true to run it anyway"
        )
    return {k: v for k, v in estimate.items() if k != "device"}


def _duration(seconds: float) -> str:
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:.1f} days"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.1f} min"


def dry_run_rows(
    scans: list[ScanInput], model, inference: dict, devices: int, halo: int, workers=None
) -> list[dict]:
    """Per scan, what predict would do: size, zoom, network grid, windows, hours, peak memory.

    One forward pass is timed for all of them. A ``particle_size=model`` scan without a first
    guess has no size before the model measures it: its row says so. ``halo`` and ``workers``
    (dask threads, None: the core count) enter the peak memory estimate
    (:func:`particleseg.inference.memory.estimate_peak`).
    """
    from particleseg.inference.memory import estimate_peak
    from particleseg.inference.run_state import current_rss_bytes

    rows, per_window = [], None
    for scan in scans:
        row = {"name": scan.name, "shape": list(scan.shape), "source": scan.size_source}
        if scan.particle_size_px is None:
            rows.append(
                {**row, "hours": None, "note": "the model measures the particle size first"}
            )
            continue
        plan, zoom = make_plan(scan, model, inference)
        cost = estimate_cost(scan, plan, model, inference, devices, per_window)
        per_window = cost["seconds_per_window"]
        rows.append(
            {
                **row,
                "size_px": max(scan.particle_size_px),
                "zoom": max(zoom),
                "network_shape": list(plan.network_shape),
                "windows": plan.n_windows,
                "hours": cost["hours"],
                "peak_memory_bytes": estimate_peak(
                    current_rss_bytes(), inference, halo, workers, model.patch_size, zoom
                )[0],
            }
        )
    return rows

"""Accuracy and speed of the particle-size estimates on labelled datasets, side by side.

For every sample of each dataset folder: the reference mean particle diameter in voxels
(``particle_size / spacing`` from ``dataset.json``, i.e. the mean equivalent-sphere diameter of
the labels), the estimate from the image alone (``particle_size=auto``), and with ``--model`` the
model's own measurement (``particle_size=model``, starting from the image's estimate, or from the
model's size where that failed), each with its ratio to the reference and the seconds taken; then
per split and method the median and largest absolute relative error. Images without a reference
(``--image``) only get the estimates.

Usage:
    python benchmarks/bench_particle_size.py [DATASET_DIR ...] [--image PATH ...]
        [--model CKPT] [--max-voxels 32000000] [--splits train,id_test,ood_test]

Default (neither datasets nor images given): ``data/synth``. Targets: the image's estimate within
+-25% on train and id_test; the model's within 10% median relative error on every split.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from pathlib import Path

import numpy as np

from particleseg.analysis import estimate_particle_size
from particleseg.io import load_dataset, read_volume

ROOT = Path(__file__).resolve().parents[1]


def _classical(image, spacing, max_voxels):
    t = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            est = estimate_particle_size(image, spacing=spacing, max_voxels=max_voxels)
        except ValueError as err:
            return None, time.perf_counter() - t, str(err)
    note = "; ".join(str(w.message) for w in caught)
    return est, time.perf_counter() - t, note


def _with_model(model, image, spacing, first_guess):
    from particleseg.inference.cpu_stages import resolve_postprocess
    from particleseg.inference.engines import make_engine
    from particleseg.inference.settings import INFERENCE_DEFAULTS  # predict's
    from particleseg.inference.size_estimate import estimate_size_with_model
    from particleseg.transforms.normalization import normalization_for_scan

    engine = make_engine(model, INFERENCE_DEFAULTS)
    t = time.perf_counter()
    try:
        est = estimate_size_with_model(
            image,
            model,
            normalization_for_scan(image, model.normalization),
            spacing,
            first_guess,
            postprocess=resolve_postprocess(None, model.postprocess),
            overlap=float(INFERENCE_DEFAULTS["overlap"]),
            autocast=engine.autocast,
            net=engine.forward,
        )
    except ValueError as err:
        return None, time.perf_counter() - t, str(err)
    return est, time.perf_counter() - t, ""


def _estimates(image, spacing, max_voxels, model):
    """{method: (diameter px or None, seconds, detail)} for the image and, with a model, it."""
    est, dt, note = _classical(image, spacing, max_voxels)
    out = {"image": (None if est is None else est.diameter_px, dt, note or "")}
    if est is not None:
        sigma = est.method.split("smoothing ")[-1].split(" ")[0]
        out["image"] = (est.diameter_px, dt, f"{est.n_particles_used} particles, sigma {sigma}")
    if model is not None:
        first = None if est is None else est.diameter_px
        m, dt, note = _with_model(model, image, spacing, first)
        detail = note
        if m is not None:
            steps = " -> ".join(f"{p.measured_px:.1f}" for p in m.passes)
            settled = "" if m.converged else ", not settled"
            detail = f"{m.first_guess_px:.1f} -> {steps}{settled}, {m.passes[-1].n_particles} p."
        out["model"] = (None if m is None else m.diameter_px, dt, detail)
    return out


def bench_dataset(folder: Path, splits: set[str] | None, max_voxels: int, model) -> None:
    dataset = load_dataset(folder)
    methods = ["image"] + (["model"] if model is not None else [])
    print(f"\n## {dataset.name} ({folder})\n")
    print("| sample | split | reference px | method | estimate px | ratio | s | detail |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    errors: dict[tuple[str, str], list[float]] = {}
    seconds: dict[tuple[str, str], list[float]] = {}
    for entry in dataset.samples:
        if splits and entry.split not in splits:
            continue
        spacing = entry.metadata.spacing
        reference = float(np.min(entry.metadata.particle_size_voxels()))  # finest axis
        found = _estimates(read_volume(entry.image), spacing, max_voxels, model)
        for method in methods:
            value, dt, detail = found[method]
            key = (entry.split, method)
            seconds.setdefault(key, []).append(dt)
            ratio = value / reference if value else float("inf")
            errors.setdefault(key, []).append(abs(ratio - 1))
            shown = f"{value:.2f} | {ratio:.3f}" if value else "error | "
            print(
                f"| {entry.name} | {entry.split} | {reference:.2f} | {method} | {shown} | "
                f"{dt:.1f} | {detail} |",
                flush=True,
            )
    print(
        "\n| split | method | n | median abs rel error | max abs rel error | within 10% | "
        "within 25% | median s |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for (split, method), errs in errors.items():
        within = [sum(e <= t for e in errs) for t in (0.10, 0.25)]
        print(
            f"| {split} | {method} | {len(errs)} | {statistics.median(errs):.3f} | "
            f"{max(errs):.3f} | {within[0]}/{len(errs)} | {within[1]}/{len(errs)} | "
            f"{statistics.median(seconds[(split, method)]):.1f} |"
        )


def bench_image(path: Path, max_voxels: int, model) -> None:
    image = read_volume(path)
    print(f"\n## {path}\n\nshape {tuple(image.shape)}, dtype {image.dtype}")
    for method, (value, dt, detail) in _estimates(image, None, max_voxels, model).items():
        shown = f"{value:.2f} voxels" if value else "no estimate"
        print(f"- {method}: {shown}, {dt:.1f} s ({detail})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("datasets", nargs="*", type=Path, default=[])
    parser.add_argument("--image", action="append", type=Path, default=[])
    parser.add_argument("--model", help="a model file: also particle_size=model")
    parser.add_argument("--max-voxels", type=int, default=32_000_000)
    parser.add_argument("--splits", default="", help="comma-separated; default all")
    args = parser.parse_args()
    splits = {s for s in args.splits.split(",") if s} or None
    if not args.datasets and not args.image:
        args.datasets = [ROOT / "data" / "synth"]
    model = None
    if args.model:
        from particleseg.inference.model import load_checkpoint, resolve_model_path

        model = load_checkpoint(resolve_model_path(args.model))
    for folder in args.datasets:
        bench_dataset(folder, splits, args.max_voxels, model)
    for path in args.image:
        bench_image(path, args.max_voxels, model)


if __name__ == "__main__":
    main()

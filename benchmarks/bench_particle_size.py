"""Accuracy and speed of ``estimate_particle_size`` (``particle_size=auto``) on labelled datasets.

For every sample of each dataset folder: the reference mean particle diameter in voxels
(``particle_size / spacing`` from ``dataset.json``, i.e. the mean equivalent-sphere diameter of
the labels), the estimate from the image alone, their ratio and the seconds taken; then the
median and largest absolute relative error per split. Images without a reference (``--image``)
only get the estimate.

Usage:
    python benchmarks/bench_particle_size.py [DATASET_DIR ...] [--image PATH ...]
        [--max-voxels 32000000] [--splits train,id_test,ood_test]

Defaults: ``data/synth``. Target: within +-25% on train and id_test.
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


def _estimate(image, spacing, max_voxels):
    t = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            est = estimate_particle_size(image, spacing=spacing, max_voxels=max_voxels)
        except ValueError as err:
            return None, time.perf_counter() - t, str(err)
    note = "; ".join(str(w.message) for w in caught)
    return est, time.perf_counter() - t, note


def bench_dataset(folder: Path, splits: set[str] | None, max_voxels: int) -> None:
    dataset = load_dataset(folder)
    print(f"\n## {dataset.name} ({folder})\n")
    print("| sample | split | reference px | estimate px | ratio | particles | sigma | s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    errors: dict[str, list[float]] = {}
    seconds: dict[str, list[float]] = {}
    for entry in dataset.samples:
        if splits and entry.split not in splits:
            continue
        spacing = entry.metadata.spacing
        reference = float(np.min(entry.metadata.particle_size_voxels()))  # finest axis
        est, dt, note = _estimate(read_volume(entry.image), spacing, max_voxels)
        seconds.setdefault(entry.split, []).append(dt)
        if est is None:
            errors.setdefault(entry.split, []).append(float("inf"))
            print(f"| {entry.name} | {entry.split} | {reference:.2f} | error: {note} | | | | |")
            continue
        ratio = est.diameter_px / reference
        errors.setdefault(entry.split, []).append(abs(ratio - 1))
        sigma = est.method.split("smoothing ")[-1].split(" ")[0]
        print(
            f"| {entry.name} | {entry.split} | {reference:.2f} | {est.diameter_px:.2f} | "
            f"{ratio:.3f} | {est.n_particles_used} | {sigma} | {dt:.1f} |",
            flush=True,
        )
    print("\n| split | n | median abs rel error | max abs rel error | within 25% | median s |")
    print("| --- | --- | --- | --- | --- | --- |")
    for split, errs in errors.items():
        within = sum(e <= 0.25 for e in errs)
        print(
            f"| {split} | {len(errs)} | {statistics.median(errs):.3f} | {max(errs):.3f} | "
            f"{within}/{len(errs)} | {statistics.median(seconds[split]):.1f} |"
        )


def bench_image(path: Path, max_voxels: int) -> None:
    image = read_volume(path)
    est, dt, note = _estimate(image, None, max_voxels)
    print(f"\n## {path}\n\nshape {tuple(image.shape)}, dtype {image.dtype}, {dt:.1f} s")
    if est is None:
        print(f"no estimate: {note}")
    else:
        print(est.to_dict())
        if note:
            print(f"warning: {note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("datasets", nargs="*", type=Path, default=[ROOT / "data" / "synth"])
    parser.add_argument("--image", action="append", type=Path, default=[])
    parser.add_argument("--max-voxels", type=int, default=32_000_000)
    parser.add_argument("--splits", default="", help="comma-separated; default all")
    args = parser.parse_args()
    splits = {s for s in args.splits.split(",") if s} or None
    for folder in args.datasets:
        bench_dataset(folder, splits, args.max_voxels)
    for path in args.image:
        bench_image(path, args.max_voxels)


if __name__ == "__main__":
    main()

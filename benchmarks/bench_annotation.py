"""Speed of the annotation tools (paper 3.1).

Prints:
- split_particle on two touching particles of 60^3 each (balls of diameter 60 overlapping by
  12 voxels, plus other particles around them in a 96 x 96 x 256 volume): seconds (median of 3),
  IoU of both parts; target < 2 s;
- the scribble classifier on a 128^3 synthetic CT scan (particleseg.synth, fast mode) with
  scribbles on < 1% of the voxels: feature + training seconds, prediction seconds (one block and
  blocks of 64^3), voxels per second, Dice of the particle class, peak RSS.

Usage: python benchmarks/bench_annotation.py [--trees 50] [--n-jobs 1] [--skip-scribbles]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time

import numpy as np
from scipy import ndimage as ndi

from particleseg.annotation import (
    predict_semantic,
    split_particle,
    train_scribble_classifier,
)


def balls(shape, centres, radius):
    labels = np.zeros(shape, np.uint32)
    grid = np.ogrid[tuple(slice(0, s) for s in shape)]
    for i, c in enumerate(centres, start=1):
        labels[sum((g - ci) ** 2 for g, ci in zip(grid, c, strict=True)) <= radius**2] = i
    return labels


def bench_split() -> None:
    r = 30
    shape = (96, 96, 256)
    ca, cb = (48, 48, 40), (48, 48, 88)  # 48 apart: the balls overlap by 12 voxels
    labels = balls(shape, [ca, cb, (48, 48, 160), (48, 48, 224)], r)
    pair = np.isin(labels, [1, 2])
    labels[pair] = 1  # merged
    contact = (ca[2] + cb[2]) / 2
    x = np.arange(shape[2])[None, None, :]
    truth_a, truth_b = pair & (x < contact), pair & (x >= contact)  # split at the mid-plane
    border = [(48, 48 - r, contact), (48, 48 + r, contact)]
    times = []
    for _ in range(3):
        t = time.perf_counter()
        out = split_particle(labels, 1, [ca, cb], border)
        times.append(time.perf_counter() - t)
    new = int(labels.max()) + 1

    def iou(a, b):
        return (a & b).sum() / (a | b).sum()

    print(
        f"split_particle, two touching 60^3 particles ({int(pair.sum()):,} voxels, volume "
        f"{shape}): {statistics.median(times):.2f} s (median of 3; target < 2 s); IoU "
        f"{iou(out == 1, truth_a):.3f} / {iou(out == new, truth_b):.3f}"
    )


def bench_scribbles(trees: int, n_jobs: int | None) -> None:
    from particleseg.synth import make_sample
    from particleseg.synth.sample import CT, SCENE

    shape = (128, 128, 128)
    image, labels, _ = make_sample(shape, dict(SCENE, size_median_px=20), CT, "fast", 1)
    truth = labels > 0
    fg = ndi.binary_erosion(truth)
    band = ~truth & (ndi.distance_transform_edt(~truth) <= 3)
    scribbles = np.zeros(shape, np.uint8)
    rows = np.zeros(shape, bool)
    rows[np.arange(8, 128, 16)[:, None], ::4, :] = True
    scribbles[rows & fg] = 1
    scribbles[rows & band] = 2
    rows[:] = False
    rows[np.arange(8, 128, 16)[:, None], ::16, :] = True
    scribbles[rows & ~truth & (scribbles == 0)] = 2
    print(
        f"scribble classifier on a {shape} synthetic CT scan, {(scribbles > 0).mean():.2%} of "
        f"the voxels scribbled ({int((scribbles > 0).sum()):,}), {trees} trees, "
        f"n_jobs={n_jobs}, sigmas 1, 2, 4, 8"
    )
    t = time.perf_counter()
    model = train_scribble_classifier(image, scribbles, n_estimators=trees, n_jobs=n_jobs)
    t_train = time.perf_counter() - t
    print(f"  features + training: {t_train:.1f} s (includes numba's first compile, if any)")
    for block in (shape, (64, 64, 64)):
        t = time.perf_counter()
        semantic = predict_semantic(model, image, block_shape=block)
        seconds = time.perf_counter() - t
        pred = semantic == 1
        dice = 2 * (pred & truth).sum() / (pred.sum() + truth.sum())
        print(
            f"  prediction, blocks {block}: {seconds:.1f} s "
            f"({image.size / seconds / 1e6:.2f} M voxels/s), Dice {dice:.3f}"
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  peak RSS {peak:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trees", type=int, default=50)
    parser.add_argument("--n-jobs", type=int, default=None)
    parser.add_argument("--skip-scribbles", action="store_true")
    args = parser.parse_args()
    bench_split()
    if not args.skip_scribbles:
        bench_scribbles(args.trees, args.n_jobs)


if __name__ == "__main__":
    main()

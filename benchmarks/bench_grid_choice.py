"""Where to turn border-core into instances: on the network's grid or back on the scan's grid.

predict.py stores the border-core map on the network grid and resamples the *instances* back
(nearest). The alternative resamples the *probabilities* back per chunk (trilinear), takes the
argmax on the scan grid and labels there. This script runs both on the same probabilities of
labelled synthetic scans, for particles smaller than the model's size (the network grid is finer
than the scan) and larger (coarser), and prints the instance metrics and the voxels each choice
stores per scan voxel (border-core map: 1 byte per voxel of its grid).

Usage:
    python benchmarks/bench_grid_choice.py [--model outputs/train/cpu_small/checkpoints/best.ckpt]
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch

from particleseg.inference.model import load_checkpoint
from particleseg.inference.sliding_window import predict_probabilities
from particleseg.metrics import evaluate_instances
from particleseg.postprocess.resample import nearest_source_index
from particleseg.synth.dataset import make_sample, mean_equivalent_diameter
from particleseg.targets import border_core_to_instance, filter_small_particles
from particleseg.transforms.normalization import normalization_for_scan
from particleseg.transforms.resize import resize_image, resized_shape, zoom_factors

ROOT = Path(__file__).resolve().parents[1]
CT = {"photons": 800, "beam_hardening": 0.05, "ring_strength": 0.002, "detector_blur": 0.7}
CASES = [  # (scan shape, median particle diameter in voxels)
    ((96, 96, 96), 12),
    ((128, 128, 128), 18),
    ((192, 192, 192), 40),
]


def scores(pred, ref):
    s = evaluate_instances(pred, ref)
    return f"{s['f1_instance']:.3f} | {s['merger_ratio']:.3f} | {s['splitter_ratio']:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--model", type=Path, default=ROOT / "outputs/train/cpu_small/checkpoints/best.ckpt"
    )
    args = parser.parse_args()
    model = load_checkpoint(args.model)
    print(
        "| scan | particle px | network / scan voxels | network grid: F1_inst | Merger | "
        "Splitter | scan grid: F1_inst | Merger | Splitter | s (net, scan) |"
    )
    print("| --- " * 10 + "|")
    for seed, (shape, size) in enumerate(CASES):
        scene = {
            "size_median_px": size,
            "size_sigma": 0.3,
            "size_range_px": [4, 3 * size],
            "packing": 0.3,
            "touching_fraction": 0.1,
        }
        image, labels, _ = make_sample(shape, scene, CT, "full", seed)
        size_px = mean_equivalent_diameter(labels)
        net_shape = resized_shape(shape, zoom_factors(size_px, model.target_particle_size))
        x = normalization_for_scan(image, model.normalization)(resize_image(image, net_shape))
        probs = predict_probabilities(
            model.net, torch.from_numpy(x)[None, None], model.patch_size, autocast=True
        )[0]
        t0 = time.perf_counter()
        net = border_core_to_instance(probs.argmax(0).numpy().astype(np.uint8))
        index = [nearest_source_index(n, s) for n, s in zip(net_shape, shape, strict=True)]
        a = filter_small_particles(net[np.ix_(*index)])
        t_a = time.perf_counter() - t0
        t0 = time.perf_counter()
        back = np.stack([resize_image(p, shape) for p in probs.numpy()])
        b = filter_small_particles(border_core_to_instance(back.argmax(0).astype(np.uint8)))
        t_b = time.perf_counter() - t0
        ratio = math.prod(net_shape) / math.prod(shape)
        print(
            f"| {'x'.join(map(str, shape))} | {size_px:.1f} | {ratio:.2f} | {scores(a, labels)} "
            f"| {scores(b, labels)} | {t_a:.1f}, {t_b:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()

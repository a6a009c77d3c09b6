"""Seconds per synthetic volume (scene + CT), per mode, at 128^3 and 256^3.

Usage: python benchmarks/bench_synth.py [--repeat 2]
Target: 128^3 with full CT physics in at most 15 s on 2 cores.
"""

from __future__ import annotations

import argparse
import statistics
import time

from particleseg.synth.dataset import make_sample

# train-like settings of conf/synth/default.yaml, with fixed values
SCENE = {"size_median_px": 14, "size_range_px": [3, 60], "packing": 0.2, "touching_fraction": 0.05}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    make_sample((16, 32, 32), SCENE, {}, "full", 0)  # compile the numba kernels
    make_sample((16, 32, 32), SCENE, {}, "fast", 0)
    print("| size | mode | scene s | CT s | total s | particles |")
    print("| --- | --- | --- | --- | --- | --- |")
    for size in (128, 256):
        for mode in ("full", "fast"):
            rows = []
            for seed in range(args.repeat):
                t = time.perf_counter()
                _, labels, info = make_sample((size,) * 3, SCENE, {}, mode, seed)
                rows.append(
                    (
                        info["seconds_scene"],
                        info["seconds_ct"],
                        time.perf_counter() - t,
                        int(labels.max()),
                    )
                )
            med = [statistics.median(r[i] for r in rows) for i in range(4)]
            print(
                f"| {size}^3 | {mode} | {med[0]:.1f} | {med[1]:.1f} | {med[2]:.1f} | "
                f"{int(med[3])} |",
                flush=True,
            )


if __name__ == "__main__":
    main()

"""Seconds per volume of the two CT simulators (``particleseg.synth.ct``) at 128^3 and 256^3.

The scene is a resin cylinder (0.005 / voxel) holding packed ellipsoids of mineral-like (0.009 to
0.03) and a few metal-like (0.1) attenuations. A first small call compiles the numba kernels (or
loads them from the on-disk cache) so that compile time is not counted; each case is then timed
``--repeat`` times and the best and median are printed, with the peak RSS of the process.

Usage: python benchmarks/bench_synth_ct.py [--sizes 128 256] [--repeat 3]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time

import numpy as np

from particleseg.synth import packed_ellipsoids
from particleseg.synth.ct import simulate_ct, simulate_ct_fast


def scene(n: int, seed: int = 0) -> np.ndarray:
    """(n, n, n) float32 attenuation: particles in a resin cylinder along Z, air outside."""
    labels = packed_ellipsoids(
        (n, n, n), int(2500 * (n / 256) ** 3), (n / 32, n / 13), seed=seed, min_gap_factor=1.05
    )
    rng = np.random.default_rng(seed)
    values = rng.choice(
        [0.009, 0.012, 0.02, 0.03, 0.1], size=int(labels.max()) + 1, p=[0.25, 0.25, 0.25, 0.2, 0.05]
    ).astype(np.float32)
    values[0] = 0.005
    mu = values[labels]
    y, x = np.mgrid[:n, :n] - (n - 1) / 2
    mu[:, np.hypot(y, x) > 0.45 * n] = 0
    return mu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    warm = scene(32)
    simulate_ct(warm, rng=0)
    simulate_ct_fast(warm, rng=0)
    print(f"{'mode':<6} {'size':>6} {'best s':>8} {'median s':>9} {'peak RSS GB':>12}")
    for n in args.sizes:
        mu = scene(n)
        for name, simulate in (("full", simulate_ct), ("fast", simulate_ct_fast)):
            times = []
            for seed in range(args.repeat):
                start = time.perf_counter()
                simulate(mu, rng=seed)
                times.append(time.perf_counter() - start)
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
            print(
                f"{name:<6} {n:>5}^3 {min(times):>8.2f} {statistics.median(times):>9.2f}"
                f" {rss:>12.2f}"
            )


if __name__ == "__main__":
    main()

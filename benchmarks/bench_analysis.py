"""Per-particle properties (particleseg.analysis) on a generated packing: time, rate, peak memory.

Generates from ``--seed`` a label volume of random rotated ellipsoids (diameters 15-23 voxels,
one per cell of a jittered grid, some cells left empty, neighbours may touch; ``--size`` 512
gives about 10,000 particles) and a matching uint16 image (resin 1000, particles 2500-3500,
Gaussian noise 100), saves both (and their ``--small`` corner) as zarr v3 (64^3 chunks) in a
temporary folder, then runs in fresh child processes (so peaks do not mix):

* ``chunked``: ``particle_properties_chunked`` on the zarr arrays of ``--size`` (all columns,
  histogram range from the image, default scheduler = 2 worker processes on 2 cores);
* ``memory`` and ``chunked-small``: the in-memory ``particle_properties`` and the chunked path on
  the ``--small`` corner of the same volume, and checks that their tables agree.

Prints per run: wall seconds, CPU seconds (the child and its workers), particles, particles/s,
and peak RSS (VmHWM of the child; for worker processes, the largest worker's peak as well), plus
the load average, since on a shared machine the wall time depends on what else runs.

Usage: python benchmarks/bench_analysis.py [--size 512] [--small 256] [--block 128] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import zarr

CHILD = r"""
import json, resource, sys, time
import numpy as np, zarr
mode, folder, size, block = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])

def cpu_s():
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime

def vmhwm_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")

def main():
    import logging
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="    %(message)s")
    labels = zarr.open_array(folder + f"/labels{size}.zarr", mode="r")
    image = zarr.open_array(folder + f"/image{size}.zarr", mode="r")
    if mode == "memory":
        from particleseg.analysis import particle_properties
        lab, img = labels[:], image[:]
        t, cpu = time.perf_counter(), cpu_s()
        table = particle_properties(lab, img)
    else:
        from particleseg.analysis import particle_properties_chunked
        t, cpu = time.perf_counter(), cpu_s()
        table = particle_properties_chunked(labels, image, block_shape=(block,) * 3)
    seconds, cpu = time.perf_counter() - t, cpu_s() - cpu
    np.savez(folder + f"/{mode}{size}.npz", **table)
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "cpu_s": cpu, "n": int(len(table["id"])),
                      "peak_rss_mb": vmhwm_mb(), "worker_peak_rss_mb": workers}))

if __name__ == "__main__":
    main()
"""


def random_rotations(n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, 3, 3) uniformly random rotation matrices (QR of Gaussian matrices)."""
    q, r = np.linalg.qr(rng.normal(size=(n, 3, 3)))
    q = q * np.sign(np.diagonal(r, axis1=1, axis2=2))[:, None, :]
    det = np.linalg.det(q)
    q[:, :, 0] *= det[:, None]
    return q


def make_packing(size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels (uint32) and image (uint16) of a jittered grid of random ellipsoids."""
    rng = np.random.default_rng(seed)
    cells = max(1, round(size / 23.3))
    pitch = size / cells
    grid = np.stack(np.meshgrid(*[np.arange(cells)] * 3, indexing="ij"), -1).reshape(-1, 3)
    grid = grid[rng.random(len(grid)) < 0.94]
    centres = (grid + 0.5) * pitch + rng.uniform(-2.0, 2.0, size=grid.shape)
    semi = rng.uniform(7.5, 11.5, size=grid.shape)
    rot = random_rotations(len(grid), rng)
    labels = np.zeros((size,) * 3, np.uint32)
    for i in range(len(grid)):
        c, a, q = centres[i], semi[i], rot[i]
        reach = a.max()
        lo = np.maximum(np.floor(c - reach).astype(int), 0)
        hi = np.minimum(np.ceil(c + reach).astype(int) + 1, size)
        zz, yy, xx = np.meshgrid(*[np.arange(lo[k], hi[k]) - c[k] for k in range(3)], indexing="ij")
        local = np.stack([zz, yy, xx], -1) @ q  # coordinates in the ellipsoid's frame
        inside = ((local / a) ** 2).sum(-1) <= 1.0
        view = labels[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
        view[inside] = i + 1
    level = np.concatenate([[1000.0], rng.uniform(2500, 3500, len(grid))])
    image = np.empty(labels.shape, np.uint16)
    for z in range(0, size, 32):
        slab = level[labels[z : z + 32]] + rng.normal(0.0, 100.0, labels[z : z + 32].shape)
        image[z : z + 32] = np.clip(slab, 0, 65535).astype(np.uint16)
    return labels, image


def child(mode: str, folder: Path, size: int, block: int) -> dict:
    cmd = [sys.executable, "-c", CHILD, mode, str(folder), str(size), str(block)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{mode} child failed:\n{done.stderr}")
    for line in done.stderr.splitlines():
        if line.startswith("    "):  # the chunked path's per-pass log (cumulative seconds)
            print(line)
    return json.loads(done.stdout.strip().splitlines()[-1])


def report(name: str, size: int, result: dict) -> None:
    rate = result["n"] / result["seconds"]
    extra = ""
    if result["worker_peak_rss_mb"] > 0:
        extra = f", largest worker peak {result['worker_peak_rss_mb']:.0f} MB"
    print(
        f"{name:8s} {size}^3: {result['seconds']:5.1f} s wall ({result['cpu_s']:5.1f} s CPU), "
        f"{result['n']} particles, {rate:4.0f} particles/s, "
        f"peak RSS {result['peak_rss_mb']:.0f} MB{extra}",
        flush=True,
    )


def main() -> None:
    import os

    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--small", type=int, default=256)
    parser.add_argument("--block", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-analysis-") as tmp:
        folder = Path(tmp)
        t = time.perf_counter()
        labels, image = make_packing(args.size, args.seed)
        for size in sorted({args.size, args.small}):
            box = (slice(0, size),) * 3
            for name, arr in (("labels", labels), ("image", image)):
                out = zarr.create_array(
                    folder / f"{name}{size}.zarr",
                    shape=(size,) * 3,
                    chunks=(64,) * 3,
                    dtype=arr.dtype,
                )
                out[:] = arr[box]
        n = len(np.unique(labels)) - 1
        print(f"generated {args.size}^3 with {n} particles in {time.perf_counter() - t:.1f} s")
        del labels, image

        memory = child("memory", folder, args.small, args.block)
        report("memory", args.small, memory)
        small = child("chunked", folder, args.small, args.block)
        report("chunked", args.small, small)
        a = np.load(folder / f"memory{args.small}.npz")
        b = np.load(folder / f"chunked{args.small}.npz")
        same = list(a.keys()) == list(b.keys()) and all(
            np.allclose(a[k], b[k], rtol=1e-12, atol=0) for k in a.keys()
        )
        print(f"chunked == memory on {args.small}^3: {same}")
        full = child("chunked", folder, args.size, args.block)
        report("chunked", args.size, full)
        print(f"target: all properties of {args.size}^3 in <= 60 s: {full['seconds'] <= 60}")
        print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()

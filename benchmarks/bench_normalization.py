"""What the per-scan intensity normalization costs on a 512^3 scan: seconds and bytes read.

    python benchmarks/bench_normalization.py [--size 512] [--repeats 5]

A uint16 scan (bright balls in a noisy matrix) is written as a .npy file (memory-mapped, as
predict reads an uncompressed scan) and as zarr with 128^3 chunks (as predict writes and reads
large scans). Side by side, in one run:

- ``percentile`` (the default): :func:`normalization_for_scan`, a bounded sample of blocks;
  bytes read are the sampled voxels, and for zarr also the stored bytes of the chunks the blocks
  fall in (a chunk is decompressed whole);
- the baseline: one pass over every voxel (:func:`compute_intensity_stats`), what a statistic of
  the whole scan costs (the global z-score's statistics are computed this way over the training
  scans).

Each time is the median of ``--repeats`` calls after one warm-up call (the page cache is warm).
A zarr chunk is decompressed whole, so the last lines count the chunks the sample touches at
512^3 (all 64: one block per chunk) and at a typical full scan of 1000 x 1256 x 1256.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import zarr

from particleseg.transforms.intensity import compute_intensity_stats
from particleseg.transforms.normalization import (
    SAMPLE_BLOCK,
    SAMPLE_BLOCKS,
    normalization_for_scan,
)

CHUNK = 128


def make_scan(size: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    scan = rng.normal(9000, 400, (size,) * 3).astype(np.float32)
    zz, yy, xx = np.ogrid[:size, :size, :size]
    for _ in range(200):
        c = rng.uniform(0, size, 3)
        r = rng.uniform(4, 20)
        z0, z1 = int(max(c[0] - r, 0)), int(min(c[0] + r + 1, size))
        y0, y1 = int(max(c[1] - r, 0)), int(min(c[1] + r + 1, size))
        x0, x1 = int(max(c[2] - r, 0)), int(min(c[2] + r + 1, size))
        d2 = (zz[z0:z1] - c[0]) ** 2 + (yy[:, y0:y1] - c[1]) ** 2 + (xx[:, :, x0:x1] - c[2]) ** 2
        scan[z0:z1, y0:y1, x0:x1][d2 < r * r] += 9000
    return np.clip(scan, 0, 65535).astype(np.uint16)


def timed(fn, repeats: int) -> tuple[float, object]:
    out = fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def chunks_touched(shape, n_blocks: int, block: int) -> int:
    """Storage chunks the percentile sample reads (one block per grid cell)."""
    from particleseg.transforms.normalization import sample_voxels

    class Recorder:
        def __init__(self):
            self.shape, self.dtype, self.keys = shape, np.uint16, set()

        def __getitem__(self, key):
            ranges = [range(s.start // CHUNK, (s.stop - 1) // CHUNK + 1) for s in key]
            self.keys.update((a, b, c) for a in ranges[0] for b in ranges[1] for c in ranges[2])
            return np.zeros([s.stop - s.start for s in key], np.uint16)

    rec = Recorder()
    sample_voxels(rec, n_blocks, block)
    return len(rec.keys)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    scan = make_scan(args.size)
    cfg = {"scheme": "percentile"}
    with tempfile.TemporaryDirectory() as tmp:
        np.save(Path(tmp) / "scan.npy", scan)
        z = zarr.create_array(
            str(Path(tmp) / "scan.zarr"), shape=scan.shape, chunks=(CHUNK,) * 3, dtype=scan.dtype
        )
        z[...] = scan
        stored = sum(p.stat().st_size for p in (Path(tmp) / "scan.zarr").rglob("*") if p.is_file())
        n_chunks = int(np.prod([-(-s // CHUNK) for s in scan.shape]))
        del scan
        sources = {
            "npy (memmap)": lambda: np.load(Path(tmp) / "scan.npy", mmap_mode="r"),
            "zarr 128^3": lambda: zarr.open_array(str(Path(tmp) / "scan.zarr"), mode="r"),
        }
        touched = chunks_touched((args.size,) * 3, SAMPLE_BLOCKS, SAMPLE_BLOCK)
        total = args.size**3 * 2
        print(f"scan {args.size}^3 uint16 ({total / 2**20:.0f} MiB); median of {args.repeats}")
        print("| source | method | seconds | bytes read | share of the scan |")
        print("| --- | --- | --- | --- | --- |")
        for name, open_scan in sources.items():
            s_pct, norm = timed(lambda o=open_scan: normalization_for_scan(o(), cfg), args.repeats)
            read = norm.measured["bytes_read"]
            if name.startswith("zarr"):
                chunk_bytes = touched * stored / n_chunks
                detail = (
                    f"{read / 2**20:.2f} MiB voxels in {touched} chunks "
                    f"({chunk_bytes / 2**20:.0f} MiB stored)"
                )
                share = chunk_bytes / stored
            else:
                detail, share = f"{read / 2**20:.2f} MiB", read / total
            print(f"| {name} | percentile sample | {s_pct:.3f} | {detail} | {share:.1%} |")
            s_all, _ = timed(lambda o=open_scan: compute_intensity_stats([o()]), args.repeats)
            print(
                f"| {name} | baseline: every voxel | {s_all:.3f} | {total / 2**20:.0f} MiB | 100% |"
            )
        print(f"levels: low {norm.measured['low']:.0f}, high {norm.measured['high']:.0f}")
    for shape in ((512, 512, 512), (1000, 1256, 1256)):  # the second: a typical full scan
        n = int(np.prod([-(-s // CHUNK) for s in shape]))
        k = chunks_touched(shape, SAMPLE_BLOCKS, SAMPLE_BLOCK)
        print(f"{shape}: the sample reads {k} of {n} zarr chunks of {CHUNK}^3 ({k / n:.0%})")


if __name__ == "__main__":
    main()

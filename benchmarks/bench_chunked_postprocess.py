"""Chunked (out-of-core) border-core -> instance labels against the in-memory version.

For packed touching ellipsoids (semi-axes 8-20, border thickness 3) at each size, prints the
seconds and peak RSS of a child process that only converts the map: in memory
(``targets.border_core_to_instance`` on a .npy) and chunked (``postprocess`` from a zarr v3
array to a zarr v3 array, 64^3 chunks, 128^3 blocks unless --block), and checks that both give
the same labels.

Usage: python benchmarks/bench_chunked_postprocess.py [--sizes 256 512] [--block 128]
       [--workers N] [--halo 8]
Sizes and particle counts: 128 -> 100, 256 -> 800, 512 -> 6400 (the same density).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import zarr

from particleseg.synth import packed_ellipsoids
from particleseg.targets import instance_to_border_core

CHILD = r"""
import json, resource, sys, time
import numpy as np, zarr
mode, folder, block, workers, halo = sys.argv[1:6]
block, halo = int(block), int(halo)
if mode == "memory":
    from particleseg.targets import border_core_to_instance
    bc = np.load(folder + "/bc.npy")
    t = time.perf_counter()
    labels = border_core_to_instance(bc)
    seconds = time.perf_counter() - t
    np.save(folder + "/memory.npy", labels)
    n = int(labels.max())
else:
    from particleseg.postprocess import border_core_to_instance_chunked
    bc = zarr.open_array(folder + "/bc.zarr", mode="r")
    out = zarr.create_array(folder + "/chunked.zarr", shape=bc.shape, chunks=bc.chunks,
                            dtype="uint32", fill_value=0, overwrite=True)
    t = time.perf_counter()
    n = border_core_to_instance_chunked(
        bc, out, block_shape=(block,) * 3, halo=halo,
        num_workers=None if workers == "auto" else int(workers), scratch_dir=folder)
    seconds = time.perf_counter() - t
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "peak_rss_mb": rss, "n": n}))
"""


def child(mode: str, folder: Path, args) -> dict:
    cmd = [sys.executable, "-c", CHILD, mode, str(folder), str(args.block), args.workers]
    done = subprocess.run([*cmd, str(args.halo)], check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--block", type=int, default=128)
    parser.add_argument("--workers", default="auto")
    parser.add_argument("--halo", type=int, default=8)
    args = parser.parse_args()
    for size in args.sizes:
        n = 800 * (size // 256) ** 3 if size >= 256 else max(1, 800 * size**3 // 256**3)
        with tempfile.TemporaryDirectory(prefix="bench-chunked-") as tmp:
            folder = Path(tmp)
            labels = packed_ellipsoids((size,) * 3, n, (8, 20), mode="touching", seed=0)
            bc = instance_to_border_core(labels, 3)
            del labels
            np.save(folder / "bc.npy", bc)
            src = zarr.create_array(
                folder / "bc.zarr", shape=bc.shape, chunks=(64,) * 3, dtype="u1"
            )
            src[:] = bc
            del bc, src
            mem = child("memory", folder, args)
            chk = child("chunked", folder, args)
            same = np.array_equal(
                np.load(folder / "memory.npy"), zarr.open_array(folder / "chunked.zarr")[:]
            )
            print(
                f"{size}^3 ({n} ellipsoids, {mem['n']} particles): "
                f"in memory {mem['seconds']:.1f} s, {mem['peak_rss_mb']:.0f} MB peak RSS | "
                f"chunked {chk['seconds']:.1f} s, {chk['peak_rss_mb']:.0f} MB peak RSS "
                f"(block {args.block}^3, halo {args.halo}, workers {args.workers}) | "
                f"identical: {same}",
                flush=True,
            )


if __name__ == "__main__":
    main()

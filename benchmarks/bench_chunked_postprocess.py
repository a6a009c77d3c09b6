"""Chunked (out-of-core) border-core -> instance labels against the in-memory version.

For packed touching ellipsoids (semi-axes 8-20, border thickness 3) at each size, prints the
seconds and peak RSS of a child process that only converts the map: in memory
(``targets.border_core_to_instance`` on a .npy) and chunked (``postprocess`` from a zarr v3
array to a zarr v3 array, 64^3 chunks, 128^3 blocks unless --block), and checks that both give
the same labels.

``--missing-cores 0.2`` turns the cores of a fifth of the particles into border, as a network
does on a scan outside its size band: their voxels lie farther from a core of their component
than the halo (the "far" voxels, resolved after the blocks), which is where memory used to grow
with the volume. Sizes above ``--tile-from`` are the map of that size mirrored into tiles
(same density, written tile by tile); the in-memory run, and the check that both agree, only
go up to ``--memory-max``.

Usage: python benchmarks/bench_chunked_postprocess.py [--sizes 256 512] [--block 128]
       [--workers N] [--halo 8] [--missing-cores 0.2] [--tile-from 256] [--memory-max 512]
Sizes and particle counts: 128 -> 100, 256 -> 800, 512 -> 6400 (the same density).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
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
found = []
if mode == "memory":
    from particleseg.targets import border_core_to_instance
    bc = np.load(folder + "/bc.npy")
    t = time.perf_counter()
    labels = border_core_to_instance(bc)
    seconds = time.perf_counter() - t
    np.save(folder + "/memory.npy", labels)
    n = int(labels.max())
else:
    import particleseg.postprocess.chunked as chunked
    found, resolve = [], chunked.resolve_far
    chunked.resolve_far = lambda *a, **k: found.append(resolve(*a, **k))  # counts far voxels
    bc = zarr.open_array(folder + "/bc.zarr", mode="r")
    out = zarr.create_array(folder + "/chunked.zarr", shape=bc.shape, chunks=bc.chunks,
                            dtype="uint32", fill_value=0, overwrite=True)
    t = time.perf_counter()
    n = chunked.border_core_to_instance_chunked(
        bc, out, block_shape=(block,) * 3, halo=halo,
        num_workers=None if workers == "auto" else int(workers), scratch_dir=folder)
    seconds = time.perf_counter() - t
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "peak_rss_mb": rss, "n": n, "far": sum(found or [0])}))
"""


def child(mode: str, folder: Path, args) -> dict:
    cmd = [sys.executable, "-c", CHILD, mode, str(folder), str(args.block), args.workers]
    done = subprocess.run([*cmd, str(args.halo)], check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def make_map(size: int, missing_cores: float) -> np.ndarray:
    """Touching ellipsoids as a border-core map; a fraction of the particles lose their core."""
    n = 800 * (size // 256) ** 3 if size >= 256 else max(1, 800 * size**3 // 256**3)
    labels = packed_ellipsoids((size,) * 3, n, (8, 20), mode="touching", seed=0)
    bc = instance_to_border_core(labels, 3)
    if missing_cores:
        gone = np.random.default_rng(0).random(int(labels.max()) + 1) < missing_cores
        bc[(bc == 1) & gone[labels]] = 2
    return bc


def write_tiled(path: Path, bc: np.ndarray, size: int) -> None:
    """``bc`` mirrored into (size / its edge)^3 tiles, written tile by tile as a zarr array."""
    edge = bc.shape[0]
    out = zarr.create_array(path, shape=(size,) * 3, chunks=(64,) * 3, dtype="u1")
    for i, j, k in itertools.product(range(size // edge), repeat=3):
        tile = bc
        for axis, n in enumerate((i, j, k)):
            tile = np.flip(tile, axis) if n % 2 else tile
        out[i * edge : (i + 1) * edge, j * edge : (j + 1) * edge, k * edge : (k + 1) * edge] = tile


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--block", type=int, default=128)
    parser.add_argument("--workers", default="auto")
    parser.add_argument("--halo", type=int, default=8)
    parser.add_argument("--missing-cores", type=float, default=0.0)
    parser.add_argument("--tile-from", type=int, default=512)
    parser.add_argument("--memory-max", type=int, default=512)
    args = parser.parse_args()
    print(
        "| size | particles | far voxels | in memory: s, peak RSS | chunked: s, peak RSS | "
        "chunked ns per voxel | identical |\n|---|---|---|---|---|---|---|"
    )
    for size in args.sizes:
        with tempfile.TemporaryDirectory(prefix="bench-chunked-") as tmp:
            folder = Path(tmp)
            tile = min(size, args.tile_from)
            bc = make_map(tile, args.missing_cores)
            write_tiled(folder / "bc.zarr", bc, size)
            mem = {"seconds": math.nan, "peak_rss_mb": math.nan}
            if size <= args.memory_max:
                np.save(
                    folder / "bc.npy",
                    bc if tile == size else zarr.open_array(folder / "bc.zarr")[:],
                )
                mem = child("memory", folder, args)
            del bc
            chk = child("chunked", folder, args)
            same = "n/a"
            if size <= args.memory_max:
                same = np.array_equal(
                    np.load(folder / "memory.npy"), zarr.open_array(folder / "chunked.zarr")[:]
                )
            in_memory = "not run"
            if not math.isnan(mem["seconds"]):
                in_memory = f"{mem['seconds']:.1f} s, {mem['peak_rss_mb']:.0f} MB"
            print(
                f"| {size}^3 | {chk['n']} | {chk['far']} | "
                f"{in_memory} | "
                f"{chk['seconds']:.1f} s, {chk['peak_rss_mb']:.0f} MB | "
                f"{1e9 * chk['seconds'] / size**3:.0f} | {same} |",
                flush=True,
            )
    print(
        f"\nblock {args.block}^3, halo {args.halo}, workers {args.workers}, missing cores "
        f"{args.missing_cores:g}; sizes above {args.tile_from} are mirrored tiles"
    )


if __name__ == "__main__":
    main()

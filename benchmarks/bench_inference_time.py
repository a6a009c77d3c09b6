"""Wall time of predict.py against the particle size given for a fixed scan (the paper's study).

The particle size sets the zoom to the model's particle size, hence the network grid: time
grows with (model size / particle size)^3. One fixed synthetic scan (the 256^3 scan of
``bench_predict.py``) is predicted with ``particle_size_px`` set to each value in turn, each run
in a fresh process; the script prints the table and plots seconds against the size.

Usage:
    python benchmarks/bench_inference_time.py [--model CHECKPOINT] [--sizes 60,40,30,24,18]
        [--work /tmp/bench_predict] [--plot docs/predict/inference_time.png]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_predict import make_scans, run_predict  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--model", type=Path, default=ROOT / "outputs/train/cpu_small/checkpoints/best.ckpt"
    )
    parser.add_argument("--sizes", default="60,40,30,24,18")
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench_predict"))
    parser.add_argument("--plot", type=Path, default=ROOT / "docs/predict/inference_time.png")
    args = parser.parse_args()
    scans, true_size = make_scans(args.work, [256])
    sizes = [float(s) for s in args.sizes.split(",") if s]
    print(f"scan 256^3 (its particles: {true_size:.1f} voxels mean diameter), model {args.model}")
    print("\n| particle_size_px | zoom | network grid | windows | wall s | network s | CPU s |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    rows = []
    for size in sizes:
        summary, wall = run_predict(scans[256], args.model, size, args.work / f"time_{size:g}")
        t = summary["timings_s"]
        cpu = sum(t.get(k, 0.0) for k in ("instances", "resample", "filter", "finish"))
        rows.append((size, wall))
        grid = "x".join(map(str, summary["network_shape"]))
        print(
            f"| {size:g} | {summary['zoom'][0]:.2f} | {grid} "
            f"| {summary['windows']['plain_sliding_window']} | {wall:.0f} | {t['network']:.0f} "
            f"| {cpu:.1f} |",
            flush=True,
        )
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot([r[0] for r in rows], [r[1] for r in rows], "o-")
    ax.set_xlabel("particle_size_px given (model size 24)")
    ax.set_ylabel("predict.py wall time (s), 2 cores")
    ax.set_yscale("log")
    ax.set_title("256^3 scan, cpu_small model")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    args.plot.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.plot, dpi=100)
    print(f"\nplot: {args.plot}")
    (args.work / "inference_time.json").write_text(json.dumps(rows))


if __name__ == "__main__":
    main()

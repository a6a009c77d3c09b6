"""Wall time of predict.py against the particle size given for a fixed scan (the paper's study).

The particle size sets the zoom, hence the network grid. With ``inference.resize=target`` (the
paper's rule) every scan is resized so that particles are the model's target size: time grows
with (target / particle size)^3. With ``inference.resize=band`` (the default for a model that
stores a validated size band) a scan is resized only as far as needed to bring its particles
into the band. One fixed synthetic scan (the 256^3 scan of ``bench_predict.py``) is predicted
with ``particle_size_px`` set to each value in turn, under each rule, each run in a fresh
process; the script prints the table and plots seconds against the size, one line per rule.

Usage:
    python benchmarks/bench_inference_time.py [--model CHECKPOINT] [--sizes 60,40,30,24,18]
        [--rules band,target] [--work /tmp/bench_predict] [--plot docs/predict/inference_time.png]
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
    parser.add_argument("--model", type=Path, default=ROOT / "src/particleseg/weights/default.ckpt")
    parser.add_argument("--sizes", default="60,40,30,24,18")
    parser.add_argument("--rules", default="band,target", help="inference.resize values")
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench_predict"))
    parser.add_argument("--plot", type=Path, default=ROOT / "docs/predict/inference_time.png")
    args = parser.parse_args()
    scans, true_size = make_scans(args.work, [256])
    sizes = [float(s) for s in args.sizes.split(",") if s]
    print(f"scan 256^3 (its particles: {true_size:.1f} voxels mean diameter), model {args.model}")
    columns = ["resize", "particle_size_px", "zoom", "network grid", "windows"]
    columns += ["wall s", "network s", "CPU s"]
    print("\n| " + " | ".join(columns) + " |")
    print("| --- " * len(columns) + "|")
    rows = []
    for rule in [r for r in args.rules.split(",") if r]:
        for size in sizes:
            out = args.work / f"time_{rule}_{size:g}"
            summary, wall = run_predict(
                scans[256], args.model, size, out, (f"inference.resize={rule}",)
            )
            t = summary["timings_s"]
            cpu = sum(t.get(k, 0.0) for k in ("instances", "resample", "filter", "finish"))
            rows.append((rule, size, wall))
            grid = "x".join(map(str, summary["network_shape"]))
            print(
                f"| {rule} | {size:g} | {summary['zoom'][0]:.2f} | {grid} "
                f"| {summary['windows']['plain_sliding_window']} | {wall:.0f} "
                f"| {t['network']:.0f} | {cpu:.1f} |",
                flush=True,
            )
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for rule in dict.fromkeys(r[0] for r in rows):
        points = [(r[1], r[2]) for r in rows if r[0] == rule]
        ax.plot([p[0] for p in points], [p[1] for p in points], "o-", label=f"resize={rule}")
    ax.legend(fontsize=8)
    ax.set_xlabel("particle_size_px given")
    ax.set_ylabel("predict.py wall time (s), 2 cores")
    ax.set_yscale("log")
    ax.set_title(f"256^3 scan, model {args.model.name}")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    args.plot.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.plot, dpi=100)
    print(f"\nplot: {args.plot}")
    (args.work / "inference_time.json").write_text(json.dumps(rows))


if __name__ == "__main__":
    main()

"""The generalist model's validation curve, kept in the repository as it grows.

    python benchmarks/plot_generalist_curve.py [--run outputs/train/generalist]

Copies the run's CSV log (all ``csv/version_*/metrics.csv`` of the run, concatenated, a resumed
run adding versions) to ``docs/train/generalist_metrics.csv``, so the curve survives a machine
that comes back without ``outputs/``, and plots validation F1_instance / F1_match / F1 of the
kept CSV against the iteration into ``docs/results/generalist_curve.png``. The validation is
data/synth_wide's 16 ``val`` scans (2 crops each), which no training sees; it also chooses
``best.ckpt``. When ``outputs/`` is gone, the kept CSV alone is plotted; a resumed run's log is
appended to it.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

ROOT = Path(__file__).resolve().parents[1]
KEPT = ROOT / "docs" / "train" / "generalist_metrics.csv"
PNG = ROOT / "docs" / "results" / "generalist_curve.png"
METRICS = ("val/f1_instance", "val/f1_match", "val/f1")


def read_rows(paths: list[Path]) -> list[dict]:
    """The rows of CSV logs in order; a later row for the same step and metric wins."""
    rows = []
    for path in paths:
        with open(path, newline="") as f:
            rows.extend(csv.DictReader(f))
    return rows


def merge(kept: list[dict], new: list[dict]) -> list[dict]:
    """Kept rows of steps before the new log's first validation, then the new rows."""
    steps = [int(r["step"]) for r in new if r.get("step")]
    first = min(steps) if steps else None
    return [r for r in kept if first is None or int(r["step"]) < first] + new


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=ROOT / "outputs" / "train" / "generalist")
    args = parser.parse_args()
    logs = sorted(args.run.glob("csv/version_*/metrics.csv"))
    kept = read_rows([KEPT]) if KEPT.exists() else []
    rows = merge(kept, read_rows(logs)) if logs else kept
    if not rows:
        raise SystemExit(f"no log under {args.run} and no {KEPT}")
    fields = list(dict.fromkeys(k for r in rows for k in r))
    KEPT.parent.mkdir(parents=True, exist_ok=True)
    with open(KEPT, "w", newline="") as f:
        writer = csv.DictWriter(f, fields)
        writer.writeheader()
        writer.writerows(rows)
    fig = Figure(figsize=(8, 3.6), dpi=100)
    ax = fig.subplots()
    for i, metric in enumerate(METRICS):
        points = sorted((int(r["step"]) + 1, float(r[metric])) for r in rows if r.get(metric))
        if points:
            steps, values = zip(*points, strict=True)
            ax.plot(steps, values, "-", color=f"C{i}", marker="o", ms=3, label=metric[4:])
    ax.set_xlabel("iteration (batch 2, 64^3 patches)")
    ax.set_ylabel("validation score")
    ax.set_xlim(0, 20_000)
    ax.set_ylim(0.3, 1.0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title("generalist: data/synth_wide val scans (16 x 2 crops)")
    fig.tight_layout()
    PNG.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(PNG)
    last = max(int(r["step"]) + 1 for r in rows if r.get("step"))
    print(f"wrote {KEPT} and {PNG} (last logged iteration {last})")
    print(trend(rows, since=last // 2))


def trend(rows: list[dict], since: int, goal: float = 0.80) -> str:
    """Least-squares line through val/f1_instance after iteration ``since``: its slope, its
    value at the last iteration, and where it would reach ``goal`` if it went on (a straight
    extrapolation of a noisy curve, whose learning rate has decayed to zero: a rough guide)."""
    points = [(int(r["step"]) + 1, float(r[METRICS[0]])) for r in rows if r.get(METRICS[0])]
    points = [(s, v) for s, v in points if s > since]
    if len(points) < 3:
        return "too few validation points for a trend"
    steps, values = (np.array(v, float) for v in zip(*points, strict=True))
    slope, intercept = np.polyfit(steps, values, 1)
    end = steps.max()
    line = f"val/f1_instance trend over iterations {since}-{end:.0f} ({len(points)} points): "
    line += f"{slope * 1e4:+.3f} per 10,000 iterations, {slope * end + intercept:.3f} at {end:.0f}"
    if slope > 0:
        line += f"; {goal:.2f} at about {(goal - intercept) / slope:,.0f} iterations"
    return line


if __name__ == "__main__":
    main()

"""The default model's training curve: cpu_small from scratch, then the fine-tuning on synth64.

    python benchmarks/plot_training_curve.py [OUT.png]

Reads the CSV logs of both runs (docs/train/cpu_small_metrics.csv, outputs/train/default_model/
csv/version_*/metrics.csv) and plots validation F1_instance / F1_match / F1 against the epoch,
the fine-tuning's epochs after cpu_small's 30. The two runs validate on different crops (the
fold-0 validation samples of their own training sets), so the jump at the seam is not progress.
"""

from __future__ import annotations

import sys
from pathlib import Path

from matplotlib.figure import Figure

from particleseg.evaluation.tables import read_metric_history

ROOT = Path(__file__).resolve().parents[1]


def main(out: Path) -> None:
    """Plot both runs into ``out``."""
    first = read_metric_history([ROOT / "docs" / "train" / "cpu_small_metrics.csv"])
    logs = sorted(
        (ROOT / "outputs" / "train" / "default_model" / "csv").glob("version_*/metrics.csv")
    )
    second = read_metric_history(logs)
    offset = 1 + max(e for e, _ in first["val/f1_instance"])
    fig = Figure(figsize=(8, 3.6), dpi=100)
    ax = fig.subplots()
    for i, metric in enumerate(("val/f1_instance", "val/f1_match", "val/f1")):
        for part, shift, style in ((first, 0, "-"), (second, offset, "--")):
            points = part.get(metric, [])
            if points:
                e, v = zip(*points, strict=True)
                label = metric.split("/")[1] if part is first else None
                ax.plot(
                    [x + shift for x in e], v, style, color=f"C{i}", marker="o", ms=3, label=label
                )
    ax.axvline(offset - 0.5, color="grey", lw=0.8)
    note = "fine-tuning on synth64 (dashed;\nother validation crops)"
    ax.text(offset + 0.3, 0.62, note, fontsize=8)
    ax.set_xlabel("epoch (100 iterations of batch 2, 64^3)")
    ax.set_ylabel("validation score")
    ax.set_ylim(0.5, 1.0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower center")
    ax.set_title("default model: cpu_small from scratch (solid), then fine-tuned (dashed)")
    fig.tight_layout()
    fig.savefig(out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(
        Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "results" / "training_curve.png"
    )

"""Sliding-window overlap: F1_instance and network time at 50 %, 33 % and 25 % overlap.

nnU-Net's 50 % overlap costs about 8 forward passes per voxel, 33 % about 3.4 and 25 % about
2.4. Each overlap predicts the same scans with ``predict.py`` (the rest of predict's defaults
unchanged, 50 % being the baseline in the same run), then ``evaluate.py`` scores them against
the reference labels. The table gives, per overlap and split, the mean F1_instance, the summed
forward passes and the summed seconds of the network stage.

The default is chosen on the **validation** split only (``--choose-on``, default ``val`` of
data/synth_wide, scans no training saw): the smallest overlap whose mean F1_instance there is
at most ``--tolerance`` (0.005) below 50 %'s. Test splits may be added to the table for
information; they choose nothing.

Usage:
    python benchmarks/bench_overlap.py --checkpoint outputs/train/generalist/model.ckpt \
        [--dataset data/synth_wide] [--splits val] [--overlaps 0.5,0.33,0.25] \
        [--work /tmp/bench_overlap] [--json docs/results/overlap.json]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from predict_and_score import ROOT, predict_and_score, write_json


def measure(args: argparse.Namespace, overlap: float, split: str) -> dict:
    """Predict and score ``split`` at ``overlap``; the row of the table."""
    out = args.work / f"overlap_{overlap:g}" / split
    row = predict_and_score(
        args.dataset, args.checkpoint, split, out, [f"inference.overlap={overlap}"]
    )
    return {"overlap": overlap, **row}


def choose(rows: list[dict], split: str, tolerance: float) -> float:
    """The smallest overlap within ``tolerance`` of the largest overlap's F1 on ``split``."""
    on = sorted((r for r in rows if r["split"] == split), key=lambda r: -r["overlap"])
    if not on:
        sys.exit(f"--choose-on {split}: not among the measured splits")
    base = on[0]["f1_instance"]
    return min(r["overlap"] for r in on if r["f1_instance"] >= base - tolerance)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--dataset", type=Path, default=ROOT / "data/synth_wide")
    parser.add_argument("--splits", default="val", help="comma-separated; val chooses")
    parser.add_argument("--choose-on", default="val")
    parser.add_argument("--overlaps", default="0.5,0.33,0.25")
    parser.add_argument("--tolerance", type=float, default=0.005)
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench_overlap"))
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if not (args.dataset / "dataset.json").is_file():
        sys.exit(
            f"{args.dataset / 'dataset.json'}: dataset not built (see benchmarks/generalist.sh)"
        )
    overlaps = sorted((float(o) for o in args.overlaps.split(",") if o), reverse=True)
    splits = [s for s in args.splits.split(",") if s]
    rows = [measure(args, o, s) for s in splits for o in overlaps]
    print(f"model {args.checkpoint}, dataset {args.dataset}")
    print("\n| split | overlap | scans | F1_instance | forward passes | network s | vs 50 % |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        base = next(b for b in rows if b["split"] == r["split"] and b["overlap"] == overlaps[0])
        print(
            f"| {r['split']} | {r['overlap']:.0%} | {r['n_samples']} | {r['f1_instance']:.3f} | "
            f"{r['forward_passes']:.0f} | {r['network_s']:.0f} | "
            f"{r['network_s'] / max(base['network_s'], 1e-9):.2f}x |"
        )
    chosen = choose(rows, args.choose_on, args.tolerance)
    print(
        f"\nchosen on {args.choose_on} (F1_instance within {args.tolerance} of "
        f"{overlaps[0]:.0%}): overlap {chosen:g}"
    )
    write_json(args.json, {"checkpoint": str(args.checkpoint), "rows": rows, "chosen": chosen})


if __name__ == "__main__":
    main()

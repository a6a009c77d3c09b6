"""Inference engine and precision: F1_instance and network time, torch and OpenVINO, fp32 to int8.

Each engine and precision (torch fp32 and bf16 autocast, OpenVINO fp32, bf16 and int8) predicts
the same scans with ``predict.py`` (the rest of predict's defaults unchanged; the first variant,
torch fp32 by default, is the baseline in the same run), then ``evaluate.py`` scores them. int8
runs the model's ``MODEL.int8.xml`` (``python -m particleseg.inference.quantize MODEL DATASET``,
calibrated on the validation scans); the bench makes it first when it is missing.

Whether int8 is kept (recommended, and made for the shipped model) is decided on the
**validation** split only (``--choose-on``, default ``val`` of data/synth_wide): its mean
F1_instance there must be at most ``--tolerance`` (0.005) below OpenVINO fp32's. Test splits may
be added to the table for information; they decide nothing.

Usage:
    python benchmarks/bench_precision.py [--checkpoint src/particleseg/weights/default.ckpt] \\
        [--dataset data/synth_wide] [--splits val] [--work /tmp/bench_precision] [--json FILE]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from predict_and_score import ROOT, predict_and_score, run, write_json

#: (row label, predict overrides)
VARIANTS = {
    "torch fp32": ["inference.engine=torch", "inference.precision=fp32"],
    "torch bf16": ["inference.engine=torch", "inference.precision=bf16"],
    "OpenVINO fp32": ["inference.engine=openvino", "inference.precision=fp32"],
    "OpenVINO bf16": ["inference.engine=openvino", "inference.precision=bf16"],
    "OpenVINO int8": ["inference.engine=openvino", "inference.precision=int8"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--checkpoint", type=Path, default=ROOT / "src/particleseg/weights/default.ckpt"
    )
    parser.add_argument("--dataset", type=Path, default=ROOT / "data/synth_wide")
    parser.add_argument("--splits", default="val", help="comma-separated; val decides")
    parser.add_argument("--choose-on", default="val")
    parser.add_argument(
        "--variants", default="torch fp32,OpenVINO fp32,OpenVINO bf16,OpenVINO int8"
    )
    parser.add_argument("--tolerance", type=float, default=0.005)
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench_precision"))
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if not (args.dataset / "dataset.json").is_file():
        sys.exit(f"{args.dataset / 'dataset.json'}: dataset not built (benchmarks/generalist.sh)")
    variants = [v for v in args.variants.split(",") if v]
    if unknown := set(variants) - set(VARIANTS):
        sys.exit(f"--variants: unknown {sorted(unknown)}; known {list(VARIANTS)}")
    int8 = args.checkpoint.with_name(f"{args.checkpoint.stem}.int8.xml")
    if "OpenVINO int8" in variants and not int8.is_file():
        run(["-m", "particleseg.inference.quantize", str(args.checkpoint), str(args.dataset)])
    splits = [s for s in args.splits.split(",") if s]
    rows = []
    for split in splits:
        for name in variants:
            out = args.work / name.replace(" ", "_") / split
            row = predict_and_score(args.dataset, args.checkpoint, split, out, VARIANTS[name])
            rows.append({"variant": name, **row})
            print(f"{name} {split}: F1_instance {row['f1_instance']:.4f}", flush=True)
    print(f"\nmodel {args.checkpoint}, dataset {args.dataset}")
    print("\n| split | engine, precision | scans | F1_instance | network s | vs first row |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        base = next((b for b in rows if b["split"] == r["split"]), r)
        print(
            f"| {r['split']} | {r['variant']} | {r['n_samples']} | {r['f1_instance']:.3f} | "
            f"{r['network_s']:.0f} | {base['network_s'] / max(r['network_s'], 1e-9):.2f}x |"
        )
    kept = None
    on = {r["variant"]: r for r in rows if r["split"] == args.choose_on}
    if "OpenVINO int8" in on and "OpenVINO fp32" in on:
        drop = on["OpenVINO fp32"]["f1_instance"] - on["OpenVINO int8"]["f1_instance"]
        kept = drop <= args.tolerance
        print(
            f"\nint8 on {args.choose_on}: F1_instance {drop:+.4f} below OpenVINO fp32 "
            f"(tolerance {args.tolerance}): {'kept' if kept else 'not kept'}"
        )
    write_json(args.json, {"checkpoint": str(args.checkpoint), "rows": rows, "int8_kept": kept})


if __name__ == "__main__":
    main()

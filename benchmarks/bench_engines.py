"""One forward pass of a model's U-Net per engine and precision, side by side in one process.

Prints, per window size, the minimum of ``--repeats`` timed passes (after one warm-up) for torch
fp32, torch bf16 autocast, OpenVINO f32 and OpenVINO bf16, each with its argmax agreement with
torch fp32 on the same random input, and the time ``import openvino`` takes in a fresh process.
The engines are built as predict builds them (:func:`particleseg.inference.engines.make_engine`).

Usage: python benchmarks/bench_engines.py [--model default] [--windows 64 96] [--threads 2]
"""

from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys
import tempfile
import time

import torch


def timed(fn, repeats: int) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--windows", type=int, nargs="+", default=[64, 96])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from particleseg.inference.engines import make_engine
    from particleseg.inference.model import load_checkpoint, resolve_model_path

    model = load_checkpoint(resolve_model_path(args.model))
    model.net.eval()
    cmd = [
        sys.executable,
        "-c",
        "import time; t = time.perf_counter(); import openvino; print(time.perf_counter() - t)",
    ]
    imported = float(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    print(f"model {model.path}; {args.threads} threads; import openvino {imported:.2f} s\n")
    print("| window | torch fp32 | torch bf16 autocast | OpenVINO f32 | OpenVINO bf16 |")
    print("| --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as cache:
        for w in args.windows:
            # the network is convolutional: any window that is a multiple of its stride
            model = dataclasses.replace(model, patch_size=(w, w, w))
            x = torch.randn(1, 1, w, w, w, generator=torch.Generator().manual_seed(0))
            cells, ref = [], None
            for engine, precision in [
                ("torch", "fp32"),
                ("torch", "bf16"),
                ("openvino", "fp32"),
                ("openvino", "bf16"),
            ]:
                e = make_engine(
                    model,
                    {"engine": engine, "precision": precision, "cache_dir": cache},
                    torch.device("cpu"),
                )

                def run(e=e, x=x):
                    with torch.no_grad(), torch.autocast("cpu", torch.bfloat16, enabled=e.autocast):
                        return e.forward(x).float()

                seconds = timed(run, args.repeats)
                classes = run().argmax(1)
                ref = classes if ref is None else ref
                agree = (classes == ref).float().mean().item()
                cells.append(f"{seconds:.3f} s ({100 * agree:.2f}%)")
            print(f"| {w}^3 | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()

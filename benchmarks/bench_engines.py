"""The network per engine and precision, side by side: one forward pass, and predict end to end.

Forward pass (always): per window size, the minimum of ``--repeats`` timed passes (after one
warm-up) for torch fp32, torch bf16 autocast, OpenVINO f32, OpenVINO bf16 and, when the model
has its int8 file (``MODEL.int8.xml``, ``python -m particleseg.inference.quantize``), OpenVINO
int8, each with its argmax agreement with torch fp32 on the same input: the centre window of
the bundled sample, normalized as predict normalizes it (an int8 network is calibrated on
scans, so random noise would misjudge it). Also the time ``import openvino`` takes in a fresh
process. The engines are built as predict builds them
(:func:`particleseg.inference.engines.make_engine`).

End to end (``--end-to-end``): ``predict.py`` on the bundled sample and on a 256^3 scan (the
bundled sample's scene at that shape) with each engine and precision, each in a fresh process:
wall time (imports included), the network stage's seconds from ``summary.json``, and the
speed-up against torch fp32 and against torch bf16 autocast. Single runs on a shared machine vary
by up to 20%, so each variant runs ``--e2e-repeats`` times (default 3) and the fastest counts.

The CPU's model and its flags (AVX-512, AVX512-BF16, AMX, VNNI) are printed first. On a CPU
without bf16 units the bf16 variants are left out: torch would emulate bf16, minutes a pass, and
OpenVINO computes f32 there (predict records it so).

Usage: python benchmarks/bench_engines.py [--model default] [--windows 64 96] [--threads 2]
           [--end-to-end] [--e2e-repeats 3] [--work /tmp/bench_engines]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = [
    ("torch", "fp32"),
    ("torch", "bf16"),
    ("openvino", "fp32"),
    ("openvino", "bf16"),
    ("openvino", "int8"),
]
LABELS = {
    "torch": {"fp32": "torch fp32", "bf16": "torch bf16 autocast"},
    "openvino": {"fp32": "OpenVINO f32", "bf16": "OpenVINO bf16", "int8": "OpenVINO int8"},
}


def timed(fn, repeats: int) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def cpu_line() -> str:
    """The CPU's model name and the flags that decide the engines' speed."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "CPU: unknown"
    name = re.search(r"model name\s*:\s*(.*)", info)
    flags = set(re.search(r"flags\s*:\s*(.*)", info).group(1).split()) if "flags" in info else set()
    wanted = ["avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8"]
    have = [f for f in wanted if f in flags]
    return f"CPU: {name.group(1) if name else 'unknown'}; flags: {' '.join(have) or 'none of'}"


def sample_window(model, w: int) -> torch.Tensor:
    """The centre (w, w, w) window of the bundled sample, normalized per scan: (1, 1, w, w, w)."""
    from particleseg.io import read_volume
    from particleseg.synth.sample import bundled_sample
    from particleseg.transforms.normalization import normalization_for_scan

    image = np.asarray(read_volume(bundled_sample()))
    if min(image.shape) < w:
        sys.exit(f"window {w} is larger than the bundled sample {image.shape}")
    x = normalization_for_scan(image, model.normalization)(image).astype(np.float32)
    c = [(s - w) // 2 for s in x.shape]
    return torch.from_numpy(
        np.ascontiguousarray(x[c[0] : c[0] + w, c[1] : c[1] + w, c[2] : c[2] + w])
    )[None, None]


def forward_table(model, args, variants) -> None:
    from particleseg.inference.engines import make_engine

    print("| window | " + " | ".join(LABELS[e][p] for e, p in variants) + " |")
    print("| --- |" + " --- |" * len(variants))
    with tempfile.TemporaryDirectory() as cache:
        for w in args.windows:
            # the network is convolutional: any window that is a multiple of its stride
            model = dataclasses.replace(model, patch_size=(w, w, w))
            x = sample_window(model, w)
            cells, ref = [], None
            for engine, precision in variants:
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


def predict_once(args, scan: Path, out: Path, engine: str, precision: str) -> tuple[float, float]:
    """One ``predict.py`` run in a fresh process: (wall seconds, network stage seconds)."""
    command = [
        sys.executable, "predict.py", f"input={scan}", f"output={out}",
        f"checkpoint={args.model}", f"inference.engine={engine}",
        f"inference.precision={precision}", "outputs.overlay=false", "overwrite=true",
    ]  # fmt: skip
    t = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    summary = json.loads((out / "summary.json").read_text())
    return wall, summary["timings_s"]["network"]


def end_to_end(args, variants) -> None:
    """Each variant ``--e2e-repeats`` times, in rounds (every variant once per round, so a slow
    spell of a shared machine falls on all of them); the fastest run of each is reported, with
    the slowest beside it."""
    from particleseg.synth.sample import bundled_sample

    scans = {"bundled sample": bundled_sample(), "256^3": bundled_sample(shape=(256, 256, 256))}
    n = args.e2e_repeats
    print(f"\n{n} run(s) per engine and scan, in rounds; the fastest run's figures, the slowest")
    print("run's wall time in brackets\n")
    print("| scan | engine, precision | wall s | network s | vs torch fp32 | vs torch bf16 |")
    print("| --- | --- | --- | --- | --- | --- |")
    for scan_name, scan in scans.items():
        runs: dict[tuple[str, str], list[tuple[float, float]]] = {v: [] for v in variants}
        for _ in range(n):
            for engine, precision in variants:
                folder = scan_name.replace(" ", "_").replace("^", "")
                out = args.work / folder / f"{engine}_{precision}"
                runs[(engine, precision)].append(predict_once(args, scan, out, engine, precision))
        best = {v: min(r) for v, r in runs.items()}
        for engine, precision in variants:
            wall, network = best[(engine, precision)]
            slowest = max(w for w, _ in runs[(engine, precision)])
            base = best.get(("torch", "fp32"), (wall, 0))[0]
            bf16 = best.get(("torch", "bf16"), (None, 0))[0]
            first = (engine, precision) == ("torch", "fp32")
            print(
                f"| {scan_name} | {LABELS[engine][precision]} | {wall:.1f} ({slowest:.1f}) | "
                f"{network:.1f} | {base / wall:.2f}x | "
                + (f"{bf16 / wall:.2f}x |" if bf16 and not first else "- |"),
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--windows", type=int, nargs="+", default=[64, 96])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--end-to-end", action="store_true")
    parser.add_argument("--e2e-repeats", type=int, default=3, help="predict runs per variant")
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench_engines"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from particleseg.inference.model import load_checkpoint, resolve_model_path
    from particleseg.inference.quantize import int8_path
    from particleseg.precision import cpu_has_bf16

    model = load_checkpoint(resolve_model_path(args.model))
    model.net.eval()
    variants = [v for v in VARIANTS if v[1] != "int8" or int8_path(model.path).is_file()]
    if not cpu_has_bf16():  # torch would emulate bf16 (minutes a pass), OpenVINO run f32
        variants = [v for v in variants if v[1] != "bf16"]
    cmd = [
        sys.executable,
        "-c",
        "import time; t = time.perf_counter(); import openvino; print(time.perf_counter() - t)",
    ]
    imported = float(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    print(cpu_line())
    if not cpu_has_bf16():
        print("no bf16 units: the bf16 variants are left out")
    print(f"model {model.path}; {args.threads} threads; import openvino {imported:.2f} s\n")
    forward_table(model, args, variants)
    if args.end_to_end:
        args.model = str(model.path)
        end_to_end(args, variants)


if __name__ == "__main__":
    main()

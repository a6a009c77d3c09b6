"""Do the seeded generators give the same scans under other CPU code paths?

Builds the first scans of data/synth's ood_test split and of the independent OOD split again in
child processes: once as this CPU runs them, once with numpy's dispatched SIMD code switched off
(``NPY_DISABLE_CPU_FEATURES``), once with OpenBLAS's oldest x86-64 kernels
(``OPENBLAS_CORETYPE=Prescott``), once with numba compiling for a generic CPU. Another CPU picks
other paths the same way, so a difference here means a test split rebuilt on another machine
can hold other scans. Prints, per variant, each scan's particle count and the share of image and
label voxels that differ from the first build::

    python benchmarks/scan_reproducibility.py            # about 7 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import tifffile
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]
INDEPENDENT = ROOT / "src/particleseg/conf/synth/ood_independent.yaml"


def variants() -> dict[str, dict[str, str]]:
    """Name -> environment changes of each build (the first is the reference)."""
    umath = np._core._multiarray_umath  # what numpy dispatches, and what this CPU has
    enabled = [f for f in umath.__cpu_dispatch__ if umath.__cpu_features__.get(f)]
    return {
        "this CPU": {},
        "numpy without dispatched SIMD": {"NPY_DISABLE_CPU_FEATURES": " ".join(enabled)},
        "OpenBLAS Prescott kernels": {"OPENBLAS_CORETYPE": "Prescott"},
        "numba generic CPU": {"NUMBA_CPU_NAME": "generic", "NUMBA_CACHE_DIR": ""},
    }


def build(out: Path, env: dict[str, str], n_independent: int) -> None:
    """The two splits' first scans into ``out`` (a child process per generator)."""
    env = {**os.environ, **env}
    if env.get("NUMBA_CACHE_DIR") == "":
        env["NUMBA_CACHE_DIR"] = str(out / "numba_cache")  # compiled for this target only
    synth = [sys.executable, "-m", "particleseg.synth", f"out_dir={out / 'synth'}"]
    synth += ["splits.train.n=0", "splits.id_test.n=0", "splits.ood_test.n=1", "progress=false"]
    subprocess.run(synth, check=True, env=env, cwd=ROOT, capture_output=True)
    config = out / "independent.yaml"
    spec = OmegaConf.load(INDEPENDENT)
    spec.n, spec.progress = n_independent, False
    OmegaConf.save(spec, config)
    independent = [sys.executable, "-m", "particleseg.synth.independent", "--config", str(config)]
    independent += ["--out-dir", str(out / "independent")]
    subprocess.run(independent, check=True, env=env, cwd=ROOT, capture_output=True)


def scans(out: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``name -> (image, labels)`` of every scan built into ``out``."""
    found = {}
    for images in sorted(out.glob("*/images")):
        for path in sorted(images.glob("*.tif")):
            labels = tifffile.imread(path.parent.parent / "labels" / path.name)
            found[path.stem] = (tifffile.imread(path), labels)
    return found


def main(argv: list[str] | None = None) -> None:
    """Build under every variant and print how the scans compare with the first build."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--independent", type=int, default=2, help="independent scans to build")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        built = {}
        for name, env in variants().items():
            out = Path(tmp) / str(len(built))
            build(out, env, args.independent)
            built[name] = scans(out)
        first = next(iter(built.values()))
        print("| build | scan | particles | image voxels differing | label voxels differing |")
        print("|---|---|---|---|---|")
        for name, found in built.items():
            for scan, (image, labels) in found.items():
                ref_image, ref_labels = first[scan]
                differ = np.mean(image != ref_image), np.mean(labels != ref_labels)
                row = (
                    f"| {name} | {scan} | {int(labels.max())} (first build {int(ref_labels.max())})"
                )
                print(f"{row} | {differ[0]:.1%} | {differ[1]:.1%} |")


if __name__ == "__main__":
    main()

"""The README's figures of the bundled sample, regenerated: particles, scores, time, pictures.

Runs ``python predict.py`` (the bundled sample with the shipped model) into ``--output``
(a complete folder with the same fingerprint is reused), scores its instances against the
sample's reference labels, copies the overlay and the size distribution into ``docs/predict/``
and writes the paragraph between ``<!-- sample:begin -->`` and ``<!-- sample:end -->`` of
README.md::

    python benchmarks/sample_figures.py            # about 70 s on 2 cores
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from particleseg.evaluation.tables import replace_between_markers  # noqa: E402
from particleseg.io import read_volume  # noqa: E402
from particleseg.metrics import evaluate_instances  # noqa: E402
from particleseg.synth.sample import bundled_sample  # noqa: E402


def paragraph(summary: dict, scores: dict, n_true: int) -> str:
    """The README's lines about the sample, from predict's summary and the scores."""
    return (
        f"With the shipped model on 2 cores, `python predict.py` ran for "
        f"{summary['timings_s']['this_run_total']:.0f} s (the sample already generated; its first "
        f"generation adds about 10 s) and gives {summary['particles']} particles for {n_true} "
        f"true ones: F1 {scores['f1']:.2f}, F1_match {scores['f1_match']:.2f}, F1_instance "
        f"{scores['f1_instance']:.2f}, MergerRatio {scores['merger_ratio']:.3f}, SplitterRatio "
        f"{scores['splitter_ratio']:.3f} (`python benchmarks/sample_figures.py`). The overlay: "
        "`docs/predict/sample_overlay.png`. Its size distribution:\n\n"
        "![Size distribution of the bundled sample](docs/predict/sample_size_distribution.png)"
    )


def main(argv: list[str] | None = None) -> None:
    """Command line: see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=ROOT / "outputs" / "predict" / "sample")
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md")
    parser.add_argument("--figures", type=Path, default=ROOT / "docs" / "predict")
    args = parser.parse_args(argv)
    subprocess.run(
        [sys.executable, str(ROOT / "predict.py"), f"output={args.output}"], check=True, cwd=ROOT
    )
    summary = json.loads((args.output / "summary.json").read_text())
    pred = np.asarray(read_volume(args.output / "instances.zarr"))
    ref = np.asarray(read_volume(bundled_sample().parent / "labels.tif"))
    scores = evaluate_instances(pred, ref)
    args.figures.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(args.output / "overlay.png", args.figures / "sample_overlay.png")
    shutil.copyfile(
        args.output / "size_distribution.png", args.figures / "sample_size_distribution.png"
    )
    text = paragraph(summary, scores, int(len(np.unique(ref)) - (ref.min() == 0)))
    replace_between_markers(args.readme, text, "particleseg", name="sample")
    print(text.splitlines()[0])


if __name__ == "__main__":
    main()

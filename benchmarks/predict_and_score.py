"""Shared by the benches that compare predict's settings on labelled scans (overlap, precision).

:func:`predict_and_score` runs ``predict.py`` on one split of a dataset with some overrides (the
rest of predict's defaults unchanged), then ``evaluate.py`` on what it wrote, each in its own
process, and returns the split's mean F1_instance with the summed network cost.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(command: list[str]) -> None:
    """Run one of the project's commands from the repository root; stop on failure."""
    result = subprocess.run([sys.executable, *command], cwd=ROOT, text=True, capture_output=True)
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")


def write_json(path: Path | None, doc: dict) -> None:
    """Write a bench's rows and decision as JSON (nothing when ``path`` is None)."""
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(doc, indent=2) + "\n")


def network_cost(folder: Path) -> dict[str, float]:
    """Summed network seconds and forward passes of every predict summary under ``folder``."""
    seconds = passes = 0.0
    for path in sorted(folder.glob("*/summary.json")):
        summary = json.loads(path.read_text())
        seconds += float(summary["timings_s"].get("network") or 0.0)
        passes += float(summary["windows"].get("forward_passes") or 0)
    return {"network_s": seconds, "forward_passes": passes}


def predict_and_score(
    dataset: Path, checkpoint: Path, split: str, out: Path, overrides: list[str]
) -> dict:
    """Predict ``split`` of ``dataset`` into ``out`` with ``overrides`` and score it.

    Returns:
        ``split``, ``n_samples``, mean ``f1_instance``, ``network_s`` and ``forward_passes``.
    """
    run(
        [
            "predict.py",
            f"input={dataset}",
            f"checkpoint={checkpoint}",
            f"splits=[{split}]",
            f"output={out}",
            "outputs.analysis=false",
            "outputs.overlay=false",
            "outputs.ome_zarr=false",
            *overrides,
        ]
    )
    scores = out.parent / f"{out.name}_scores"
    run(
        [
            "evaluate.py",
            f"dataset={dataset}",
            f"predictions={out}",
            f"splits=[{split}]",
            f"output_dir={scores}",
        ]
    )
    summary = json.loads((scores / "summary.json").read_text())["splits"][split]
    return {
        "split": split,
        "n_samples": summary["n_samples"],
        "f1_instance": summary["mean"]["f1_instance"],
        **network_cost(out),
    }

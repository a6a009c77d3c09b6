"""The evaluation report (``evaluate.py --config-name report``) end to end on a tiny dataset.

It lives beside the inference tests for their tiny untrained checkpoint: the report runs predict.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from particleseg.metrics.results import BEGIN, END
from particleseg.synth.dataset import build_dataset
from particleseg.tasks import evaluate

ROOT = Path(__file__).resolve().parents[2]
SMALL_GRID = [
    "baseline.tune.threshold_offsets=[0.0]",
    "baseline.tune.noise_erosions=[1]",
    "baseline.tune.seed_erosions=[1,2]",
    "baseline.tune.max_samples=1",
]


def test_report_scores_both_methods_and_keeps_handwritten_text(tiny_checkpoint, tmp_path):
    data = tmp_path / "synth"
    scene = {"size_median_px": 8, "size_range_px": [5, 12], "packing": 0.25}
    split = {"n": 1, "shape": [20, 40, 40], "scene": scene, "ct": {"photons": 2000}}
    build_dataset(
        data,
        {"train": split, "id_test": split, "ood_test": split},
        mode="fast",
        seed=4,
        progress=False,
    )
    md = tmp_path / "docs" / "results.md"
    md.parent.mkdir()
    md.write_text(f"# Results\n\nwritten by hand\n\n{BEGIN}\nold\n{END}\n\n## Soil\nby hand too\n")
    overrides = [
        f"paths.root={tmp_path}",
        f"dataset={data}",
        f"checkpoint={tiny_checkpoint}",
        "+predict.inference.autocast=false",
        *SMALL_GRID,
    ]
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="report", overrides=overrides)
    summary = evaluate(cfg)
    assert set(summary) == {"model", "ThreshWater"}
    assert set(summary["model"]) == {"id_test", "ood_test", "all"}
    with open(tmp_path / "outputs" / "report" / "per_sample.csv") as f:
        rows = list(csv.DictReader(f))
    assert sorted((r["method"], r["split"]) for r in rows) == [
        ("ThreshWater", "id_test"),
        ("ThreshWater", "ood_test"),
        ("model", "id_test"),
        ("model", "ood_test"),
    ]
    assert (tmp_path / "docs" / "results" / "scores.png").stat().st_size > 5000
    text = md.read_text()
    assert text.startswith("# Results\n\nwritten by hand") and text.endswith("by hand too\n")
    assert "old" not in text and "| id_test | model |" in text
    for name in text.split("](results/")[1:]:  # every figure the page links exists
        assert (md.parent / "results" / name.split(")")[0]).exists()
    assert json.loads((tmp_path / "outputs" / "report" / "summary.json").read_text())["timing"]
    # a second run reuses the predictions and replaces the generated block only
    evaluate(cfg)
    assert md.read_text().count(BEGIN) == 1 and md.read_text().endswith("by hand too\n")

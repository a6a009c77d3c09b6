"""The evaluation report (``evaluate.py --config-name report``) end to end on a tiny dataset.

It lives beside the inference tests for their tiny untrained checkpoint: the report runs predict.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from particleseg.config import CONF_DIR
from particleseg.evaluation import sample_digest, scans_digest
from particleseg.evaluation.tables import BEGIN, END
from particleseg.io import read_volume
from particleseg.synth.dataset import build_dataset
from particleseg.tasks import evaluate

ROOT = Path(__file__).resolve().parents[2]
SMALL_GRID = [
    "baselines.threshwater.tune.threshold_offsets=[0.0]",
    "baselines.threshwater.tune.noise_erosions=[1]",
    "baselines.threshwater.tune.seed_erosions=[1,2]",
    "baselines.threshwater.tune.max_samples=1",
    "baselines.snow.tune.threshold_offsets=[0.0]",
    "baselines.snow.tune.sigmas=[0.4]",
    "baselines.snow.tune.r_maxes=[3]",
    "baselines.snow.tune.max_samples=1",
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
    other = tmp_path / "other"  # a second dataset, as the independent OOD split is
    build_dataset(other, {"ood_test": split}, mode="fast", seed=5, progress=False)
    md = tmp_path / "docs" / "results.md"
    md.parent.mkdir()
    md.write_text(f"# Results\n\nwritten by hand\n\n{BEGIN}\nold\n{END}\n\n## Soil\nby hand too\n")
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\n<!-- results:begin -->\nold\n<!-- results:end -->\nrest\n")
    overrides = [
        f"paths.root={tmp_path}",
        f"dataset={data}",
        f"checkpoint={tiny_checkpoint}",
        f"tests.ood_indep.dataset={other}",
        "+predict.inference.engine=torch",
        "+predict.inference.precision=fp32",
        *SMALL_GRID,
    ]
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="report", overrides=overrides)
    summary = evaluate(cfg)
    assert set(summary) == {"model", "ThreshWater", "SNOW"}
    assert set(summary["model"]) == {"id_test", "hard_test", "ood_indep", "all"}
    with open(tmp_path / "outputs" / "report" / "per_sample.csv") as f:
        rows = list(csv.DictReader(f))
    assert sorted((r["method"], r["split"], r["sample"]) for r in rows) == sorted(
        (m, t, s)
        for m in ("model", "ThreshWater", "SNOW")
        for t, s in (
            ("id_test", "id_test_000"),
            ("hard_test", "ood_test_000"),
            ("ood_indep", "ood_test_000"),
        )
    )
    assert (tmp_path / "docs" / "results" / "scores.png").stat().st_size > 5000
    text = md.read_text()
    assert text.startswith("# Results\n\nwritten by hand") and text.endswith("by hand too\n")
    assert "old" not in text and "| id_test | model |" in text and "| ood_indep | SNOW |" in text
    doc = json.loads((tmp_path / "outputs" / "report" / "summary.json").read_text())
    assert f"(scans {doc['scans']['id_test']['sha256'][:12]})" in text  # which scans, by digest
    table = readme.read_text()
    assert (
        "| hard_test | ThreshWater |" in table and "old" not in table and table.endswith("rest\n")
    )
    for name in text.split("](results/")[1:]:  # every figure the page links exists
        assert (md.parent / "results" / name.split(")")[0]).exists()
    assert json.loads((tmp_path / "outputs" / "report" / "summary.json").read_text())["timing"]
    # a second run reuses the predictions and replaces the generated block only
    evaluate(cfg)
    assert md.read_text().count(BEGIN) == 1 and md.read_text().endswith("by hand too\n")


def test_report_without_a_page_leaves_docs_alone(tiny_checkpoint, tmp_path):
    data = tmp_path / "synth"
    split = {"n": 1, "shape": [20, 40, 40], "scene": {"size_median_px": 8}, "ct": {}}
    build_dataset(data, {"train": split, "id_test": split}, mode="fast", seed=4, progress=False)
    overrides = [
        f"paths.root={tmp_path}",
        f"dataset={data}",
        f"checkpoint={tiny_checkpoint}",
        "~tests.hard_test",
        "~tests.ood_indep",
        "results_md=null",
        f"output_dir={tmp_path / 'row'}",
        "+predict.inference.engine=torch",
        "+predict.inference.precision=fp32",
        *SMALL_GRID,
    ]
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="report", overrides=overrides)
    summary = evaluate(cfg)
    assert set(summary["model"]) == {"id_test"}
    doc = json.loads((tmp_path / "row" / "summary.json").read_text())
    ((name, digest),) = doc["scans"]["id_test"]["samples"].items()  # which scans exactly
    scan, labels = (read_volume(data / kind / f"{name}.tif") for kind in ("images", "labels"))
    assert digest == sample_digest(scan, labels)
    assert doc["scans"]["id_test"]["sha256"] == scans_digest([(name, digest)])
    assert (tmp_path / "row" / "figures" / "scores.png").exists()
    assert not (tmp_path / "docs").exists()


def test_report_names_a_test_set_that_is_not_built(tiny_checkpoint, tmp_path):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(
            config_name="report",
            overrides=[f"paths.root={tmp_path}", f"checkpoint={tiny_checkpoint}"],
        )
    with pytest.raises(ValueError, match="not built"):
        evaluate(cfg)

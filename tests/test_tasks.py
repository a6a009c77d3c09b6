import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from particleseg.config import CONF_DIR
from particleseg.io import load_dataset, read_volume, write_volume
from particleseg.synth.dataset import build_dataset
from particleseg.tasks import evaluate

ROOT = Path(__file__).resolve().parents[1]
SMALL_GRID = [
    "baseline.tune.threshold_offsets=[0.0]",
    "baseline.tune.noise_erosions=[0,1]",
    "baseline.tune.seed_erosions=[1,2]",
    "baseline.tune.max_samples=1",
]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("synth")
    scene = {"size_median_px": 8, "size_range_px": [4, 16], "packing": 0.2}
    split = {"n": 1, "shape": [24, 56, 56], "scene": scene, "ct": {"photons": 2000}}
    splits = {"train": split, "id_test": split, "ood_test": {**split, "n": 2}}
    build_dataset(folder, splits, mode="fast", seed=1, progress=False)
    return folder


def compose_evaluate(overrides):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="evaluate", overrides=overrides)


def test_evaluate_threshwater_writes_table_summary_and_plots(demo, tmp_path, capsys):
    cfg = compose_evaluate([f"dataset={demo}", f"output_dir={tmp_path}", *SMALL_GRID])
    summary = evaluate(cfg)
    assert set(summary) == {"id_test", "ood_test", "all"}
    for split in ("id_test", "ood_test"):
        assert 0.0 <= summary[split]["mean"]["f1_instance"] <= 1.0
    with open(tmp_path / "per_sample.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["sample"] for r in rows] == [
        e.name for s in ("id_test", "ood_test") for e in load_dataset(demo).split(s)
    ]
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert saved["method"] == "ThreshWater"
    assert (tmp_path / "threshwater_params.json").exists()
    for metric in ("f1", "f1_match", "f1_instance", "merger_ratio", "splitter_ratio", "pq"):
        assert (tmp_path / f"{metric}.png").stat().st_size > 1000
    out = capsys.readouterr().out
    assert "f1_instance" in out and "size distribution, relative error" in out
    assert all(r["count_rel_error"] not in ("", None) for r in rows)


def test_evaluate_perfect_predictions_score_one(demo, tmp_path):
    pred_dir = tmp_path / "pred"
    dataset = load_dataset(demo)
    for entry in dataset.split("id_test") + dataset.split("ood_test"):
        write_volume(pred_dir / f"{entry.name}.npy", np.asarray(read_volume(entry.label)))
    cfg = compose_evaluate(
        [f"dataset={demo}", f"predictions={pred_dir}", f"output_dir={tmp_path / 'out'}"]
    )
    summary = evaluate(cfg)
    for key in ("f1", "f1_match", "f1_instance", "pq"):
        assert summary["all"]["mean"][key] == pytest.approx(1.0)
    assert summary["all"]["mean"]["merger_ratio"] == 0.0
    assert all(v == 0.0 for v in summary["all"]["mean_abs"].values())  # same size distribution


def test_evaluate_missing_prediction_names_sample(demo, tmp_path):
    (tmp_path / "pred").mkdir()
    cfg = compose_evaluate(
        [f"dataset={demo}", f"predictions={tmp_path / 'pred'}", f"output_dir={tmp_path / 'out'}"]
    )
    with pytest.raises(ValueError, match="no prediction for sample 'id_test_"):
        evaluate(cfg)


def test_evaluate_bad_dataset_folder(tmp_path):
    cfg = compose_evaluate([f"dataset={tmp_path}", f"output_dir={tmp_path / 'out'}"])
    with pytest.raises(ValueError, match=str(tmp_path)):
        evaluate(cfg)


def test_evaluate_entry_point_as_a_user_runs_it(demo, tmp_path):
    out = tmp_path / "run"
    result = subprocess.run(
        [
            sys.executable,
            "evaluate.py",
            f"dataset={demo}",
            f"output_dir={out}",
            "splits=[ood_test]",
            *SMALL_GRID,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "ThreshWater" in result.stdout and (out / "summary.json").exists()
    assert json.loads((out / "summary.json").read_text())["config"]["dataset"] == str(demo)
    assert not (out / ".hydra").exists() and not (out / "evaluate.log").exists()


@pytest.mark.parametrize(
    "args,message",
    [
        (["input=missing.tif"], "missing.tif: input not found"),
        (["input={tmp}/scan.npy", "particle_size_px=5", "model=nope.ckpt"], "nope.ckpt: model"),
        (
            ["input={tmp}/scan.npy", "particle_size_px=5", "checkpoint={tmp}/text.ckpt"],
            "text.ckpt: not a PyTorch model file",
        ),
        (
            ["input={tmp}/scan.npy", "particle_size_px=5", "output={tmp}/text.ckpt"],
            "text.ckpt: the output must be a folder",
        ),
        (
            ["input={tmp}/scan.npy", "particle_size_px=50"],
            "scan.npy: the scan of shape (20, 20, 20)",
        ),
    ],
)
def test_predict_without_usable_input_says_how(args, message, tmp_path):
    np.save(tmp_path / "scan.npy", np.arange(8000, dtype=np.uint16).reshape(20, 20, 20))
    (tmp_path / "text.ckpt").write_text("hello\n")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    if not any(a.startswith("output=") for a in args):
        args.append(f"output={tmp_path / 'out'}")
    result = subprocess.run(
        [sys.executable, "predict.py", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "args", [["dataset={tmp}/none"], ["--config-name", "report", "dataset={tmp}/none"]]
)
def test_evaluate_bad_dataset_is_a_message_not_a_traceback(args, tmp_path):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    result = subprocess.run(
        [sys.executable, "evaluate.py", f"output_dir={tmp_path / 'run'}", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert f"{tmp_path}/none" in result.stderr and "Traceback" not in result.stderr
    if "report" not in args:  # the report keeps its log in its folder
        assert not (tmp_path / "run").exists()  # a failed run leaves no folder


def test_train_on_a_missing_dataset_is_a_message_and_leaves_no_run(tmp_path):
    run = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "train.py", f"dataset={tmp_path}/none", f"hydra.run.dir={run}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert f"{tmp_path}/none: dataset file not found" in result.stderr
    assert "Traceback" not in result.stderr and not run.exists()
    debug = subprocess.run(
        [sys.executable, "train.py", "--debug", f"dataset={tmp_path}/none", f"hydra.run.dir={run}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert debug.returncode != 0 and "Traceback" in debug.stderr + debug.stdout


@pytest.mark.parametrize(
    "script,must,must_not",
    [
        (
            "predict.py",
            ["Usage: particleseg predict", "particle_size_px", "checkpoint="],
            ["experiment"],
        ),
        ("evaluate.py", ["Usage: particleseg evaluate", "baseline=snow"], ["experiment", "sweep"]),
        ("train.py", ["Usage: particleseg train", "experiment=", "resume=RUN_DIR"], ["baseline="]),
    ],
)
def test_help_is_written_for_people_and_names_only_its_own_settings(script, must, must_not):
    done = subprocess.run(
        [sys.executable, script, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    for text in must:
        assert text in done.stdout, text
    for text in must_not:
        assert text not in done.stdout, text
    assert "Examples:" in done.stdout and "Traceback" not in done.stderr


def test_train_without_wandb_says_to_install_the_train_extra_or_log_to_csv(monkeypatch):
    import importlib.util

    from omegaconf import OmegaConf

    from particleseg.tasks.train import check_logger_installed

    wandb = {"wandb": {"_target_": "lightning.pytorch.loggers.WandbLogger"}}
    csv = {"csv": {"_target_": "lightning.pytorch.loggers.CSVLogger"}}
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n == "wandb" else find_spec(n, *a)
    )
    with pytest.raises(ValueError, match=r"particleseg\[train\]'.*logger=csv"):
        check_logger_installed(OmegaConf.create({"logger": {**wandb, **csv}}))
    check_logger_installed(OmegaConf.create({"logger": csv}))
    check_logger_installed(OmegaConf.create({"logger": None}))

"""train.py end to end on a tiny generated dataset.

Every experiment composes and runs fast_dev_run, a short run validates and checkpoints, resume
continues it, and a two-point sweep returns the metric per run.
"""

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

import particleseg.config  # noqa: F401
from particleseg.config import CONF_DIR
from particleseg.inference.model import load_checkpoint
from particleseg.synth.dataset import build_dataset
from particleseg.tasks import train

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))

# Shrinks any experiment to something a CPU runs in seconds (the network and patch only).
TINY = [
    "patch_size=[16,16,16]",
    "target_particle_size=8",
    "border_thickness=1",
    "model.net.n_stages=3",
    "model.net.features_base=4",
    "model.net.features_max=8",
    "data.n_folds=2",
    "data.num_workers=0",
    "data.batch_size=2",
    "data.val_crop_size=[24,24,24]",
    "data.val_crops_per_sample=1",
    "data.touching_min_bbox_voxels=27",
    "trainer.accelerator=cpu",
]


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny")
    scene = {"size_median_px": 8, "size_range_px": [5, 14], "packing": 0.25}
    split = {"n": 4, "shape": [24, 48, 48], "scene": scene, "ct": {"photons": 3000}}
    build_dataset(
        folder,
        {"train": split, "val": {**split, "n": 1}, "id_test": {**split, "n": 1}},
        mode="fast",
        seed=2,
        progress=False,
    )
    return folder


def compose_train(overrides):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="train", overrides=overrides)


def paths(tmp_path):
    # composed without a Hydra run: give the paths that would come from hydra:runtime
    return [
        f"paths.root={tmp_path}",
        f"paths.output_dir={tmp_path}",
        f"paths.cache_dir={tmp_path / 'cache'}",
    ]


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_composes_and_runs_fast_dev_run(experiment, tiny_dataset, tmp_path):
    cfg = compose_train(
        [
            f"experiment={experiment}",
            "debug=fdr",
            f"dataset={tiny_dataset}",
            "init_weights=null",  # the shrunk network fits no trained checkpoint
            *paths(tmp_path),
            *TINY,
        ]
    )
    assert cfg.trainer.fast_dev_run
    train(cfg)


@pytest.mark.parametrize(("native", "expected"), [(True, "bf16-mixed"), (False, "32-true")])
def test_cpu_small_trains_in_bf16_only_where_the_cpu_has_it(
    monkeypatch, tiny_dataset, tmp_path, native, expected
):
    """trainer.precision=auto: on a CPU without bf16 units, bf16 autocast is emulated and a
    step took minutes instead of seconds (particleseg.precision)."""
    import particleseg.precision
    from particleseg.training import build

    monkeypatch.setattr(particleseg.precision, "cpu_has_bf16", lambda: native)
    cfg = compose_train(
        ["experiment=cpu_small", f"dataset={tiny_dataset}", "logger=none", *paths(tmp_path), *TINY]
    )
    assert cfg.trainer.precision == "auto"
    _, _, trainer = build(cfg)
    assert trainer.precision == expected


def test_paper_experiment_keeps_the_recipe():
    cfg = compose_train(["experiment=paper"])
    assert cfg.target_particle_size == 60 and cfg.border_thickness == 3
    assert list(cfg.patch_size) == [128, 128, 128]
    assert cfg.trainer.max_epochs == 1000 and cfg.data.iterations_per_epoch == 250
    assert cfg.data.batch_size == 2 and cfg.model.net.features_max == 320
    opt = cfg.model.module.optimizer
    assert (opt.lr, opt.momentum, opt.nesterov, opt.weight_decay) == (0.01, 0.99, True, 3e-5)
    assert cfg.model.module.scheduler.power == 0.9 and cfg.trainer.gradient_clip_val == 12
    # defined once, interpolated everywhere
    assert cfg.data.border_thickness == cfg.model.module.border_thickness == 3
    assert cfg.callbacks.instance_metrics.border_thickness == 3
    assert cfg.data.touching.border_thickness == 3


@pytest.mark.slow
def test_paper_experiment_fast_dev_run_unshrunk(tiny_dataset, tmp_path):
    cfg = compose_train(
        [
            "experiment=paper",
            "debug=fdr",
            f"dataset={tiny_dataset}",
            *paths(tmp_path),
            "data.n_folds=2",
            "data.touching_min_bbox_voxels=27",
        ]
    )
    train(cfg)


def test_short_run_validates_checkpoints_and_resumes(tiny_dataset, tmp_path):
    run_dir = tmp_path / "run"
    common = [
        f"dataset={tiny_dataset}",
        "logger=csv",
        *TINY,
        "data.iterations_per_epoch=3",
        "trainer.check_val_every_n_epoch=1",
        f"paths.cache_dir={tmp_path / 'cache'}",
    ]
    cmd = [sys.executable, str(ROOT / "train.py"), f"hydra.run.dir={run_dir}", *common]
    subprocess.run([*cmd, "trainer.max_epochs=2"], check=True, cwd=tmp_path)
    result = json.loads((run_dir / "result.json").read_text())
    assert 0.0 <= result["best_score"] <= 1.0
    assert result["precision"] == "32-true"  # the default trainer's
    assert (run_dir / "checkpoints" / "last.ckpt").exists()
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    meta = ckpt["particleseg"]
    assert meta["target_particle_size"] == 8 and meta["border_thickness"] == 1
    assert meta["normalization"]["scheme"] == "percentile"  # the default for new models
    assert meta["normalization"]["upper"] > meta["normalization"]["lower"]
    assert meta["net_config"]["n_stages"] == 3
    assert ckpt["global_step"] == 6
    model = load_checkpoint(run_dir / "checkpoints" / "best.ckpt")  # no training config needed
    assert model.target_particle_size == 8 and model.patch_size == (16, 16, 16)
    with torch.no_grad():
        assert model.net(torch.zeros(1, 1, 16, 16, 16)).shape == (1, 3, 16, 16, 16)
    with open(run_dir / "csv" / "version_0" / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r.get("val/f1_instance")]
    assert len(rows) == 2
    assert list((run_dir / "examples").glob("epoch_*.png"))
    assert (run_dir / "curves.png").stat().st_size > 1000
    assert "${" not in (run_dir / "config_resolved.yaml").read_text()
    # resume with one override (plus one that extends the run)
    resume = [sys.executable, str(ROOT / "train.py"), f"resume={run_dir}", "trainer.max_epochs=3"]
    subprocess.run(resume, check=True, cwd=tmp_path)
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["global_step"] == 9  # one more epoch of 3 iterations ran after the first two
    with open(run_dir / "csv" / "version_1" / "metrics.csv") as f:  # the resumed part
        rows = [r for r in csv.DictReader(f) if r.get("val/f1_instance")]
    assert [r["epoch"] for r in rows] == ["2"]


def test_resume_of_missing_run_is_a_clear_error(tmp_path):
    cfg = compose_train([f"resume={tmp_path / 'nope'}", *paths(tmp_path)])
    with pytest.raises(ValueError, match="cannot resume"):
        train(cfg)


def test_two_point_sweep_returns_the_metric_per_run(tiny_dataset, tmp_path):
    sweep_dir = tmp_path / "sweep"
    cmd = [
        sys.executable,
        str(ROOT / "train.py"),
        "sweep=particle_size_border",
        "target_particle_size=7,9",
        "border_thickness=1",
        f"hydra.sweep.dir={sweep_dir}",
        f"dataset={tiny_dataset}",
        "logger=none",
        *TINY[:1],
        *TINY[2:],
        "data.iterations_per_epoch=2",
        "trainer.max_epochs=1",
        "trainer.check_val_every_n_epoch=1",
        f"paths.cache_dir={tmp_path / 'cache'}",
    ]
    subprocess.run(cmd, check=True, cwd=tmp_path)
    with open(sweep_dir / "sweep_summary.csv") as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["target_particle_size"] for r in rows) == ["7", "9"]
    assert all(0.0 <= float(r["val/f1_instance"]) <= 1.0 for r in rows)


def test_load_checkpoint_refuses_foreign_files(tmp_path):
    torch.save({"state_dict": {}}, tmp_path / "other.ckpt")
    with pytest.raises(ValueError, match="no particleseg metadata"):
        load_checkpoint(tmp_path / "other.ckpt")
    (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=r"junk.ckpt: not a PyTorch model file.*b'not '"):
        load_checkpoint(tmp_path / "junk.ckpt")
    (tmp_path / "cut.ckpt").write_bytes((tmp_path / "other.ckpt").read_bytes()[:200])
    with pytest.raises(ValueError, match=r"cut.ckpt: cannot read the model file \("):
        load_checkpoint(tmp_path / "cut.ckpt")
    with pytest.raises(ValueError, match="not found"):
        load_checkpoint(tmp_path / "missing.ckpt")


def test_init_weights_starts_the_network_from_a_checkpoint(tmp_path):
    from particleseg.models import UNet
    from particleseg.training import load_net_weights

    small = {"in_channels": 1, "num_classes": 3, "n_stages": 3, "features_base": 4}
    source = UNet(**small, features_max=8)
    ckpt = tmp_path / "source.ckpt"
    state = {f"net.{k}": v for k, v in source.state_dict().items()}
    torch.save({"state_dict": {**state, "other.w": torch.zeros(1)}}, ckpt)
    target = UNet(**small, features_max=8)
    load_net_weights(target, ckpt)
    for k, v in source.state_dict().items():
        assert torch.equal(target.state_dict()[k], v), k
    with pytest.raises(ValueError, match="does not match model.net"):
        load_net_weights(UNet(**small, features_max=16), ckpt)
    with pytest.raises(ValueError, match="checkpoint not found"):
        load_net_weights(target, tmp_path / "missing.ckpt")


def test_last_checkpoint_is_the_last_epoch_even_without_improvement(tiny_dataset, tmp_path):
    # validation after epoch 1 only: epoch 2 neither validates nor improves best.ckpt, and
    # last.ckpt must still hold it (resume continues from there)
    cfg = compose_train(
        [
            f"dataset={tiny_dataset}",
            "logger=none",
            *paths(tmp_path),
            *TINY,
            "data.iterations_per_epoch=3",
            "trainer.max_epochs=3",
            "trainer.check_val_every_n_epoch=2",
        ]
    )
    train(cfg)
    last = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    best = torch.load(tmp_path / "checkpoints" / "best.ckpt", weights_only=True)
    assert last["global_step"] == 9 and best["global_step"] == 6

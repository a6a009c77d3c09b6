import functools

import numpy as np
import pytest
import torch

from particleseg.models import UNet
from particleseg.models.callbacks import InstanceMetrics, example_panel
from particleseg.models.module import CHECKPOINT_KEY, BorderCoreModule
from particleseg.synth import packed_ellipsoids
from particleseg.targets import instance_to_border_core


def tiny_module(**kw):
    net = UNet(n_stages=3, features_base=4, features_max=8)
    opt = functools.partial(
        torch.optim.SGD, lr=0.01, momentum=0.99, nesterov=True, weight_decay=3e-5
    )
    sched = functools.partial(torch.optim.lr_scheduler.PolynomialLR, power=0.9)
    return BorderCoreModule(net, opt, sched, patch_size=(16, 16, 16), **kw)


class FakeTrainer:
    max_epochs = 10


def test_poly_schedule_per_epoch_matches_formula():
    m = tiny_module()
    m._trainer = FakeTrainer()
    conf = BorderCoreModule.configure_optimizers(m)
    opt, sched = conf["optimizer"], conf["lr_scheduler"]["scheduler"]
    assert conf["lr_scheduler"]["interval"] == "epoch"
    assert opt.defaults["nesterov"] and opt.defaults["momentum"] == 0.99
    for epoch in range(10):
        assert opt.param_groups[0]["lr"] == pytest.approx(0.01 * (1 - epoch / 10) ** 0.9)
        opt.step()
        sched.step()


def test_training_step_and_validation_prediction_shapes():
    m = tiny_module()
    batch = {
        "image": torch.randn(2, 1, 16, 16, 16),
        "label": torch.randint(0, 3, (2, 1, 16, 16, 16)),
    }
    m.train()
    loss = m.training_step(batch, 0)
    assert loss.ndim == 0 and torch.isfinite(loss)
    m.eval()
    out = m.validation_step({"image": torch.randn(1, 1, 20, 24, 28)}, 0)
    assert out["border_core"].shape == (1, 20, 24, 28) and out["border_core"].dtype == torch.uint8


def test_checkpoint_metadata_round_trip():
    m = tiny_module(target_particle_size=24, border_thickness=2)
    m.normalization = {"scheme": "global_zscore", "mean": 1.0, "std": 2.0}
    m.net_config = {"_target_": "particleseg.models.UNet", "n_stages": 3}
    ckpt = {}
    m.on_save_checkpoint(ckpt)
    meta = ckpt[CHECKPOINT_KEY]
    assert meta["target_particle_size"] == 24.0 and meta["border_thickness"] == 2
    assert meta["patch_size"] == [16, 16, 16]
    other = tiny_module()
    other.on_load_checkpoint(ckpt)
    assert other.normalization == m.normalization and other.net_config == m.net_config
    assert meta["intensity_stats"] == {"mean": 1.0, "std": 2.0}  # read by older versions


def test_checkpoint_of_an_older_version_loads_as_global_zscore():
    m = tiny_module()
    m.on_load_checkpoint({CHECKPOINT_KEY: {"intensity_stats": {"mean": 5.0, "std": 3.0}}})
    assert m.normalization == {"scheme": "global_zscore", "mean": 5.0, "std": 3.0}


def test_per_scan_normalization_is_stored_without_zscore_stats():
    m = tiny_module()
    m.normalization = {"scheme": "percentile", "lower": 0.01, "upper": 0.99}
    ckpt = {}
    m.on_save_checkpoint(ckpt)
    assert ckpt[CHECKPOINT_KEY]["normalization"]["scheme"] == "percentile"
    assert ckpt[CHECKPOINT_KEY]["intensity_stats"] is None


class _Trainer:
    sanity_checking = False
    current_epoch = 0
    is_global_zero = True
    loggers = []

    def __init__(self, root):
        self.default_root_dir = str(root)


class _Module:
    def __init__(self):
        self.logged = {}

    def log(self, name, value, **kw):
        self.logged[name] = value


def test_metric_callback_scores_perfect_and_empty_predictions(tmp_path):
    ref = packed_ellipsoids((24, 40, 40), 10, (3, 6), seed=1).astype(np.uint32)
    bc = instance_to_border_core(ref, 1)
    cb = InstanceMetrics(border_thickness=1, min_relative_size=0.0)
    trainer, module = _Trainer(tmp_path), _Module()
    cb.on_validation_epoch_start(trainer, module)
    batch = {
        "image": torch.from_numpy(ref > 0).float()[None, None],
        "instances": torch.from_numpy(ref.astype(np.int64))[None],
    }
    cb.on_validation_batch_end(
        trainer, module, {"border_core": torch.from_numpy(bc)[None]}, batch, 0
    )
    # a prediction with everything as background scores zero particles
    empty = torch.zeros(1, *ref.shape, dtype=torch.uint8)
    cb.on_validation_batch_end(trainer, module, {"border_core": empty}, batch, 1)
    cb.on_validation_epoch_end(trainer, module)
    # mean of ~1 (the border-core round trip of touching ellipsoids is near exact) and 0
    assert module.logged["val/f1_instance"] == pytest.approx(0.5, abs=0.005)
    assert module.logged["val/f1_match"] == pytest.approx(0.5)
    assert set(module.logged) == {
        f"val/{k}"
        for k in ("f1", "f1_match", "f1_instance", "merger_ratio", "splitter_ratio", "pq")
    }
    assert (tmp_path / "examples" / "epoch_0000.png").exists()


def test_example_panel_shape():
    img = np.random.default_rng(0).normal(size=(8, 10, 12)).astype(np.float32)
    lab = np.zeros((8, 10, 12), np.uint8)
    panel = example_panel(img, lab, lab)
    assert panel.shape == (10, 36, 3) and panel.dtype == np.uint8


@pytest.mark.parametrize("native", [True, False])
def test_validation_autocasts_only_where_the_device_has_bf16(monkeypatch, native):
    """Emulated bf16 is far slower than fp32: val_autocast applies only on native hardware."""
    import particleseg.models.module as module

    seen = []

    def fake_predict(net, image, patch, overlap, autocast):
        seen.append(autocast)
        return torch.zeros((image.shape[0], 3, *image.shape[2:]))

    monkeypatch.setattr(module, "predict_probabilities", fake_predict)
    monkeypatch.setattr(module, "bf16_native", lambda device: native)
    tiny_module(val_autocast=True).predict_border_core(torch.zeros(1, 1, 16, 16, 16))
    tiny_module(val_autocast=False).predict_border_core(torch.zeros(1, 1, 16, 16, 16))
    assert seen == [native, False]

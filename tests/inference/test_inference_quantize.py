"""int8 quantization: the second model file, its calibration crops, and its refusal when stale.

Quantizing and running OpenVINO happen in a child process (tests/conftest.py says why).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from inference_helpers import labelled_dataset, write_checkpoint

from particleseg.inference import engines
from particleseg.inference.engines import choose
from particleseg.inference.model import load_checkpoint
from particleseg.inference.quantize import calibration_crops, int8_path, main
from particleseg.io import load_dataset, read_volume

pytest.importorskip("openvino")
pytest.importorskip("nncf")
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def val_dataset(tmp_path_factory):
    return labelled_dataset(tmp_path_factory.mktemp("val"), "val")


def test_int8_runs_with_openvino_on_a_cpu_only(monkeypatch):
    monkeypatch.setattr(engines, "openvino_available", lambda: True)
    assert choose("auto", "int8", CPU) == ("openvino", "int8")
    assert choose("openvino", "int8", CPU) == ("openvino", "int8")
    with pytest.raises(ValueError, match="int8 runs with OpenVINO on the CPU"):
        choose("torch", "int8", CPU)
    with pytest.raises(ValueError, match="int8 runs with OpenVINO on the CPU"):
        choose("auto", "int8", torch.device("cuda"))
    monkeypatch.setattr(engines, "openvino_available", lambda: False)
    with pytest.raises(ValueError, match="int8 needs OpenVINO"):
        choose("auto", "int8", CPU)


def test_calibration_crops_are_seeded_normalized_windows_of_the_split(tiny_checkpoint, val_dataset):
    model = load_checkpoint(tiny_checkpoint)
    crops = calibration_crops(model, val_dataset, "val", n_crops=5, seed=1)
    assert len(crops) == 5 and all(c.shape == (1, 1, 16, 16, 16) for c in crops)
    assert all(c.dtype == np.float32 for c in crops)
    again = calibration_crops(model, val_dataset, "val", n_crops=5, seed=1)
    assert all(np.array_equal(a, b) for a, b in zip(crops, again, strict=True))
    # normalized as predict normalizes (the tiny model's z-score: mean 100, std 20): undone,
    # the crops are the uint16 scans' grey values
    images = [read_volume(e.image) for e in load_dataset(val_dataset).split("val")]
    low, high = min(int(i.min()) for i in images), max(int(i.max()) for i in images)
    for crop in crops:
        raw = crop.astype(np.float64) * 20 + 100
        np.testing.assert_allclose(raw, np.round(raw), atol=0.02)
        assert low - 0.02 <= raw.min() and raw.max() <= high + 0.02 and raw.std() > 0
    with pytest.raises(ValueError, match="split 'train' has no scans"):
        calibration_crops(model, val_dataset, "train")


def test_the_command_refuses_a_test_split_and_a_missing_model(
    tiny_checkpoint, val_dataset, tmp_path, capsys
):
    for args, message in [
        ([str(tiny_checkpoint), str(val_dataset), "--split", "id_test"], "not a test"),
        ([str(tmp_path / "none.ckpt"), str(val_dataset)], "model file not found"),
    ]:
        with pytest.raises(SystemExit) as exit_info:
            main(args)
        assert exit_info.value.code == 2 and message in capsys.readouterr().err
    assert not int8_path(tiny_checkpoint).exists()


def test_int8_windows_follow_fp32_and_a_stale_file_is_refused(val_dataset, tmp_path):
    trained = write_checkpoint(tmp_path / "t.ckpt", normalization={"scheme": "percentile"})
    model = tmp_path / "m.ckpt"
    export = [sys.executable, "-m", "particleseg.inference.export", str(trained), str(model)]
    done = subprocess.run([*export, "--int8", str(val_dataset)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "m.int8.xml (+ .bin" in done.stdout
    assert int8_path(model).is_file() and int8_path(model).with_suffix(".bin").is_file()
    args = f"{str(model)!r}, {str(val_dataset)!r}"
    code = f"import test_inference_quantize as t; t.quantize_and_compare({args})"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=Path(__file__).parent, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("int8 ok")


def quantize_and_compare(model_path: str, dataset: str) -> None:
    """int8 windows agree with torch fp32; a model file changed after quantizing is refused."""
    from particleseg.inference.engines import make_engine
    from particleseg.inference.quantize import load_int8_ir

    model = load_checkpoint(model_path)
    # windows of the scans it was calibrated on, other draws: int8's activation ranges fit them
    x = torch.from_numpy(np.concatenate(calibration_crops(model, dataset, "val", 4, seed=9)))
    int8 = make_engine(model, {"engine": "auto", "precision": "int8"}, CPU)
    assert int8.describe() == {"engine": "openvino", "precision": "int8"}
    with torch.no_grad():
        want = model.net(x).float()
    got = int8.forward(x)
    assert got.shape == want.shape
    # an untrained net's classes are near ties, so argmax agreement says little here (~93%);
    # the logits' mean error is ~5% of their spread (a wrong input scale gives ~100%)
    err = (got - want).abs().mean().item() / want.std().item()
    print("relative error", err)
    assert err < 0.15
    assert load_int8_ir(model_path, (32, 16, 16)).input(0).get_partial_shape().to_shape()[2] == 32
    with open(model_path, "ab") as f:  # the model file changes: its int8 file no longer fits
        f.write(b"\0")
    try:
        make_engine(model, {"engine": "auto", "precision": "int8"}, CPU)
    except ValueError as err:
        assert "quantized from another model file" in str(err), err
    else:
        raise AssertionError("a stale int8 file was run")
    Path(model_path).unlink()
    int8_path(model_path).unlink()
    try:
        load_int8_ir(Path(model_path).with_name("other.ckpt"), (16, 16, 16))
    except ValueError as err:
        assert "no int8 model" in str(err), err
    print("int8 ok")

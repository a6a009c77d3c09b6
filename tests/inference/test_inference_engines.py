"""The inference engines: OpenVINO gives torch's windows; auto settings; the cached conversion.

OpenVINO runs in a child process (tests/conftest.py says why); the settings tests only resolve.
"""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from particleseg.inference import engines
from particleseg.inference.engines import choose, make_engine
from particleseg.inference.model import load_checkpoint
from particleseg.inference.windows import WindowSums

openvino = pytest.importorskip("openvino")
CPU = torch.device("cpu")


def test_auto_takes_openvino_on_a_cpu_and_torch_on_a_gpu(monkeypatch):
    monkeypatch.setattr(engines, "openvino_available", lambda: True)
    assert choose("auto", "fp32", CPU) == ("openvino", "fp32")
    assert choose("auto", "fp32", torch.device("cuda")) == ("torch", "fp32")
    monkeypatch.setattr(engines, "openvino_available", lambda: False)
    assert choose("auto", "fp32", CPU) == ("torch", "fp32")
    with pytest.raises(ValueError, match="pip install openvino"):
        choose("openvino", "fp32", CPU)


def test_auto_precision_is_bf16_only_where_the_cpu_has_it(monkeypatch):
    monkeypatch.setattr(engines, "openvino_available", lambda: True)
    monkeypatch.setattr(engines, "cpu_has_bf16", lambda: False)
    assert choose("torch", "auto", CPU) == ("torch", "fp32")
    monkeypatch.setattr(engines, "cpu_has_bf16", lambda: True)
    assert choose("torch", "auto", CPU) == ("torch", "bf16")
    assert choose("openvino", "bf16", CPU) == ("openvino", "bf16")


def test_openvino_bf16_is_recorded_as_the_f32_it_runs_without_bf16_units(monkeypatch, caplog):
    """OpenVINO computes in f32 where the CPU has no bf16 (its hint is a hint): the summary
    must not say bf16. torch emulates bf16 there, slowly: kept, with a warning."""
    monkeypatch.setattr(engines, "openvino_available", lambda: True)
    monkeypatch.setattr(engines, "cpu_has_bf16", lambda: False)
    with caplog.at_level("WARNING", logger=engines.__name__):
        assert choose("openvino", "bf16", CPU) == ("openvino", "fp32")
        assert choose("auto", "bf16", CPU) == ("openvino", "fp32")
        assert choose("torch", "bf16", CPU) == ("torch", "bf16")
    assert "OpenVINO runs f32" in caplog.text and "emulated" in caplog.text


def test_bad_settings_are_refused_by_name():
    with pytest.raises(ValueError, match="inference.engine must be one of"):
        choose("onnx", "fp32", CPU)
    with pytest.raises(ValueError, match="inference.precision must be one of"):
        choose("torch", "int4", CPU)
    with pytest.raises(ValueError, match="runs on the CPU"):
        choose("openvino", "fp32", torch.device("cuda"))


def test_openvino_windows_equal_torch_windows(tiny_checkpoint, tmp_path):
    args = f"{str(tiny_checkpoint)!r}, {str(tmp_path)!r}"
    code = f"import test_inference_engines as t; t.compare({args})"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=Path(__file__).parent, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("same windows")


def compare(checkpoint: str, cache: str) -> None:
    """Torch and OpenVINO windows of the same model agree; the IR is converted once."""
    tmp_path = Path(cache)
    model = load_checkpoint(checkpoint)
    image = torch.from_numpy(np.random.default_rng(0).normal(size=(24, 20, 28)).astype("f4"))
    starts = np.array([[0, 0, 0], [8, 4, 12], [8, 4, 0]])
    settings = {"precision": "fp32", "cache_dir": str(tmp_path)}
    ref = make_engine(model, {**settings, "engine": "torch"}, CPU)
    assert ref.describe() == {"engine": "torch", "precision": "fp32"} and ref.forward is model.net
    ov = make_engine(model, {**settings, "engine": "openvino"}, CPU)
    assert ov.describe() == {"engine": "openvino", "precision": "fp32"} and not ov.autocast
    want = WindowSums(ref.forward, model.patch_size)(image, starts)
    got = WindowSums(ov.forward, model.patch_size)(image, starts)
    np.testing.assert_allclose(got.numpy(), want.numpy(), atol=1e-4)
    # converted once: the cached IR is reused, keyed by the model file's hash and the window
    (xml,) = (tmp_path / "openvino").glob("*.xml")
    assert xml.with_suffix(".bin").exists() and "16x16x16" in xml.name
    openvino.convert_model = None  # a second conversion would fail
    again = make_engine(model, {**settings, "engine": "openvino"}, CPU)
    np.testing.assert_allclose(
        WindowSums(again.forward, model.patch_size)(image, starts).numpy(), got.numpy()
    )
    assert again.forward is ov.forward  # and compiled once per process (cost check, network)
    bf16 = make_engine(model, {**settings, "engine": "openvino", "precision": "bf16"}, CPU)
    if engines.cpu_has_bf16():
        assert bf16.forward is not ov.forward  # another precision is another compilation
    else:  # OpenVINO would run f32 anyway: the same compilation, recorded as what it is
        assert bf16.describe()["precision"] == "fp32" and bf16.forward is ov.forward
    print("same windows")

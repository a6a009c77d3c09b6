"""Training precision ``auto``: bf16 only where the device computes it natively."""

import pytest
import torch

from particleseg import precision


@pytest.fixture
def cpu_bf16(monkeypatch):
    def set_(native: bool):
        monkeypatch.setattr(precision, "cpu_has_bf16", lambda: native)

    return set_


@pytest.mark.parametrize(("native", "expected"), [(True, "bf16-mixed"), (False, "32-true")])
def test_auto_takes_bf16_only_on_a_cpu_that_has_it(cpu_bf16, native, expected):
    cpu_bf16(native)
    assert precision.resolve_training_precision("auto", "cpu") == expected
    assert precision.bf16_native("cpu") is native


@pytest.mark.parametrize("given", ["bf16-mixed", "32-true", "16-mixed", 32])
def test_a_named_precision_is_kept_as_given(cpu_bf16, given):
    cpu_bf16(False)
    assert precision.resolve_training_precision(given, "cpu") == str(given)


def test_training_device_follows_lightnings_accelerator(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert precision.training_device("auto").type == "cpu"
    assert precision.training_device("cpu").type == "cpu"
    assert precision.training_device("gpu").type == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert precision.training_device("auto").type == "cuda"
    assert precision.training_device("CPU").type == "cpu"


def test_a_gpu_without_bf16_trains_in_fp32(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert precision.resolve_training_precision("auto", "gpu") == "32-true"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    assert precision.resolve_training_precision("auto", "auto") == "bf16-mixed"


def test_other_devices_are_not_taken_for_bf16():
    assert precision.bf16_native("meta") is False
    assert precision.resolve_training_precision("auto", "tpu") == "32-true"

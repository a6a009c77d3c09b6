import math

import pytest
import torch
from torch import nn

from particleseg.models import UNet


def tiny(**kwargs):
    defaults = {"n_stages": 3, "features_base": 4, "features_max": 16}
    return UNet(**(defaults | kwargs))


def test_deep_supervision_shapes_in_training():
    model = tiny(n_stages=4, num_classes=3).train()
    outs = model(torch.randn(2, 1, 16, 16, 16))
    assert isinstance(outs, list)
    assert len(outs) == 3
    assert [tuple(o.shape) for o in outs] == [(2, 3, 16, 16, 16), (2, 3, 8, 8, 8), (2, 3, 4, 4, 4)]


def test_eval_mode_returns_full_resolution_tensor():
    model = tiny(n_stages=4).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 1, 16, 8, 24))
    assert isinstance(out, torch.Tensor)
    assert out.shape == (1, 3, 16, 8, 24)


def test_no_deep_supervision_returns_tensor_in_training():
    model = tiny(deep_supervision=False, in_channels=2, num_classes=4).train()
    out = model(torch.randn(2, 2, 8, 8, 8))
    assert isinstance(out, torch.Tensor)
    assert out.shape == (2, 4, 8, 8, 8)


def test_default_features_and_paper_config_parameter_count():
    model = UNet()
    assert model.features == [32, 64, 128, 256, 320, 320]
    assert model.total_stride == (32, 32, 32)
    assert model.strides == [(1, 1, 1)] + [(2, 2, 2)] * 5
    for stage, feat in zip(model.encoder, model.features, strict=True):
        convs = [m for m in stage if isinstance(m, nn.Conv3d)]
        assert len(convs) == 2
        assert all(c.out_channels == feat for c in convs)
        assert all(isinstance(m, nn.InstanceNorm3d) and m.affine for m in stage if "Norm" in str(m))
    assert len(model.heads) == 5
    n_params = sum(p.numel() for p in model.parameters())
    print(f"UNet parameter count (128^3 paper config, 6 stages, 32..320): {n_params:,}")
    assert 10_000_000 < n_params < 40_000_000


def test_anisotropic_tuple_strides():
    model = tiny(n_stages=3, strides=[(1, 1, 1), (1, 2, 2), (2, 2, 2)]).train()
    assert model.total_stride == (2, 4, 4)
    outs = model(torch.randn(1, 1, 6, 12, 8))
    assert [tuple(o.shape) for o in outs] == [(1, 3, 6, 12, 8), (1, 3, 6, 6, 4)]
    ups = [m.stride for m in model.upsample]
    assert ups == [(2, 2, 2), (1, 2, 2)]


@pytest.mark.parametrize(
    ("shape", "match"),
    [
        ((1, 1, 16, 16), "5D"),
        ((1, 1, 12, 16, 16), r"divisible by the total stride \(8, 8, 8\)"),
        ((1, 2, 16, 16, 16), "input channels"),
    ],
)
def test_bad_input_raises(shape, match):
    model = tiny(n_stages=4)
    with pytest.raises(ValueError, match=match):
        model(torch.randn(*shape))


def test_bad_config_raises():
    with pytest.raises(ValueError, match="strides"):
        UNet(n_stages=3, strides=[1, 2])
    with pytest.raises(ValueError, match="norm"):
        UNet(norm="group")
    with pytest.raises(ValueError, match="nonlin"):
        UNet(nonlin="gelu")


@pytest.mark.parametrize(("norm", "cls"), [("batch", nn.BatchNorm3d), ("none", nn.Identity)])
def test_norm_options(norm, cls):
    model = tiny(norm=norm, nonlin="relu")
    assert any(isinstance(m, cls) for m in model.encoder[0])
    assert any(isinstance(m, nn.ReLU) for m in model.encoder[0])
    assert model(torch.randn(2, 1, 8, 8, 8))[0].shape == (2, 3, 8, 8, 8)


def test_he_initialisation():
    torch.manual_seed(0)
    model = UNet(n_stages=4, features_base=32)
    conv = model.encoder[2][0]  # 64 -> 128 channels, fan_in = 64 * 27
    fan_in = conv.in_channels * math.prod(conv.kernel_size)
    expected = math.sqrt(2.0 / (1 + 0.01**2) / fan_in)
    assert conv.weight.std().item() == pytest.approx(expected, rel=0.2)
    assert abs(conv.weight.mean().item()) < 0.1 * expected
    for m in model.modules():
        if isinstance(m, nn.Conv3d | nn.ConvTranspose3d):
            assert torch.all(m.bias == 0)

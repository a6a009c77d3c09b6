"""Plain 3D U-Net in the style of nnU-Net (``PlainConvUNet``), every knob a constructor argument.

Encoder stage ``i``: ``convs_per_stage`` x (Conv3d -> norm -> nonlin), the first conv of the stage
carrying the stride, with ``min(features_base * 2**i, features_max)`` channels. Decoder stage: a
transposed convolution upsampling by the matching encoder stride (kernel = stride), concatenation
of the skip, ``convs_per_stage`` x (Conv3d -> norm -> nonlin) and a 1x1x1 segmentation head.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

_NORMS = ("instance", "batch", "none")
_NONLINS = {"leakyrelu": 0.01, "relu": 0.0}

Triple = tuple[int, int, int]


def _triple(value: int | Sequence[int], name: str) -> Triple:
    if isinstance(value, int):
        out = (value, value, value)
    else:
        out = tuple(int(v) for v in value)
    if len(out) != 3 or any(v < 1 for v in out):
        raise ValueError(
            f"{name} must be a positive int or a 3-tuple of positive ints, got {value!r}"
        )
    return out  # type: ignore[return-value]


def _norm(norm: str, channels: int) -> nn.Module:
    if norm == "instance":
        return nn.InstanceNorm3d(channels, eps=1e-5, affine=True)
    if norm == "batch":
        return nn.BatchNorm3d(channels, eps=1e-5)
    return nn.Identity()


def _nonlin(nonlin: str) -> nn.Module:
    if nonlin == "leakyrelu":
        return nn.LeakyReLU(_NONLINS["leakyrelu"], inplace=True)
    return nn.ReLU(inplace=True)


class ConvBlock(nn.Sequential):
    """``n_convs`` x (Conv3d -> norm -> nonlin); the first conv carries the stride.

    Args:
        in_channels: Input channels.
        out_channels: Output channels of every conv.
        kernel_size: Conv kernel per axis (padding ``k // 2``, so odd kernels keep the size).
        stride: Stride of the first conv per axis.
        n_convs: Number of conv-norm-nonlin units.
        norm: ``"instance"``, ``"batch"`` or ``"none"``.
        nonlin: ``"leakyrelu"`` or ``"relu"``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Triple,
        stride: Triple,
        n_convs: int,
        norm: str,
        nonlin: str,
    ) -> None:
        layers: list[nn.Module] = []
        for j in range(n_convs):
            layers += [
                nn.Conv3d(
                    in_channels if j == 0 else out_channels,
                    out_channels,
                    kernel_size,
                    stride=stride if j == 0 else 1,
                    padding=tuple(k // 2 for k in kernel_size),
                    bias=True,
                ),
                _norm(norm, out_channels),
                _nonlin(nonlin),
            ]
        super().__init__(*layers)


class UNet(nn.Module):
    """nnU-Net-style plain 3D U-Net with optional deep supervision.

    Args:
        in_channels: Image channels ``C``.
        num_classes: Output classes (3 for border-core: background, core, border).
        n_stages: Encoder stages (resolutions), including the full-resolution one.
        features_base: Channels of the first stage; doubled per stage ...
        features_max: ... up to this cap (32, 64, 128, 256, 320, 320 for the defaults).
        kernel_size: Conv kernel, an int or a 3-tuple (Z, Y, X), the same for every stage.
        strides: Stride of the first conv of each stage, a list of ``n_stages`` ints or 3-tuples.
            ``None``: 1 for the first stage, 2 for the others.
        convs_per_stage: Conv-norm-nonlin units per encoder and decoder stage.
        norm: ``"instance"`` (InstanceNorm3d, affine), ``"batch"`` or ``"none"``.
        nonlin: ``"leakyrelu"`` (slope 0.01) or ``"relu"``.
        deep_supervision: In training mode, return the logits of every decoder stage.

    Raises:
        ValueError: On an unknown norm/nonlin or inconsistent stage settings.
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 3,
        n_stages: int = 6,
        features_base: int = 32,
        features_max: int = 320,
        kernel_size: int | Sequence[int] = 3,
        strides: Sequence[int | Sequence[int]] | None = None,
        convs_per_stage: int = 2,
        norm: str = "instance",
        nonlin: str = "leakyrelu",
        deep_supervision: bool = True,
    ) -> None:
        super().__init__()
        if n_stages < 2:
            raise ValueError(f"n_stages must be >= 2, got {n_stages}")
        if convs_per_stage < 1:
            raise ValueError(f"convs_per_stage must be >= 1, got {convs_per_stage}")
        if norm not in _NORMS:
            raise ValueError(f"norm must be one of {_NORMS}, got {norm!r}")
        if nonlin not in _NONLINS:
            raise ValueError(f"nonlin must be one of {tuple(_NONLINS)}, got {nonlin!r}")
        if strides is None:
            strides = [1] + [2] * (n_stages - 1)
        if len(strides) != n_stages:
            raise ValueError(
                f"strides needs {n_stages} entries (one per stage), got {len(strides)}"
            )

        self.in_channels = in_channels
        self.num_classes = num_classes
        self.n_stages = n_stages
        self.deep_supervision = deep_supervision
        self.kernel_size = _triple(kernel_size, "kernel_size")
        self.strides: list[Triple] = [_triple(s, f"strides[{i}]") for i, s in enumerate(strides)]
        self.features: list[int] = [
            min(features_base * 2**i, features_max) for i in range(n_stages)
        ]
        self.total_stride: Triple = tuple(  # type: ignore[assignment]
            math.prod(s[a] for s in self.strides) for a in range(3)
        )

        block = {"kernel_size": self.kernel_size, "n_convs": convs_per_stage}
        block |= {"norm": norm, "nonlin": nonlin}
        self.encoder = nn.ModuleList()
        channels = in_channels
        for feat, stride in zip(self.features, self.strides, strict=True):
            self.encoder.append(ConvBlock(channels, feat, stride=stride, **block))
            channels = feat

        # decoder[k] / upsample[k] / heads[k] work at the resolution of encoder stage
        # n_stages - 2 - k: index 0 is the lowest-resolution decoder stage.
        self.upsample = nn.ModuleList()
        self.decoder = nn.ModuleList()
        self.heads = nn.ModuleList()
        for i in range(n_stages - 2, -1, -1):
            up = self.strides[i + 1]
            self.upsample.append(
                nn.ConvTranspose3d(self.features[i + 1], self.features[i], up, stride=up)
            )
            self.decoder.append(
                ConvBlock(2 * self.features[i], self.features[i], stride=(1, 1, 1), **block)
            )
            self.heads.append(nn.Conv3d(self.features[i], num_classes, 1))

        self._init_weights(_NONLINS[nonlin])

    def _init_weights(self, negative_slope: float) -> None:
        """He (kaiming normal) init of every (transposed) conv weight, zero biases."""
        for module in self.modules():
            if isinstance(module, nn.Conv3d | nn.ConvTranspose3d):
                nn.init.kaiming_normal_(module.weight, a=negative_slope)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def _check_input(self, x: torch.Tensor) -> None:
        if x.ndim != 5:
            raise ValueError(f"UNet expects a 5D input (B, C, Z, Y, X), got shape {tuple(x.shape)}")
        if x.shape[1] != self.in_channels:
            raise ValueError(
                f"UNet expects {self.in_channels} input channels, got shape {tuple(x.shape)}"
            )
        spatial = tuple(x.shape[2:])
        if any(s % d for s, d in zip(spatial, self.total_stride, strict=True)):
            raise ValueError(
                f"UNet input spatial shape {spatial} (input shape {tuple(x.shape)}) must be "
                f"divisible by the total stride {self.total_stride} per axis (Z, Y, X)"
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        """Segment a batch of patches.

        Args:
            x: Images, float, shape (B, C, Z, Y, X); each spatial size divisible by
                ``total_stride`` on its axis.

        Returns:
            Logits (B, num_classes, Z, Y, X) in eval mode or without deep supervision. With deep
            supervision in training mode, a list of ``n_stages - 1`` logits from the highest
            resolution (B, num_classes, Z, Y, X) to the lowest decoder output, each downsampled
            by the cumulative strides of the stages above it.

        Raises:
            ValueError: If ``x`` is not 5D, has the wrong channel count, or a spatial size is not
                divisible by the total stride.
        """
        self._check_input(x)
        skips = []
        for stage in self.encoder:
            x = stage(x)
            skips.append(x)
        all_outputs = self.deep_supervision and self.training
        outputs = []
        x = skips[-1]
        last = len(self.decoder) - 1
        for k, (up, dec, head) in enumerate(
            zip(self.upsample, self.decoder, self.heads, strict=True)
        ):
            x = dec(torch.cat([up(x), skips[-(k + 2)]], dim=1))
            if all_outputs or k == last:
                outputs.append(head(x))
        if not all_outputs:
            return outputs[-1]
        return outputs[::-1]

"""Sliding-window border-core prediction of a volume that fits in memory: the one-chunk plan.

The same window code as predict's chunked network stage: :func:`~particleseg.inference.plan.
plan_chunks` lays out the windows (MONAI's grid, an axis shorter than the patch zero-padded
symmetrically) and :class:`~particleseg.inference.windows.WindowSums` sums their
Gaussian-weighted softmax; here the whole volume is one chunk. Validation during training (which
chooses the checkpoint), ``particle_size=model`` and predict therefore see the same windows,
weights, test-time mirroring and autocast, and give the same probabilities on the same input.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from particleseg.inference.plan import plan_chunks
from particleseg.inference.settings import INFERENCE_DEFAULTS
from particleseg.inference.windows import WindowSums


@torch.no_grad()
def predict_probabilities(
    net: nn.Module,
    image: torch.Tensor,
    patch_size: Sequence[int],
    overlap: float = INFERENCE_DEFAULTS["overlap"],
    sigma_scale: float = INFERENCE_DEFAULTS["sigma_scale"],
    sw_batch_size: int = 1,
    autocast: bool = False,
    tta: bool = False,
) -> torch.Tensor:
    """Border-core probabilities of a whole (in-memory) volume.

    Args:
        net: Network mapping (B, C, z, y, x) to logits (B, K, z, y, x); put in eval mode by the
            caller (a deep-supervision net returns one tensor in eval mode).
        image: float32 (B, 1, Z, Y, X), already normalized and resized. A volume smaller than the
            patch is padded (zeros, symmetrically) and cropped back.
        patch_size: Window (z, y, x).
        overlap: Fraction of overlap between neighbouring windows, in [0, 1).
        sigma_scale: Gaussian sigma as a fraction of the window size.
        sw_batch_size: Windows per forward pass.
        autocast: Run the network under bfloat16 autocast (about 3x faster on CPUs with bf16
            support; probabilities are accumulated in float32).
        tta: Average the softmax over the 8 mirrorings of each window.

    Returns:
        float32 (B, K, Z, Y, X) probabilities summing to 1 over K.
    """
    if image.ndim != 5 or image.shape[1] != 1:
        raise ValueError(f"image must be (B, 1, Z, Y, X), got shape {tuple(image.shape)}")
    if not 0 <= overlap < 1:
        raise ValueError(f"overlap must be in [0, 1), got {overlap}")
    shape = tuple(int(s) for s in image.shape[2:])
    plan = plan_chunks(shape, patch_size, max(max(shape), *patch_size), overlap)
    sums = WindowSums(net, plan.patch, sigma_scale, tta, autocast, sw_batch_size)
    inside = tuple(slice(p, p + n) for p, n in zip(plan.pad, shape, strict=True))
    out = []
    for volume in image[:, 0].to(torch.float32):
        if plan.padded_shape != shape:
            padded = volume.new_zeros(plan.padded_shape)
            padded[inside] = volume
            volume = padded
        total = sums(volume, plan.windows(0))[(slice(None), *inside)]
        out.append(total / total.sum(dim=0, keepdim=True))
    return torch.stack(out)

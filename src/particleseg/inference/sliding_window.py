"""Sliding-window border-core prediction of a volume that fits in memory.

Windows of the training patch size overlap by ``overlap`` and are blended with Gaussian importance
weights (sigma = patch / 8), as nnU-Net does; the blended quantity is the softmax probability.
This is the in-memory building block; chunked whole-scan inference uses it per chunk.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.inferers import sliding_window_inference
from torch import nn


@torch.no_grad()
def predict_probabilities(
    net: nn.Module,
    image: torch.Tensor,
    patch_size: Sequence[int],
    overlap: float = 0.5,
    sigma_scale: float = 0.125,
    sw_batch_size: int = 1,
    autocast: bool = False,
) -> torch.Tensor:
    """Border-core probabilities of a whole (in-memory) volume.

    Args:
        net: Network mapping (B, C, z, y, x) to logits (B, K, z, y, x); put in eval mode by the
            caller (a deep-supervision net returns one tensor in eval mode).
        image: float32 (B, C, Z, Y, X), already normalized and resized. A volume smaller than the
            patch is padded and cropped back.
        patch_size: Window (z, y, x).
        overlap: Fraction of overlap between neighbouring windows, in [0, 1).
        sigma_scale: Gaussian sigma as a fraction of the window size.
        sw_batch_size: Windows per forward pass.
        autocast: Run the network under bfloat16 autocast (about 3x faster on CPUs with bf16
            support; probabilities are accumulated in float32).

    Returns:
        float32 (B, K, Z, Y, X) probabilities summing to 1 over K.
    """
    if image.ndim != 5:
        raise ValueError(f"image must be (B, C, Z, Y, X), got shape {tuple(image.shape)}")
    if not 0 <= overlap < 1:
        raise ValueError(f"overlap must be in [0, 1), got {overlap}")

    def window(x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=autocast):
            logits = net(x)
        return torch.softmax(logits.float(), dim=1)

    return sliding_window_inference(
        image,
        roi_size=tuple(int(p) for p in patch_size),
        sw_batch_size=sw_batch_size,
        predictor=window,
        overlap=overlap,
        mode="gaussian",
        sigma_scale=sigma_scale,
        padding_mode="constant",
        cval=0.0,
    )

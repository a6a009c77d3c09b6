"""Forward passes of one chunk's windows, summed with Gaussian importance weights.

The weighting is MONAI's (``compute_importance_map(mode="gaussian")``, as
``sliding_window_inference`` uses it); what is summed is ``weight * softmax`` per class, so the
sum over classes is the weight sum and the class with the largest sum is the argmax of the
blended probabilities. Dividing is left to whoever has all contributions of a voxel.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from monai.data.utils import compute_importance_map
from torch import nn

from particleseg.inference.settings import INFERENCE_DEFAULTS

# mirror axes of the 8-fold test-time augmentation (spatial dims of a (B, C, Z, Y, X) batch)
MIRRORS = ((), (2,), (3,), (4,), (2, 3), (2, 4), (3, 4), (2, 3, 4))


class WindowSums:
    """Sum a network's Gaussian-weighted softmax over windows of a region.

    Args:
        net: network in eval mode, (B, 1, z, y, x) -> logits (B, K, z, y, x).
        patch: window size (z, y, x).
        sigma_scale: Gaussian sigma as a fraction of the window size (MONAI's default 0.125).
        tta: average the softmax over the 8 mirrorings of each window (8x the forward passes).
        autocast: run the network under bfloat16 autocast (sums stay float32).
        batch_size: windows per forward pass.
    """

    def __init__(
        self,
        net: nn.Module,
        patch: Sequence[int],
        sigma_scale: float = INFERENCE_DEFAULTS["sigma_scale"],
        tta: bool = False,
        autocast: bool = False,
        batch_size: int = 1,
    ) -> None:
        self.net = net
        self.patch = tuple(int(p) for p in patch)
        self.sigma_scale = float(sigma_scale)
        self.tta = bool(tta)
        self.autocast = bool(autocast)
        self.batch_size = max(int(batch_size), 1)
        self.forward_passes = 0  # windows run through the network (x8 with tta)
        self._weights: dict[torch.device, torch.Tensor] = {}

    def weights(self, device: torch.device) -> torch.Tensor:
        """The (z, y, x) float32 Gaussian importance map on ``device``."""
        if device not in self._weights:
            w = compute_importance_map(
                self.patch, mode="gaussian", sigma_scale=self.sigma_scale, device=device
            )
            self._weights[device] = w.to(torch.float32)
        return self._weights[device]

    @torch.no_grad()
    def _probabilities(self, batch: torch.Tensor) -> torch.Tensor:
        total = None
        for axes in MIRRORS if self.tta else ((),):
            x = batch.flip(axes) if axes else batch
            with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=self.autocast):
                logits = self.net(x)
            p = torch.softmax(logits.float(), dim=1)
            p = p.flip(axes) if axes else p
            total = p if total is None else total + p
            self.forward_passes += len(batch)
        return total / len(MIRRORS) if self.tta else total

    @torch.no_grad()
    def __call__(self, image: torch.Tensor, starts: np.ndarray) -> torch.Tensor:
        """Weighted softmax sums over ``image`` of the windows at ``starts``.

        Args:
            image: float32 (Z, Y, X) normalized network-grid image of the region, on the
                network's device.
            starts: int (N, 3) window starts relative to the region; every window lies inside.

        Returns:
            float32 (K, Z, Y, X) sums of ``weight * probability`` on ``image``'s device (zero
            where no window reaches).
        """
        if image.ndim != 3:
            raise ValueError(f"image must be (Z, Y, X), got shape {tuple(image.shape)}")
        starts = np.asarray(starts, dtype=np.int64).reshape(-1, 3)
        pz, py, px = self.patch
        if len(starts) and (
            (starts < 0).any() or (starts + self.patch > np.array(image.shape)).any()
        ):
            raise ValueError(
                f"windows of {self.patch} at the given starts leave the region {tuple(image.shape)}"
            )
        w = self.weights(image.device)
        out = None
        for i in range(0, len(starts), self.batch_size):
            group = starts[i : i + self.batch_size]
            batch = torch.stack(
                [image[z : z + pz, y : y + py, x : x + px] for z, y, x in group.tolist()]
            )[:, None]
            probs = self._probabilities(batch) * w
            if out is None:
                out = torch.zeros(
                    (probs.shape[1], *image.shape), dtype=torch.float32, device=image.device
                )
            for (z, y, x), p in zip(group.tolist(), probs, strict=True):
                out[:, z : z + pz, y : y + py, x : x + px] += p
        if out is None:
            raise ValueError("no windows to run: the chunk owns none")
        return out

"""Forward passes of one chunk's windows, summed with Gaussian importance weights.

The weighting is the Gaussian importance map of MONAI's ``sliding_window_inference``
(:func:`gaussian_weights` gives the same float32 values without importing MONAI, whose import
takes 1-2 s of every predict's start-up); what is summed is ``weight * softmax`` per class, so the
sum over classes is the weight sum and the class with the largest sum is the argmax of the
blended probabilities. Dividing is left to whoever has all contributions of a voxel.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from particleseg.inference.settings import INFERENCE_DEFAULTS

# mirror axes of the 8-fold test-time augmentation (spatial dims of a (B, C, Z, Y, X) batch)
MIRRORS = ((), (2,), (3,), (4,), (2, 3), (2, 4), (3, 4), (2, 3, 4))


def gaussian_weights(
    patch: Sequence[int], sigma_scale: float, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """A window's Gaussian importance map: high in the centre, low (never zero) at the edges.

    The product of one Gaussian per axis, centred on the window, with a standard deviation of
    ``sigma_scale`` times the window's size along that axis; values below 1e-3 are raised to
    1e-3, so no voxel of a window weighs nothing.
    Equal, value for value, to MONAI's ``compute_importance_map(patch, mode="gaussian",
    sigma_scale=sigma_scale)`` (tested against it).

    Args:
        patch: the window's (z, y, x) size.
        sigma_scale: standard deviation as a fraction of the window's size, > 0.
        device: where the map is made.

    Returns:
        float32 tensor of shape ``patch``.
    """
    weights = None
    for axis, size in enumerate(patch):
        half = (size - 1) / 2.0
        d = torch.arange(-half, half + 1, dtype=torch.float32, device=device)
        profile = torch.exp(d**2 / (-2 * (size * sigma_scale) ** 2))
        if weights is None:
            weights = profile
        else:  # outer product, one axis at a time
            weights = weights.unsqueeze(-1) * profile[(None,) * axis]
    return weights.clamp_(min=1e-3)


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
            self._weights[device] = gaussian_weights(self.patch, self.sigma_scale, device)
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

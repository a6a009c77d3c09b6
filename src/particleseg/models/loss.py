"""Dice + cross-entropy loss (nnU-Net's ``DC_and_CE_loss``) and its deep-supervision wrapper.

Conventions:
    * Dice is soft Dice on softmax probabilities over the foreground classes only (background
      excluded), as *batch Dice*: true/false positives are summed over the batch and all voxels
      before the ratio, ``(2 tp + smooth) / (2 tp + fp + fn + smooth)`` with ``smooth = 1e-5``.
    * The Dice term is ``1 - mean Dice`` (nnU-Net uses ``-mean Dice``; the two differ by a
      constant, so gradients are identical, and ours is >= 0 and 0 for a perfect prediction).
    * Deep-supervision targets are downsampled by strided slicing (``target[..., ::s]``) when an
      output's shape divides the target's shape, else by ``F.interpolate(mode="nearest")``. For
      integer factors the two pick the same voxels (index ``i * s``); slicing is a free view of
      the int64 target with no float round trip, and a U-Net's outputs always divide exactly.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def _as_index_target(target: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """Return target as (B, *spatial) int64 and check it against logits (B, C, *spatial)."""
    if target.ndim == logits.ndim and target.shape[1] == 1:
        target = target[:, 0]
    if target.ndim != logits.ndim - 1:
        raise ValueError(
            f"target must be (B, Z, Y, X) or (B, 1, Z, Y, X) class indices for logits "
            f"{tuple(logits.shape)}, got shape {tuple(target.shape)}"
        )
    if target.dtype.is_floating_point or target.dtype == torch.bool:
        raise ValueError(f"target must hold integer class indices, got dtype {target.dtype}")
    if target.shape[0] != logits.shape[0] or target.shape[1:] != logits.shape[2:]:
        raise ValueError(
            f"target shape {tuple(target.shape)} does not match logits shape "
            f"{tuple(logits.shape)} (expected (B, *spatial) = "
            f"{(logits.shape[0], *logits.shape[2:])})"
        )
    return target.long()


def soft_dice_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    smooth: float = 1e-5,
    batch_dice: bool = True,
    include_background: bool = False,
) -> torch.Tensor:
    """Soft Dice loss ``1 - mean Dice`` on softmax probabilities.

    Args:
        logits: Raw scores, float, shape (B, C, Z, Y, X).
        target: Class indices, int, shape (B, Z, Y, X) or (B, 1, Z, Y, X).
        smooth: Added to numerator and denominator of each Dice.
        batch_dice: Sum tp/fp/fn over the batch too (nnU-Net batch Dice); else one Dice per
            sample and class, averaged.
        include_background: Include class 0 in the mean.

    Returns:
        Scalar tensor.
    """
    target = _as_index_target(target, logits)
    probs = torch.softmax(logits.float(), dim=1)
    onehot = torch.zeros_like(probs).scatter_(1, target.unsqueeze(1), 1.0)
    if not include_background:
        probs, onehot = probs[:, 1:], onehot[:, 1:]
    axes = [0, *range(2, logits.ndim)] if batch_dice else list(range(2, logits.ndim))
    tp = (probs * onehot).sum(axes)
    fp = (probs * (1 - onehot)).sum(axes)
    fn = ((1 - probs) * onehot).sum(axes)
    dice = (2 * tp + smooth) / torch.clamp(2 * tp + fp + fn + smooth, min=1e-8)
    return 1.0 - dice.mean()


def dice_ce_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    weight_dice: float = 1.0,
    weight_ce: float = 1.0,
    smooth: float = 1e-5,
    batch_dice: bool = True,
    include_background: bool = False,
) -> torch.Tensor:
    """``weight_dice * soft Dice loss + weight_ce * cross-entropy`` (nnU-Net, 1:1 by default).

    Args:
        logits: Raw scores, float, shape (B, C, Z, Y, X).
        target: Class indices, int, shape (B, Z, Y, X) or (B, 1, Z, Y, X).
        weight_dice: Weight of the Dice term.
        weight_ce: Weight of the cross-entropy term (mean over voxels).
        smooth: Dice smoothing constant.
        batch_dice: Batch Dice (see :func:`soft_dice_loss`).
        include_background: Include class 0 in the Dice.

    Returns:
        Scalar tensor.

    Raises:
        ValueError: If the target's shape or dtype does not fit the logits.
    """
    target = _as_index_target(target, logits)
    loss = logits.new_zeros((), dtype=torch.float32)
    if weight_dice:
        dice = soft_dice_loss(
            logits,
            target,
            smooth=smooth,
            batch_dice=batch_dice,
            include_background=include_background,
        )
        loss = loss + weight_dice * dice
    if weight_ce:
        loss = loss + weight_ce * F.cross_entropy(logits.float(), target)
    return loss


def deep_supervision_weights(n_outputs: int) -> list[float]:
    """nnU-Net deep-supervision weights: ``1 / 2**i``, the last (lowest resolution) set to 0.

    Args:
        n_outputs: Number of outputs, highest resolution first.

    Returns:
        ``n_outputs`` weights summing to 1; ``[1.0]`` for a single output.
    """
    if n_outputs < 1:
        raise ValueError(f"n_outputs must be >= 1, got {n_outputs}")
    if n_outputs == 1:
        return [1.0]
    weights = [1.0 / 2**i for i in range(n_outputs)]
    weights[-1] = 0.0
    total = sum(weights)
    return [w / total for w in weights]


def downsample_target(target: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """Nearest-neighbour downsampling of an integer label map to a spatial shape.

    Args:
        target: Class indices, int, shape (B, Z, Y, X).
        shape: Spatial output shape (Z', Y', X').

    Returns:
        int64 tensor (B, Z', Y', X'): strided slicing ``target[:, ::sz, ::sy, ::sx]`` when every
        size divides exactly, else ``F.interpolate(mode="nearest")``; both pick voxel ``i * s``.
    """
    shape = tuple(int(s) for s in shape)
    in_shape = tuple(target.shape[1:])
    if in_shape == shape:
        return target
    if all(i % o == 0 for i, o in zip(in_shape, shape, strict=True)):
        steps = [i // o for i, o in zip(in_shape, shape, strict=True)]
        index = (slice(None), *(slice(None, None, s) for s in steps))
        return target[index]
    down = F.interpolate(target[:, None].float(), size=shape, mode="nearest")
    return down[:, 0].long()


class DeepSupervisionLoss(nn.Module):
    """Weighted :func:`dice_ce_loss` over deep-supervision outputs.

    Args:
        weights: Per-output weights, highest resolution first; ``None`` uses
            :func:`deep_supervision_weights` for however many outputs arrive.
        weight_dice: Weight of the Dice term.
        weight_ce: Weight of the cross-entropy term.
        smooth: Dice smoothing constant.
        batch_dice: Batch Dice (see :func:`soft_dice_loss`).
        include_background: Include class 0 in the Dice.
    """

    def __init__(
        self,
        weights: Sequence[float] | None = None,
        weight_dice: float = 1.0,
        weight_ce: float = 1.0,
        smooth: float = 1e-5,
        batch_dice: bool = True,
        include_background: bool = False,
    ) -> None:
        super().__init__()
        self.weights = None if weights is None else [float(w) for w in weights]
        self.loss_kwargs = {
            "weight_dice": weight_dice,
            "weight_ce": weight_ce,
            "smooth": smooth,
            "batch_dice": batch_dice,
            "include_background": include_background,
        }

    def forward(
        self, outputs: torch.Tensor | Sequence[torch.Tensor], target: torch.Tensor
    ) -> torch.Tensor:
        """Compute the weighted loss.

        Args:
            outputs: Logits (B, C, Z, Y, X), or a list of them from the highest resolution
                (same spatial shape as the target) to the lowest.
            target: Class indices, int, (B, Z, Y, X) or (B, 1, Z, Y, X), full resolution.

        Returns:
            Scalar tensor.

        Raises:
            ValueError: If the number of outputs differs from the number of given weights, or
                the target does not fit the first output.
        """
        if isinstance(outputs, torch.Tensor):
            outputs = [outputs]
        outputs = list(outputs)
        weights = self.weights or deep_supervision_weights(len(outputs))
        if len(weights) != len(outputs):
            raise ValueError(f"got {len(outputs)} outputs for {len(weights)} weights")
        target = _as_index_target(target, outputs[0])
        loss = outputs[0].new_zeros((), dtype=torch.float32)
        for out, w in zip(outputs, weights, strict=True):
            if w == 0:
                continue
            loss = loss + w * dice_ce_loss(
                out, downsample_target(target, out.shape[2:]), **self.loss_kwargs
            )
        return loss

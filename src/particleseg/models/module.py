"""The LightningModule: border-core U-Net, Dice + CE with deep supervision, SGD with poly decay.

Validation runs the inference path (Gaussian-weighted sliding window over each validation crop,
argmax) and returns the predicted border-core map; :class:`InstanceMetrics` turns it into
particles and scores them. Everything predict needs to rebuild the model without the training
config (network config, intensity statistics, target particle size, border thickness, patch) is
stored in the checkpoint under ``"particleseg"``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import lightning as L
import torch
from torch import nn

from particleseg.inference.settings import INFERENCE_DEFAULTS
from particleseg.inference.sliding_window import predict_probabilities
from particleseg.models.loss import DeepSupervisionLoss
from particleseg.models.metadata import CHECKPOINT_KEY
from particleseg.models.metadata import model_metadata as build_metadata
from particleseg.precision import bf16_native
from particleseg.transforms.normalization import legacy_config


class BorderCoreModule(L.LightningModule):
    """Train a border-core segmentation network.

    Args:
        net: The network (e.g. :class:`particleseg.models.UNet`); in training mode it may return a
            list of deep-supervision outputs, highest resolution first.
        optimizer: ``params -> Optimizer`` (Hydra ``_partial_``; the recipe: SGD lr 1e-2,
            momentum 0.99, nesterov, weight decay 3e-5).
        scheduler: ``(optimizer, total_iters) -> LRScheduler`` stepped once per epoch (Hydra
            ``_partial_`` of ``torch.optim.lr_scheduler.PolynomialLR`` with ``power=0.9``), or None.
        loss: Loss over the outputs; default :class:`DeepSupervisionLoss` (Dice + CE 1:1, weights
            1/2^i, lowest resolution 0).
        target_particle_size: Mean particle diameter in voxels the network sees (stored).
        border_thickness: Border width in voxels of that space (stored).
        patch_size: Training patch = sliding-window size (z, y, x).
        val_overlap: Sliding-window overlap during validation.
        val_autocast: bfloat16 autocast for validation inference, where the device computes
            bf16 natively (else fp32).

    Attributes:
        net_config: The network's config (a ``_target_`` dict), set by the training task and
            stored in checkpoints, so the model can be rebuilt without the training config.
    """

    def __init__(
        self,
        net: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        loss: nn.Module | None = None,
        target_particle_size: float = 60.0,
        border_thickness: int = 3,
        patch_size: Sequence[int] = (128, 128, 128),
        val_overlap: float = INFERENCE_DEFAULTS["overlap"],
        val_autocast: bool = False,
    ) -> None:
        super().__init__()
        # plain values only, so checkpoints load with torch.load(weights_only=True)
        self.save_hyperparameters(
            {
                "target_particle_size": float(target_particle_size),
                "border_thickness": int(border_thickness),
                "patch_size": [int(p) for p in patch_size],
                "val_overlap": float(val_overlap),
                "val_autocast": bool(val_autocast),
            },
            logger=False,
        )
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.net = net
        self.loss = loss if loss is not None else DeepSupervisionLoss()
        self.normalization: dict | None = None
        self.net_config: Mapping[str, Any] | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        """Logits of the network: (B, 3, z, y, x) (a list of them in training mode)."""
        return self.net(x)

    # -- training ----------------------------------------------------------------------------
    def on_fit_start(self) -> None:
        """Take the data's intensity normalization scheme, so checkpoints carry it."""
        dm = getattr(self.trainer, "datamodule", None)
        normalization = getattr(dm, "normalization", None)
        if normalization is not None:
            self.normalization = dict(normalization)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        """Dice + CE (deep supervision) on one batch of patches."""
        outputs = self.net(batch["image"])
        loss = self.loss(outputs, batch["label"])
        self.log(
            "train/loss",
            loss,
            on_step=False,
            on_epoch=True,
            prog_bar=True,
            batch_size=batch["image"].shape[0],
        )
        return loss

    def configure_optimizers(self) -> dict:
        """SGD (or whatever is configured), with the poly schedule stepped per epoch."""
        optimizer = self.optimizer_factory(params=self.parameters())
        if self.scheduler_factory is None:
            return {"optimizer": optimizer}
        max_epochs = self.trainer.max_epochs if self.trainer.max_epochs not in (None, -1) else 1
        scheduler = self.scheduler_factory(optimizer=optimizer, total_iters=max(1, max_epochs))
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "epoch", "frequency": 1},
        }

    # -- validation: the inference path -----------------------------------------------------
    def predict_border_core(self, image: torch.Tensor) -> torch.Tensor:
        """Argmax border-core (B, z, y, x) uint8 of normalized, resized images (B, 1, z, y, x)."""
        probs = predict_probabilities(
            self.net,
            image,
            self.hparams.patch_size,
            overlap=self.hparams.val_overlap,
            # emulated bf16 is far slower than fp32 (particleseg.precision)
            autocast=self.hparams.val_autocast and bf16_native(image.device),
        )
        return probs.argmax(dim=1).to(torch.uint8)

    def validation_step(self, batch: dict, batch_idx: int) -> dict:
        """Predict the border-core map of one validation crop (scored by InstanceMetrics)."""
        return {"border_core": self.predict_border_core(batch["image"])}

    # -- checkpoint metadata --------------------------------------------------------------------
    def model_metadata(self) -> dict:
        """What inference needs besides the weights (:func:`particleseg.models.metadata`)."""
        hp = self.hparams
        return build_metadata(
            net_config=self.net_config,
            normalization=self.normalization,
            target_particle_size=hp.target_particle_size,
            border_thickness=hp.border_thickness,
            patch_size=hp.patch_size,
        )

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Store :meth:`model_metadata` in the checkpoint."""
        checkpoint[CHECKPOINT_KEY] = self.model_metadata()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Restore the intensity statistics saved with the weights."""
        meta = checkpoint.get(CHECKPOINT_KEY) or {}
        self.normalization = meta.get("normalization") or (
            legacy_config(meta["intensity_stats"]) if meta.get("intensity_stats") else None
        )
        self.net_config = meta.get("net_config")

"""Validation that measures what users care about: particles, not voxels.

:class:`InstanceMetrics` takes the border-core map the module predicted for each validation crop,
runs the post-processing of inference (border-core -> instances -> small-particle filter), scores
it with :func:`particleseg.metrics.evaluate_instances` against the crop's reference particles and
logs the means as ``val/f1``, ``val/f1_match``, ``val/f1_instance``, ``val/merger_ratio``,
``val/splitter_ratio`` and ``val/pq`` (ModelCheckpoint can then keep the best by F1_instance).
It also saves and logs an example slice: image / target / prediction.

It lives beside the LightningModule rather than in ``particleseg.metrics``, which stays free of
torch and Lightning.
"""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L
import numpy as np

from particleseg.metrics import evaluate_instances
from particleseg.targets import (
    MIN_RELATIVE_SIZE,
    SMALL_CORE_DISTANCE,
    SMALL_CORE_FRACTION,
    border_core_to_instance,
    filter_small_particles,
    instance_to_border_core,
)

log = logging.getLogger(__name__)

LOGGED = ("f1", "f1_match", "f1_instance", "merger_ratio", "splitter_ratio", "pq")


def example_panel(image: np.ndarray, target: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """A uint8 RGB strip (h, 3w, 3) of the middle Z slice: image, target and predicted border-core.

    Args:
        image: float (z, y, x) normalized image.
        target: uint8 (z, y, x) reference border-core.
        pred: uint8 (z, y, x) predicted border-core.
    """
    k = image.shape[0] // 2
    img = image[k]
    lo, hi = np.percentile(img, [1, 99])
    grey = np.clip((img - lo) / max(hi - lo, 1e-6), 0, 1)
    grey = (np.repeat(grey[..., None], 3, axis=2) * 255).astype(np.uint8)
    colours = np.array([[0, 0, 0], [240, 200, 40], [200, 40, 200]], np.uint8)
    return np.concatenate([grey, colours[target[k]], colours[pred[k]]], axis=1)


class InstanceMetrics(L.Callback):
    """Score validation crops as particles and log the mean metrics.

    Args:
        small_core_distance: Post-processing small-core rule (see ``border_core_to_instance``).
        small_core_fraction: Post-processing small-core rule.
        min_relative_size: Small-particle filter (fraction of the mean particle size); 0 = off.
        border_thickness: Border width used to draw the target in the example slices.
        example_dir: Folder for example PNGs (None: the trainer's log dir / ``examples``).
    """

    def __init__(
        self,
        small_core_distance: float = SMALL_CORE_DISTANCE,
        small_core_fraction: float = SMALL_CORE_FRACTION,
        min_relative_size: float = MIN_RELATIVE_SIZE,
        border_thickness: int = 3,
        example_dir: str | None = None,
    ) -> None:
        self.small_core_distance = small_core_distance
        self.small_core_fraction = small_core_fraction
        self.min_relative_size = min_relative_size
        self.border_thickness = border_thickness
        self.example_dir = example_dir
        self._rows: list[dict] = []
        self._example: np.ndarray | None = None
        self.history: list[dict] = []

    def instances(self, border_core: np.ndarray) -> np.ndarray:
        """Post-process a predicted border-core map (z, y, x) into uint32 instances."""
        labels = border_core_to_instance(
            border_core,
            small_core_distance=self.small_core_distance,
            small_core_fraction=self.small_core_fraction,
        )
        if self.min_relative_size > 0:
            labels = filter_small_particles(labels, self.min_relative_size)
        return labels

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Start a fresh table of per-crop metrics."""
        self._rows, self._example = [], None

    def on_validation_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0
    ) -> None:
        """Post-process and score one validation crop."""
        if trainer.sanity_checking or outputs is None:
            return
        pred_bc = outputs["border_core"][0].cpu().numpy()
        ref = batch["instances"][0].cpu().numpy().astype(np.uint32)
        row = evaluate_instances(self.instances(pred_bc), ref)
        self._rows.append(row)
        if self._example is None:
            image = batch["image"][0, 0].float().cpu().numpy()
            target = instance_to_border_core(ref, self.border_thickness)
            self._example = example_panel(image, target, pred_bc)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Log the mean metrics over the crops and the example slice."""
        if trainer.sanity_checking or not self._rows:
            return
        means = {k: float(np.mean([r[k] for r in self._rows])) for k in LOGGED}
        for k, v in means.items():
            pl_module.log(f"val/{k}", v, prog_bar=k == "f1_instance", sync_dist=True)
        self.history.append({"epoch": trainer.current_epoch, **means})
        if self._example is not None and trainer.is_global_zero:
            self._save_example(trainer)

    def _save_example(self, trainer: L.Trainer) -> None:
        from lightning.pytorch.loggers import WandbLogger

        caption = f"epoch {trainer.current_epoch}: image | target | prediction"
        for lg in trainer.loggers:
            if isinstance(lg, WandbLogger):
                lg.log_image(key="val/examples", images=[self._example], caption=[caption])
        folder = Path(self.example_dir or Path(trainer.default_root_dir) / "examples")
        try:
            import matplotlib.pyplot as plt

            folder.mkdir(parents=True, exist_ok=True)
            plt.imsave(folder / f"epoch_{trainer.current_epoch:04d}.png", self._example)
        except OSError as err:  # a full disk must not stop training
            log.warning("could not save the example slice to %s: %s", folder, err)

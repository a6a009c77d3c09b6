"""The train task: fit the border-core U-Net (:func:`particleseg.training.run`)."""

from __future__ import annotations

from omegaconf import DictConfig


def train(cfg: DictConfig) -> float | None:
    """Train the border-core U-Net; return the best validation metric (for sweepers)."""
    from particleseg.training import run

    return run(cfg)

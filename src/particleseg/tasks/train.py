"""The train task: fit the border-core U-Net (:func:`particleseg.training.run`)."""

from __future__ import annotations

import importlib.util

from omegaconf import DictConfig


def check_logger_installed(cfg: DictConfig) -> None:
    """Refuse a W&B logger when wandb is not installed (it is the ``[train]`` extra).

    Raises:
        ValueError: saying how to install it or to log elsewhere.
    """
    loggers = cfg.get("logger") or {}
    wants_wandb = any(
        "WandbLogger" in str((entry or {}).get("_target_", "")) for entry in loggers.values()
    )
    if wants_wandb and importlib.util.find_spec("wandb") is None:
        raise ValueError(
            "training logs to Weights & Biases, which is not installed: "
            "pip install 'particleseg[train]', or train with logger=csv"
        )


def train(cfg: DictConfig) -> float | None:
    """Train the border-core U-Net; return the best validation metric (for sweepers)."""
    check_logger_installed(cfg)
    from particleseg.training import run

    return run(cfg)

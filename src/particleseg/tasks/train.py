"""The train task: fit the border-core U-Net (:func:`particleseg.training.run`)."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

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
    dataset_dir = (cfg.get("data") or {}).get("dataset_dir")
    if not cfg.get("resume") and dataset_dir:
        # a missing or malformed dataset.json is refused in a second, before Lightning's import
        # (several seconds); training checks the splits again once it is built
        from particleseg.io import load_dataset

        load_dataset(dataset_dir)
    from particleseg.training import run

    return run(cfg)


RUN_START_FILES = (".hydra", "train.log", "config_resolved.yaml")


def discard_unstarted_run(run_dir: str | Path) -> bool:
    """Remove a fresh run folder that a failed start left without a checkpoint.

    Only what Hydra and :func:`particleseg.training.run` write at the start (``.hydra/``,
    ``train.log``, ``config_resolved.yaml``) is removed, and the folder itself if that empties
    it: a folder with a checkpoint or with other files is left alone.

    Returns:
        Whether the folder was removed.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir() or (run_dir / "checkpoints").exists():
        return False
    others = [p for p in run_dir.iterdir() if p.name not in RUN_START_FILES]
    if others:
        return False
    for name in RUN_START_FILES:
        path = run_dir / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    run_dir.rmdir()
    return True

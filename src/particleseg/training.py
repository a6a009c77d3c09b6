"""Build the training objects from a Hydra config, run ``Trainer.fit``, resume, record results."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import lightning as L
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from particleseg.io.atomic import write_json_atomic
from particleseg.precision import bf16_native, resolve_training_precision, training_device
from particleseg.tasks.sweeps import RESULT_FILE

log = logging.getLogger(__name__)


def build(cfg: DictConfig) -> tuple[L.LightningDataModule, L.LightningModule, L.Trainer]:
    """Instantiate datamodule, module (with its network) and trainer (callbacks, loggers)."""
    datamodule = instantiate(cfg.data)
    net = instantiate(cfg.model.net)
    if cfg.get("init_weights"):
        load_net_weights(net, cfg.init_weights)
    module = instantiate(cfg.model.module, net=net)
    module.net_config = OmegaConf.to_container(cfg.model.net, resolve=True)
    # entries without a _target_ are settings for a logger that is not selected (a sweep's group)
    loggers = [instantiate(c) for c in (cfg.get("logger") or {}).values() if c and "_target_" in c]
    callbacks = []
    for name, c in (cfg.get("callbacks") or {}).items():
        if c is None:
            continue
        if not loggers and c.get("_target_", "").endswith("LearningRateMonitor"):
            log.info("no logger: callback %s skipped", name)
            continue
        callbacks.append(instantiate(c))
    precision = resolve_training_precision(cfg.trainer.precision, cfg.trainer.accelerator)
    if precision.startswith("bf16") and not bf16_native(training_device(cfg.trainer.accelerator)):
        log.warning(
            "trainer.precision=%s on a device without native bf16: every bf16 operation is "
            "emulated, far slower than fp32; trainer.precision=auto takes fp32 here",
            precision,
        )
    trainer = instantiate(
        cfg.trainer, callbacks=callbacks, logger=loggers or False, precision=precision
    )
    if loggers:
        params = OmegaConf.to_container(cfg, resolve=True)
        for lg in loggers:
            lg.log_hyperparams(params)
    return datamodule, module, trainer


def load_net_weights(net, path: str | Path) -> None:
    """Start ``net`` from the network weights of a train.py checkpoint (fine-tuning).

    Only the weights are taken: optimizer, schedule and epoch count start afresh (``resume``
    continues a run instead).

    Raises:
        ValueError: If the file is missing or unreadable, or its network does not fit ``net``.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"init_weights={path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        state = {k[len("net.") :]: v for k, v in ckpt["state_dict"].items() if k.startswith("net.")}
    except Exception as err:  # noqa: BLE001 - any load failure is an unreadable checkpoint
        raise ValueError(f"init_weights={path}: cannot read the checkpoint ({err})") from err
    try:
        net.load_state_dict(state)
    except RuntimeError as err:
        raise ValueError(
            f"init_weights={path}: its network does not match model.net ({err})"
        ) from err
    log.info("network weights initialised from %s", path)


def resumed_config(cfg: DictConfig) -> tuple[DictConfig, Path]:
    """The saved config of the run in ``cfg.resume``, and its last checkpoint.

    Plain ``key=value`` overrides given together with ``resume`` are applied on top (for example
    ``trainer.max_epochs=200`` to extend a run).

    Raises:
        ValueError: If the folder has no ``.hydra/config.yaml`` or ``checkpoints/last.ckpt``.
    """
    run = Path(cfg.resume)
    saved, ckpt = run / ".hydra" / "config.yaml", run / "checkpoints" / "last.ckpt"
    for p, what in ((saved, "its config"), (ckpt, "a last checkpoint")):
        if not p.exists():
            raise ValueError(f"cannot resume {run}: {p} ({what}) does not exist")
    old = OmegaConf.load(saved)
    extra = [o for o in _task_overrides() if not o.startswith("resume=")]
    if extra:
        old = OmegaConf.merge(old, OmegaConf.from_dotlist(extra))
    with open_dict(old):
        old.resume = str(run)
    return old, ckpt


def _task_overrides() -> list[str]:
    from hydra.core.hydra_config import HydraConfig

    try:
        return list(HydraConfig.get().overrides.task)
    except ValueError:  # composed outside a Hydra run (tests)
        return []


def run(cfg: DictConfig) -> float | None:
    """Train; return the best value of ``cfg.optimized_metric`` (None if never validated)."""
    ckpt_path = None
    if cfg.get("resume"):
        cfg, ckpt_path = resumed_config(cfg)
        log.info("resuming from %s", ckpt_path)
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True)
    # the dataset is checked before anything is built, logged or saved (a clear error, no run)
    instantiate(cfg.data).fold_entries()
    out = Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    name = "config_resolved.yaml" if ckpt_path is None else "config_resolved_resume.yaml"
    OmegaConf.save(cfg, out / name, resolve=True)  # every interpolation as the run saw it
    datamodule, module, trainer = build(cfg)
    log.info(
        "training on %s x %d (precision %s) into %s",
        type(trainer.accelerator).__name__.replace("Accelerator", "") or "?",
        trainer.num_devices,
        trainer.precision,
        out,
    )
    trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
    best, best_path = _best(trainer, cfg.optimized_metric)
    overrides = dict(o.split("=", 1) for o in _task_overrides() if "=" in o)
    write_json_atomic(
        out / RESULT_FILE,
        {
            "metric": cfg.optimized_metric,
            "best_score": best,
            "best_checkpoint": best_path,
            "epochs": trainer.current_epoch,
            "precision": str(trainer.precision),  # as resolved here (auto: by the hardware)
            "overrides": overrides,
            "target_particle_size": cfg.target_particle_size,
            "border_thickness": cfg.border_thickness,
        },
    )
    _write_curves(out, cfg.get("task_name", "train"))
    log.info("best %s = %s (%s)", cfg.optimized_metric, best, best_path)
    return best


def _write_curves(run_dir: Path, title: str) -> None:
    """``curves.png`` from the CSV logger's files, when there are any."""
    from particleseg.evaluation.tables import read_metric_history
    from particleseg.viz.figures import plot_training_curves

    files = sorted(
        (run_dir / "csv").glob("version_*/metrics.csv"),
        key=lambda p: int(p.parent.name.split("_")[-1]),
    )
    if files:
        plot_training_curves(run_dir / "curves.png", read_metric_history(files), title=title)


def _best(trainer: L.Trainer, metric: str) -> tuple[float | None, str | None]:
    ckpt = trainer.checkpoint_callback
    score: Any = getattr(ckpt, "best_model_score", None)
    if score is not None:
        return float(score), str(ckpt.best_model_path) or None
    value = trainer.callback_metrics.get(metric)
    return (float(value) if value is not None else None), None

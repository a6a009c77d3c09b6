"""LightningDataModule over a ``dataset.json``: folds, cache, patches, validation crops."""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
from omegaconf import DictConfig, ListConfig, OmegaConf
from torch.utils.data import DataLoader

from particleseg.data.datasets import TrainPatches, ValidationCrops, validation_crops
from particleseg.data.folds import split_fold
from particleseg.data.prepare import PreparedSample, prepare_sample
from particleseg.io import SampleEntry, load_dataset, read_volume
from particleseg.transforms.intensity import IntensityStats, compute_intensity_stats
from particleseg.transforms.normalization import resolve_config
from particleseg.transforms.particle_templates import extract_particles

log = logging.getLogger(__name__)


def _collate_one(batch: list[dict]) -> dict:
    """Validation crops go one at a time (their shapes may differ)."""
    (item,) = batch
    return {k: (v[None] if hasattr(v, "shape") else [v]) for k, v in item.items()}


class ParticleDataModule(L.LightningDataModule):
    """Training and validation data of one cross-validation fold.

    Args:
        dataset_dir: Folder holding ``dataset.json``; its ``train`` split (labelled) is used.
        target_particle_size: Mean particle diameter in voxels after resizing.
        border_thickness: Border width in voxels of the resized space.
        patch_size: Network input patch (z, y, x).
        batch_size: Patches per batch.
        iterations_per_epoch: Batches per epoch.
        num_workers: DataLoader worker processes (0 = in the main process).
        fold: Fold index in ``0..n_folds-1`` or ``"all"`` (train and validate on everything).
        n_folds: Number of group folds.
        fold_seed: Seed of the fold assignment.
        val_split: ``"val"``: validate on the dataset's labelled ``val`` split and train on the
            whole ``train`` split (``fold`` is unused). None: validate on the held-out fold of
            ``train``. Test splits are refused: they must not choose checkpoints.
        oversample_fg: Share of patches centred on foreground (nnU-Net: 1/3).
        augmentation: Callable ``(patch_size) -> dict transform`` (a Hydra ``_partial_`` of
            :func:`particleseg.transforms.augment.nnunet_augmentation`), or None.
        touching: Callable ``(templates=...) -> dict transform`` (a ``_partial_`` of
            :class:`particleseg.transforms.touching.RandTouchingPasted`), or None.
        touching_min_bbox_voxels: Smallest bounding box of a pasted particle (voxels, resized).
        touching_max_templates: Most particles kept for pasting.
        val_crop_size: Size of the fixed validation crops (z, y, x).
        val_crops_per_sample: Crops per validation sample.
        cache_dir: Folder for prepared samples (memory-mapped by workers); None = in memory.
        normalization: The intensity normalization scheme (a config of
            :func:`particleseg.transforms.normalization.resolve_config`): ``{"scheme":
            "percentile", ...}`` per scan (default), or ``{"scheme": "global_zscore"}``, whose
            mean and std are ``intensity_stats`` or else computed on the fold's training images.
        intensity_stats: ``{"mean", "std"}`` for ``global_zscore`` instead of computing them.
        appearance: Callable ``(normalization=...) -> dict transform`` (a ``_partial_`` of
            :class:`particleseg.transforms.appearance.RandAppearanced`) re-rendering patches of
            samples that have a phase map, or None.
        seed: Seed of the validation crops and template subsample.
        worker_start_method: How DataLoader workers start: ``"spawn"`` (default) or
            ``"forkserver"``; ``"fork"`` is unsafe here because the parent has already run
            numba's OpenMP kernels (border-core conversion), which do not survive a fork.
    """

    def __init__(
        self,
        dataset_dir: str,
        target_particle_size: float,
        border_thickness: int,
        patch_size: Sequence[int],
        batch_size: int = 2,
        iterations_per_epoch: int = 250,
        num_workers: int = 1,
        fold: int | str = 0,
        n_folds: int = 5,
        fold_seed: int = 0,
        val_split: str | None = None,
        oversample_fg: float = 1 / 3,
        augmentation: Callable | None = None,
        touching: Callable | None = None,
        touching_min_bbox_voxels: int = 500,
        touching_max_templates: int = 500,
        val_crop_size: Sequence[int] | None = None,
        val_crops_per_sample: int = 2,
        cache_dir: str | None = None,
        normalization: dict | None = None,
        intensity_stats: dict | None = None,
        appearance: Callable | None = None,
        seed: int = 0,
        worker_start_method: str = "spawn",
    ) -> None:
        super().__init__()
        self.save_hyperparameters(logger=False, ignore=["augmentation", "touching", "appearance"])
        for key, value in list(self.hparams.items()):  # plain values: weights-only checkpoints
            if isinstance(value, (ListConfig, DictConfig)):
                self.hparams[key] = OmegaConf.to_container(value, resolve=True)
        self.augmentation = augmentation
        self.touching = touching
        self.appearance = appearance
        self.normalization: dict | None = None
        self.train_set: TrainPatches | None = None
        self.val_set: ValidationCrops | None = None

    # -- fold and statistics ---------------------------------------------------------------
    def fold_entries(self) -> tuple[list[SampleEntry], list[SampleEntry]]:
        """(training entries, validation entries): a fold of ``train``, or ``val_split``."""
        hp = self.hparams
        dataset = load_dataset(hp.dataset_dir)
        train = _labelled(dataset, "train", hp.dataset_dir)
        if hp.val_split is None:
            t, v = split_fold([e.group for e in train], hp.fold, hp.n_folds, hp.fold_seed)
            return [train[i] for i in t], [train[i] for i in v]
        if hp.val_split != "val":  # a test split must never choose a checkpoint
            raise ValueError(f"data.val_split must be 'val' or null, got {hp.val_split!r}")
        return train, _labelled(dataset, hp.val_split, hp.dataset_dir)

    def _normalization(self, entries: list[SampleEntry]) -> dict:
        """The resolved scheme config; ``global_zscore`` gets the training statistics."""
        hp = self.hparams
        cfg = dict(hp.normalization or {"scheme": "percentile"})
        if cfg.get("scheme") == "global_zscore" and "mean" not in cfg:
            if hp.intensity_stats is not None:
                stats = IntensityStats.from_dict(dict(hp.intensity_stats))
            else:
                stats = compute_intensity_stats(read_volume(e.image) for e in entries)
            cfg.update(mean=stats.mean, std=stats.std)
        return resolve_config(cfg)

    def _prepare(self, entries: list[SampleEntry], normalization: dict) -> list[PreparedSample]:
        hp = self.hparams
        size, border = hp.target_particle_size, hp.border_thickness
        return [prepare_sample(e, normalization, size, border, hp.cache_dir) for e in entries]

    # -- Lightning hooks ---------------------------------------------------------------------
    def prepare_data(self) -> None:
        """Fill the preparation cache once (rank 0 only), so ranks do not race on it."""
        if self.hparams.cache_dir is None:
            return
        train, val = self.fold_entries()
        normalization = self._normalization(train)
        log.info("preparing %d samples into %s", len(train) + len(val), self.hparams.cache_dir)
        self._prepare(train + [e for e in val if e not in train], normalization)

    def setup(self, stage: str | None = None) -> None:
        """Build the patch dataset, the particle templates and the validation crops."""
        if self.train_set is not None:
            return
        hp = self.hparams
        train_entries, val_entries = self.fold_entries()
        self.normalization = self._normalization(train_entries)
        train = self._prepare(train_entries, self.normalization)
        val = self._prepare(val_entries, self.normalization)
        patch = tuple(int(p) for p in hp.patch_size)
        appearance = None
        if self.appearance is not None:
            if any(s.phases is not None for s in train):
                appearance = self.appearance(normalization=self.normalization)
            else:
                log.warning("no training sample has a phase map; appearance randomization is off")
        augmentation = initial = None
        if self.augmentation is not None:
            # the phase map follows the spatial step, so the patch is re-rendered after it
            extra = {"nearest_keys": ("phases",)} if appearance is not None else {}
            augmentation = self.augmentation(patch_size=patch, **extra)
            initial = _initial_patch_size(self.augmentation, patch)
        touching = None
        if self.touching is not None:
            templates = self._templates(train, with_phases=appearance is not None)
            if templates:
                touching = self.touching(templates=templates)
            else:
                log.warning("no particle qualifies for the touching augmentation; it is off")
        self.train_set = TrainPatches(
            train,
            patch,
            initial or patch,
            length=hp.iterations_per_epoch * hp.batch_size,
            oversample_fg=hp.oversample_fg,
            touching=touching,
            augmentation=augmentation,
            appearance=appearance,
        )
        crop = tuple(hp.val_crop_size) if hp.val_crop_size is not None else patch
        self.val_set = ValidationCrops(
            validation_crops(val, crop, hp.val_crops_per_sample, seed=hp.seed)
        )

    def _templates(self, samples: list[PreparedSample], with_phases: bool = False) -> list:
        hp = self.hparams
        rng = np.random.default_rng(hp.seed)
        per_sample = max(1, hp.touching_max_templates // max(1, len(samples)))
        out = []
        for s in samples:
            out += extract_particles(
                np.asarray(s.image),
                np.asarray(s.instances),
                np.asarray(s.border_core),
                min_bbox_voxels=hp.touching_min_bbox_voxels,
                max_particles=per_sample,
                seed=int(rng.integers(2**31)),
                phases=None if not with_phases or s.phases is None else np.asarray(s.phases),
            )
        return out

    def train_dataloader(self) -> DataLoader:
        """Random patches; workers persist between epochs."""
        hp = self.hparams
        return DataLoader(
            self.train_set,
            batch_size=hp.batch_size,
            shuffle=False,
            num_workers=hp.num_workers,
            persistent_workers=hp.num_workers > 0,
            multiprocessing_context=hp.worker_start_method if hp.num_workers > 0 else None,
            drop_last=True,
        )

    def val_dataloader(self) -> DataLoader:
        """Fixed validation crops, one per batch."""
        return DataLoader(self.val_set, batch_size=1, collate_fn=_collate_one, num_workers=0)


def _labelled(dataset, split: str, dataset_dir: str) -> list[SampleEntry]:
    """The entries of ``split``; a ValueError if it has none or any lacks a label."""
    entries = list(dataset.split(split))
    where = Path(dataset_dir) / "dataset.json"
    unlabelled = [e.name for e in entries if e.label is None]
    if unlabelled:
        raise ValueError(f"{where}: {split!r} samples without a label: {', '.join(unlabelled)}")
    if not entries:
        raise ValueError(f"{where}: no {split!r} samples")
    return entries


def _initial_patch_size(augmentation: Callable, patch: tuple[int, int, int]) -> tuple[int, ...]:
    """Crop size the spatial augmentation needs, from the partial's rotation and scale knobs."""
    from particleseg.transforms.augment import initial_patch_size

    partial = isinstance(augmentation, functools.partial)
    func, given = (augmentation.func, augmentation.keywords) if partial else (augmentation, {})
    defaults = inspect.signature(func).parameters  # each default set once, in its signature
    names = ("rotation_deg", "rotation_p", "scale_range", "scale_p")
    if any(n not in given and n not in defaults for n in names):
        return tuple(patch)  # an augmentation without these knobs: no larger crop needed

    def knob(name: str) -> Any:
        return given[name] if name in given else defaults[name].default

    rotation = knob("rotation_deg") if knob("rotation_p") > 0 else 0.0
    scale = tuple(knob("scale_range")) if knob("scale_p") > 0 else (1.0, 1.0)
    return tuple(initial_patch_size(patch, rotation, scale))

"""Torch datasets over prepared samples: random training patches and fixed validation crops."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from particleseg.data.prepare import PreparedSample
from particleseg.data.sampling import crop_padded, patch_start


def _centre_crop(array: np.ndarray, size: Sequence[int]) -> np.ndarray:
    start = [(s - n) // 2 for s, n in zip(array.shape[-3:], size, strict=True)]
    sl = tuple(slice(a, a + n) for a, n in zip(start, size, strict=True))
    return array[(..., *sl)]


class TrainPatches(Dataset):
    """Random patches: crop -> touching -> spatial step -> appearance -> intensity augmentation.

    The crop is foreground-forced for a share of the items. The appearance is re-rendered from
    the phase map after the spatial step, on the output patch: the crop before it has
    :func:`~particleseg.transforms.augment.initial_patch_size` (up to 24x the voxels of a 64^3
    patch with the wide scale range), and rendering there cost most of the data pipeline. The
    touching paste carries the pasted particle's phases, so a re-rendered patch draws it like
    its own particles. An ``augmentation`` without ``split()`` (any other dict transform) gets
    the appearance before it, on the whole crop.

    Each item draws its own seed from torch's generator, which Lightning/torch seed per worker and
    per epoch, so epochs differ and a seeded run is reproducible.

    Args:
        samples: Prepared training samples.
        patch_size: Network patch (z, y, x).
        initial_patch_size: Larger crop fed to the spatial augmentation (>= patch_size).
        length: Items per epoch (iterations per epoch x batch size).
        oversample_fg: Share of items whose patch is centred on a foreground voxel (nnU-Net 1/3).
        touching: Dict transform pasting a touching particle (keys image, label, instance and
            the optional phases), or None.
        augmentation: Dict transform (keys image, label) returning ``patch_size`` tensors, or None
            for a plain centre crop. One with ``split()`` (:func:`nnunet_augmentation`, built
            with ``nearest_keys=("phases",)``) lets the appearance run between its spatial and
            intensity steps.
        appearance: Dict transform re-rendering the image from the crop's phase map (keys image,
            phases, phase_sample; :class:`particleseg.transforms.appearance.RandAppearanced`),
            or None. Samples without a phase map keep their image.

    Items are dicts: ``image`` float32 (1, z, y, x), ``label`` int64 (1, z, y, x) border-core.
    """

    def __init__(
        self,
        samples: Sequence[PreparedSample],
        patch_size: Sequence[int],
        initial_patch_size: Sequence[int],
        length: int,
        oversample_fg: float = 1 / 3,
        touching: Callable | None = None,
        augmentation: Callable | None = None,
        appearance: Callable | None = None,
    ) -> None:
        if not samples:
            raise ValueError("no training samples: the training split of this fold is empty")
        if any(i < p for i, p in zip(initial_patch_size, patch_size, strict=True)):
            raise ValueError(
                f"initial_patch_size {tuple(initial_patch_size)} must be >= patch_size "
                f"{tuple(patch_size)} on every axis"
            )
        self.samples = list(samples)
        self.patch_size = tuple(int(p) for p in patch_size)
        self.initial_patch_size = tuple(int(p) for p in initial_patch_size)
        self.length = int(length)
        self.oversample_fg = float(oversample_fg)
        self.touching = touching
        self.augmentation = augmentation
        self.appearance = appearance
        split = getattr(augmentation, "split", None) if appearance is not None else None
        self._stages = split() if split is not None else None

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        seed = int(torch.randint(0, 2**31 - 1, ()).item())
        rng = np.random.default_rng(seed)
        s = self.samples[rng.integers(len(self.samples))]
        force_fg = rng.random() < self.oversample_fg
        start = patch_start(
            s.shape, self.initial_patch_size, rng, s.fg_coords if force_fg else None
        )
        size = self.initial_patch_size
        data = {
            "image": crop_padded(s.image, start, size)[None],
            "label": crop_padded(s.border_core, start, size)[None],
            "instance": crop_padded(s.instances, start, size)[None],
        }
        render = self.appearance is not None and s.phases is not None
        if render:
            data["phases"] = crop_padded(s.phases, start, size)[None]
        if self.touching is not None:
            self.touching.set_random_state(seed=seed)
            data = self.touching(data)
        data.pop("instance")
        if self.augmentation is not None:
            self.augmentation.set_random_state(seed=seed)
        if self.augmentation is None:
            data = {k: _centre_crop(v, self.patch_size) for k, v in data.items()}
            data = self._appearance(data, s, seed) if render else data
        elif self._stages is not None:
            spatial, intensity = self._stages
            data = spatial(data)
            data = self._appearance(data, s, seed) if render else data
            data = intensity(data)
        else:
            data = self._appearance(data, s, seed) if render else data
            data = self.augmentation(data)
        return {
            "image": torch.as_tensor(np.asarray(data["image"]), dtype=torch.float32),
            "label": torch.as_tensor(np.asarray(data["label"])).long(),
        }

    def _appearance(self, data: dict, sample: PreparedSample, seed: int) -> dict:
        data["phase_sample"] = sample.phase_sample
        self.appearance.set_random_state(seed=seed)
        return self.appearance(data)


def validation_crops(
    samples: Sequence[PreparedSample],
    crop_size: Sequence[int],
    crops_per_sample: int,
    seed: int = 0,
) -> list[dict]:
    """Fixed validation crops, centred on foreground, so every validation compares like with like.

    A sample no larger than ``crop_size`` is used whole. Crops are padded where they leave the
    sample (padding is background in the instances).

    Returns:
        Dicts with ``name`` (str), ``image`` float32 (1, z, y, x) and ``instances`` uint32
        (z, y, x) numpy arrays.
    """
    rng = np.random.default_rng(seed)
    out = []
    for s in samples:
        if all(d <= c for d, c in zip(s.shape, crop_size, strict=True)):
            starts = [(0, 0, 0)]
            size = s.shape
        else:
            size = tuple(min(c, d) for c, d in zip(crop_size, s.shape, strict=True))
            starts = [patch_start(s.shape, size, rng, s.fg_coords) for _ in range(crops_per_sample)]
        for k, start in enumerate(starts):
            out.append(
                {
                    "name": f"{s.name}#{k}",
                    "image": crop_padded(s.image, start, size)[None],
                    "instances": crop_padded(s.instances, start, size),
                }
            )
    return out


class ValidationCrops(Dataset):
    """A list of validation crops as a torch dataset (batch size 1: crops may differ in shape)."""

    def __init__(self, crops: list[dict]) -> None:
        self.crops = crops

    def __len__(self) -> int:
        return len(self.crops)

    def __getitem__(self, index: int) -> dict:
        c = self.crops[index]
        return {
            "name": c["name"],
            "image": torch.from_numpy(np.ascontiguousarray(c["image"])),
            "instances": torch.from_numpy(c["instances"].astype(np.int64)),
        }

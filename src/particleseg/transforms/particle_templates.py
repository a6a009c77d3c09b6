"""Particles cut out of training volumes as paste templates for the touching augmentation.

- :class:`ParticleTemplate`: one particle D (image crop, mask, border-core labels and, where the
  volume has a phase map, its phases);
- :func:`extract_particles`: the whole particles of a labelled volume, cut out once before
  training (:mod:`particleseg.transforms.touching` pastes them).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.ndimage as ndi

#: Sigma, in voxels, of the Gaussian that softens the pasted mask into the blending weight.
BLEND_SIGMA = 1.0


@dataclass(frozen=True, eq=False)
class ParticleTemplate:
    """One particle D cut out of a training volume, ready to paste.

    Attributes:
        image: (z, y, x) float32 crop of the source image: D's bounding box plus a margin.
        mask: (z, y, x) bool, True on D's voxels.
        border_core: (z, y, x) uint8 border-core labels of D inside ``mask`` (1 core, 2 border),
            0 outside.
        phases: (z, y, x) uint8 phase codes (:mod:`particleseg.io.phase_codes`) of the crop, or
            None when the source volume has no phase map. The touching paste copies D's phases
            with its labels, so a patch re-rendered from its phase map afterwards renders D in
            the same appearance as the patch's own particles.
    """

    image: np.ndarray
    mask: np.ndarray
    border_core: np.ndarray
    phases: np.ndarray | None = None

    def __post_init__(self):
        image = np.ascontiguousarray(self.image, dtype=np.float32)
        mask = np.ascontiguousarray(self.mask, dtype=bool)
        border_core = np.ascontiguousarray(self.border_core, dtype=np.uint8)
        if image.ndim != 3:
            raise ValueError(f"template image must be 3D (z, y, x), got shape {image.shape}")
        if mask.shape != image.shape or border_core.shape != image.shape:
            raise ValueError(
                "template image, mask and border_core must have the same shape, got "
                f"{image.shape}, {mask.shape} and {border_core.shape}"
            )
        if not mask.any():
            raise ValueError("template mask is empty")
        if self.phases is not None:
            phases = np.asarray(self.phases)
            if phases.shape != image.shape or phases.dtype != np.uint8:
                raise ValueError(
                    f"template phases must be uint8 of shape {image.shape}, got "
                    f"{phases.dtype} {phases.shape}"
                )
            object.__setattr__(self, "phases", np.ascontiguousarray(phases))
        object.__setattr__(self, "image", image)
        object.__setattr__(self, "mask", mask)
        object.__setattr__(self, "border_core", border_core)

    @property
    def shape(self) -> tuple[int, int, int]:
        """Shape (z, y, x) of the crop."""
        return self.image.shape

    @cached_property
    def n_voxels(self) -> int:
        """Number of voxels of D."""
        return int(np.count_nonzero(self.mask))

    @cached_property
    def centroid(self) -> np.ndarray:
        """(3,) float64 centroid of D, in crop coordinates."""
        return np.argwhere(self.mask).mean(axis=0)

    @cached_property
    def weight(self) -> np.ndarray:
        """(z, y, x) float32 blending weight: the mask blurred (sigma 1), 1 on the mask."""
        weight = ndi.gaussian_filter(self.mask.astype(np.float32), BLEND_SIGMA, mode="constant")
        np.maximum(weight, self.mask, out=weight)
        return np.clip(weight, 0.0, 1.0, out=weight)


def check_volumes(image, instances, border_core) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The three (Z, Y, X) volumes as arrays, or a ValueError naming the shapes or dtype."""
    image = np.asarray(image)
    instances = np.asarray(instances)
    border_core = np.asarray(border_core)
    if instances.ndim != 3:
        raise ValueError(f"instances must be a 3D array (Z, Y, X), got shape {instances.shape}")
    if not np.issubdtype(instances.dtype, np.integer):
        raise ValueError(f"instances must have an integer dtype, got {instances.dtype}")
    if image.shape != instances.shape or border_core.shape != instances.shape:
        raise ValueError(
            "image, instances and border_core must have the same shape, got "
            f"{image.shape}, {instances.shape} and {border_core.shape}"
        )
    if not np.issubdtype(image.dtype, np.number) or np.iscomplexobj(image):
        raise ValueError(f"image must have a real dtype, got {image.dtype}")
    return image, instances, border_core


def extract_particles(
    image: np.ndarray,
    instances: np.ndarray,
    border_core: np.ndarray,
    min_bbox_voxels: int = 500,
    margin: int = 2,
    max_particles: int | None = None,
    seed: int | np.random.Generator | None = None,
    phases: np.ndarray | None = None,
) -> list[ParticleTemplate]:
    """Cut the particles of a labelled volume out as paste templates.

    A particle is kept when its bounding box does not touch the volume edge (it is whole) and
    holds at least ``min_bbox_voxels`` voxels. Each template is the bounding box grown by
    ``margin`` voxels per side (less where the volume ends). The border-core labels are cropped
    as they are: every surface voxel of a particle borders background or another particle, so a
    particle's border-core in its volume is the one it has alone.

    Args:
        image: (Z, Y, X) real image; the templates hold it as float32.
        instances: (Z, Y, X) integer instance labels, 0 = background.
        border_core: (Z, Y, X) uint8 border-core map of ``instances``.
        min_bbox_voxels: smallest bounding-box volume kept, in voxels.
        margin: voxels of context kept around the bounding box (the blending reaches into it).
        max_particles: if set, keep a random subset of at most this many particles.
        seed: seed or generator for that subset.
        phases: (Z, Y, X) uint8 phase map of the volume, or None; cropped into each template.

    Returns:
        List of :class:`ParticleTemplate`, in increasing particle id.
    """
    image, instances, border_core = check_volumes(image, instances, border_core)
    if phases is not None and np.shape(phases) != instances.shape:
        raise ValueError(
            f"phases must have the shape of instances {instances.shape}, got {np.shape(phases)}"
        )
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    if max_particles is not None and max_particles < 0:
        raise ValueError(f"max_particles must be >= 0 or None, got {max_particles}")
    if instances.dtype.kind == "i" and instances.size and instances.min() < 0:
        raise ValueError("instances must be non-negative")
    shape = np.array(instances.shape)
    kept: list[tuple[int, tuple[slice, ...]]] = []
    for index, box in enumerate(ndi.find_objects(instances)):
        if box is None:
            continue
        lo = np.array([s.start for s in box])
        hi = np.array([s.stop for s in box])
        if np.any(lo == 0) or np.any(hi == shape):
            continue  # cut by the volume edge
        if int(np.prod(hi - lo)) < min_bbox_voxels:
            continue
        lo = np.maximum(lo - margin, 0)
        hi = np.minimum(hi + margin, shape)
        kept.append((index + 1, tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))))
    if max_particles is not None and len(kept) > max_particles:
        rng = np.random.default_rng(seed)
        chosen = np.sort(rng.choice(len(kept), size=max_particles, replace=False))
        kept = [kept[i] for i in chosen]
    templates = []
    for label, box in kept:
        mask = instances[box] == label
        templates.append(
            ParticleTemplate(
                image=image[box],
                mask=mask,
                border_core=np.where(mask, border_core[box], 0).astype(np.uint8),
                phases=None if phases is None else np.asarray(phases[box], dtype=np.uint8),
            )
        )
    return templates


__all__ = ["BLEND_SIGMA", "ParticleTemplate", "check_volumes", "extract_particles"]

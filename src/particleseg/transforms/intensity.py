"""Global intensity normalization: one mean and std over all training voxels, then z-scoring.

:func:`compute_intensity_stats` streams over Z-slabs of any number of volumes (numpy arrays,
memmaps, zarr arrays) and pools their float64 moments exactly, so memory stays one slab.
:func:`zscore` applies ``(x - mean) / std`` in float32 after an explicit cast of the raw values;
an integer image is never rescaled to [0, 1] first. :class:`ZScore` and :class:`ZScored` wrap it
as MONAI transforms for numpy arrays and torch tensors.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from numbers import Real
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform, Transform


def _check_mean_std(mean: Any, std: Any) -> tuple[float, float]:
    if not isinstance(mean, Real) or isinstance(mean, bool) or not math.isfinite(mean):
        raise ValueError(f"mean must be a finite number, got {mean!r}")
    if not isinstance(std, Real) or isinstance(std, bool) or not math.isfinite(std) or std <= 0:
        raise ValueError(f"std must be a positive finite number, got {std!r}")
    return float(mean), float(std)


@dataclass(frozen=True)
class IntensityStats:
    """Global intensity statistics of a set of volumes.

    Attributes:
        mean: Mean of all voxels.
        std: Population standard deviation (ddof 0) of all voxels, > 0.
        n_voxels: Number of voxels the statistics were computed over, > 0; None when the
            values were given rather than computed (e.g. from a config).
    """

    mean: float
    std: float
    n_voxels: int | None = None

    def __post_init__(self) -> None:
        mean, std = _check_mean_std(self.mean, self.std)
        n = self.n_voxels
        if n is not None and (isinstance(n, bool) or not isinstance(n, int | np.integer) or n <= 0):
            raise ValueError(f"n_voxels must be a positive integer or None, got {n!r}")
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "std", std)
        object.__setattr__(self, "n_voxels", None if n is None else int(n))

    def to_dict(self) -> dict[str, float | int | None]:
        """JSON-ready dict ``{"mean": ..., "std": ..., "n_voxels": ...}``."""
        return {"mean": self.mean, "std": self.std, "n_voxels": self.n_voxels}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> IntensityStats:
        """Inverse of :meth:`to_dict` (``n_voxels`` optional); validates mean and std > 0.

        Raises:
            ValueError: ``mean`` or ``std`` is missing, or a value is invalid.
        """
        missing = [k for k in ("mean", "std") if k not in d]
        if missing:
            raise ValueError(f"intensity stats dict is missing keys {missing}, got {dict(d)!r}")
        n = d.get("n_voxels")
        if isinstance(n, float) and n.is_integer():
            n = int(n)
        return cls(mean=d["mean"], std=d["std"], n_voxels=n)


def compute_intensity_stats(images: Iterable[Any], slab: int = 16) -> IntensityStats:
    """Mean and population std over all voxels of all images, streamed over Z-slabs.

    Each slab of ``slab`` Z-slices is read, cast to float64 and reduced to (count, mean, sum of
    squared deviations); these are pooled exactly with Chan et al.'s parallel update, so the
    result equals ``np.mean`` / ``np.std`` of the concatenation of all voxels (up to float64
    rounding) while memory stays about one slab.

    Args:
        images: (Z, Y, X) arrays of any integer or float dtype: numpy arrays, memmaps, zarr
            arrays (anything with ``.shape`` and Z slicing).
        slab: number of Z-slices read at a time, >= 1.

    Returns:
        The pooled :class:`IntensityStats`.

    Raises:
        ValueError: No images (or no voxels), an image is not 3D, has a non-numeric dtype or
            non-finite values, or all voxels are equal (std 0).
    """
    if isinstance(slab, bool) or not isinstance(slab, int | np.integer) or slab < 1:
        raise ValueError(f"slab must be a positive integer, got {slab!r}")
    n_total = 0
    mean_total = 0.0
    m2_total = 0.0
    n_images = 0
    for index, image in enumerate(images):
        n_images += 1
        shape = tuple(getattr(image, "shape", np.shape(image)))
        if len(shape) != 3:
            raise ValueError(f"image {index} must be 3D (Z, Y, X), got shape {shape}")
        dtype = np.dtype(getattr(image, "dtype", np.asarray(image).dtype))
        if dtype.kind not in "biuf":
            raise ValueError(f"image {index} must have an integer or float dtype, got {dtype}")
        for z0 in range(0, shape[0], slab):
            # A copy: the slab is centred in place below and must not alias the caller's array.
            block = np.array(image[z0 : z0 + slab], dtype=np.float64, copy=True)
            n = block.size
            if n == 0:
                continue
            if dtype.kind == "f" and not np.isfinite(block).all():
                raise ValueError(
                    f"image {index} has non-finite values (NaN or inf) in Z-slices "
                    f"[{z0}, {z0 + block.shape[0]})"
                )
            mean = float(block.mean())
            block -= mean
            m2 = float(np.dot(block.ravel(), block.ravel()))
            # Chan et al. pairwise combination of (n, mean, M2).
            n_new = n_total + n
            delta = mean - mean_total
            mean_total += delta * (n / n_new)
            m2_total += m2 + delta * delta * (n_total * n / n_new)
            n_total = n_new
    if n_images == 0:
        raise ValueError("no images given: cannot compute intensity statistics")
    if n_total == 0:
        raise ValueError(f"the {n_images} image(s) given have no voxels")
    std = math.sqrt(max(m2_total, 0.0) / n_total)
    if not math.isfinite(mean_total) or not math.isfinite(std):
        raise ValueError(f"intensity statistics overflowed: mean {mean_total}, std {std}")
    if std <= 0:
        raise ValueError(
            f"all {n_total} voxels have the same value {mean_total}: std is 0, cannot z-score"
        )
    return IntensityStats(mean=mean_total, std=std, n_voxels=n_total)


def zscore(image: Any, mean: float, std: float) -> np.ndarray:
    """Z-score an image: ``(x - mean) / std`` in float32.

    The raw values are cast to float32 explicitly (an integer image is NOT rescaled to [0, 1]).

    Args:
        image: array of any shape and integer or float dtype.
        mean: global mean (finite).
        std: global standard deviation (finite, > 0).

    Returns:
        float32 array of the same shape (always a new array).

    Raises:
        ValueError: ``mean`` is not finite, ``std`` not positive and finite, or the dtype is not
            numeric.
    """
    mean, std = _check_mean_std(mean, std)
    image = np.asarray(image)
    if image.dtype.kind not in "biuf":
        raise ValueError(f"image must have an integer or float dtype, got {image.dtype}")
    out = image.astype(np.float32, copy=True)
    out -= np.float32(mean)
    out /= np.float32(std)
    return out


def _zscore_tensor(image: torch.Tensor, mean: float, std: float) -> torch.Tensor:
    if image.is_complex() or image.dtype == torch.bool:
        raise ValueError(f"image must have an integer or float dtype, got {image.dtype}")
    # .to() keeps MetaTensor metadata; the result is a new tensor.
    return (image.to(torch.float32) - mean) / std


class ZScore(Transform):
    """Array transform: z-score a numpy array or torch tensor with fixed global statistics.

    Returns the same kind (numpy array or tensor, MetaTensor kept) as float32.
    """

    backend = ["numpy", "torch"]

    def __init__(self, mean: float, std: float) -> None:
        self.mean, self.std = _check_mean_std(mean, std)

    @classmethod
    def from_stats(cls, stats: IntensityStats) -> ZScore:
        """Build from :class:`IntensityStats`."""
        return cls(stats.mean, stats.std)

    def __call__(self, img: Any) -> Any:
        """Z-score ``img`` (any shape, e.g. (C, Z, Y, X)); returns float32 of the same kind."""
        if isinstance(img, torch.Tensor):
            return _zscore_tensor(img, self.mean, self.std)
        return zscore(img, self.mean, self.std)


class ZScored(MapTransform):
    """Dict transform: :class:`ZScore` applied to each of ``keys``."""

    backend = ZScore.backend

    def __init__(
        self, keys: KeysCollection, mean: float, std: float, allow_missing_keys: bool = False
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.zscorer = ZScore(mean, std)

    @classmethod
    def from_stats(
        cls, keys: KeysCollection, stats: IntensityStats, allow_missing_keys: bool = False
    ) -> ZScored:
        """Build from :class:`IntensityStats`."""
        return cls(keys, stats.mean, stats.std, allow_missing_keys)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Return a shallow copy of ``data`` with each key z-scored (float32, same kind)."""
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.zscorer(d[key])
        return d

"""ThreshWater: the classical threshold + erosion + watershed baseline (paper section 4.3.1).

Pipeline, for a greyscale volume of bright particles on a darker background:

1. threshold: Otsu's threshold (or a given one) plus an offset expressed as a fraction of the
   image's robust intensity range, so that one tuned offset transfers between scans of different
   gain;
2. noise suppression: a morphological opening of the mask by a Euclidean ball (erosion, then
   dilation back inside the mask), which removes specks thinner than the ball while surviving
   particles keep their size;
3. seeds: a further erosion of the opened mask (Euclidean distance to the background above
   ``seed_erosion``), labelled by connected components;
4. watershed of the opened mask on the negated distance transform from those seeds
   (scikit-image); mask components that received no seed become particles of their own.

All Euclidean distance transforms use the ``edt`` package; the volume edge is *not* treated as
background, so a particle cut by the edge is not eroded from its cut face.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import cc3d
import edt
import numpy as np
from skimage.filters import threshold_otsu
from skimage.segmentation import watershed

__all__ = [
    "ThresholdStats",
    "distance_to_background",
    "intensity_stats",
    "open_mask",
    "resolve_threshold",
    "seeded_watershed",
    "threshwater",
    "validate_image",
]

#: Otsu's threshold and the percentiles are computed on a strided subsample of at most this many
#: voxels.
SUBSAMPLE_VOXELS = 2**22

#: Percentiles that define the robust intensity range.
ROBUST_PERCENTILES = (1.0, 99.0)

_CC3D_CONNECTIVITY = {1: 6, 2: 18, 3: 26}


class ThresholdStats(NamedTuple):
    """Otsu's threshold and the robust intensity range of an image.

    The baselines' own statistics (the z-score's mean and std are
    :class:`particleseg.transforms.intensity.IntensityStats`).
    """

    otsu: float
    low: float
    high: float

    @property
    def span(self) -> float:
        """Width of the robust range, ``high - low`` (> 0)."""
        return self.high - self.low


def validate_image(image: np.ndarray) -> np.ndarray:
    """Check that ``image`` is a finite, real-valued 3D volume.

    Args:
        image: Greyscale volume ``(Z, Y, X)``, any real numeric dtype.

    Returns:
        ``image`` as a numpy array (not copied).

    Raises:
        ValueError: If it is not 3D, is empty, has a non-numeric or complex dtype, or contains
            NaN or infinite values; the message names the shape.
    """
    image = np.asarray(image)
    if image.ndim != 3:
        raise ValueError(f"image must be a 3D (Z, Y, X) volume, got shape {image.shape}")
    if image.size == 0:
        raise ValueError(f"image is empty (shape {image.shape})")
    if not (np.issubdtype(image.dtype, np.number) or image.dtype == bool) or np.iscomplexobj(image):
        raise ValueError(
            f"image must have a real numeric dtype, got {image.dtype} (shape {image.shape})"
        )
    if np.issubdtype(image.dtype, np.floating) and not np.isfinite(image).all():
        raise ValueError(f"image of shape {image.shape} contains NaN or infinite values")
    return image


def _subsample(image: np.ndarray, max_voxels: int) -> np.ndarray:
    """A regular strided view of ``image`` with at most about ``max_voxels`` voxels."""
    step = max(1, math.ceil((image.size / max_voxels) ** (1.0 / image.ndim)))
    return image[(slice(None, None, step),) * image.ndim]


def intensity_stats(image: np.ndarray) -> ThresholdStats:
    """Otsu's threshold and the robust intensity range of a volume.

    Both are computed on a strided subsample of at most :data:`SUBSAMPLE_VOXELS` voxels. The
    robust range is the 1st to 99th percentile; when those coincide (e.g. particles fill less
    than 1% of the volume) it falls back to the minimum and maximum.

    Args:
        image: Greyscale volume ``(Z, Y, X)``, real dtype, finite.

    Returns:
        The :class:`ThresholdStats` ``(otsu, low, high)``, with ``high > low``.

    Raises:
        ValueError: If the image is constant (nothing to threshold).
    """
    image = validate_image(image)
    sample = _subsample(image, SUBSAMPLE_VOXELS).astype(np.float64)
    low, high = np.percentile(sample, ROBUST_PERCENTILES)
    if not high > low:
        low, high = float(image.min()), float(image.max())
        if not high > low:
            raise ValueError(
                f"image of shape {image.shape} is constant (value {low}); nothing to threshold"
            )
        if not sample.max() > sample.min():
            sample = image.astype(np.float64)
    return ThresholdStats(float(threshold_otsu(sample)), float(low), float(high))


def resolve_threshold(
    stats: ThresholdStats, threshold: float | None = None, threshold_offset: float = 0.0
) -> float:
    """The intensity threshold ThreshWater applies.

    Args:
        stats: Intensity statistics of the image (:func:`intensity_stats`).
        threshold: Base threshold in image units; None uses Otsu's threshold.
        threshold_offset: Added to the base threshold, as a fraction of the robust range
            ``stats.span`` (e.g. 0.05 raises the threshold by 5% of the 1st-99th percentile
            range).

    Returns:
        ``base + threshold_offset * stats.span``; voxels strictly above it are foreground.
    """
    base = stats.otsu if threshold is None else float(threshold)
    value = base + float(threshold_offset) * stats.span
    if not math.isfinite(value):
        raise ValueError(
            f"threshold must be finite, got threshold={threshold}, "
            f"threshold_offset={threshold_offset}"
        )
    return value


def open_mask(mask: np.ndarray, radius: float) -> np.ndarray:
    """Morphological opening of a binary volume by a Euclidean ball.

    Erosion keeps the voxels farther than ``radius`` from the background
    (``edt(mask) > radius``); the dilation back takes every voxel within ``radius`` of a kept
    voxel, restricted to ``mask``. Specks and bridges thinner than the ball vanish; everything
    else keeps its size and shape (up to the ball's resolution), unlike a plain erosion.

    Args:
        mask: ``(Z, Y, X)`` bool foreground.
        radius: Ball radius in voxels, >= 0; 0 returns ``mask`` unchanged.

    Returns:
        ``(Z, Y, X)`` bool opened mask, a subset of ``mask``.
    """
    mask = np.asarray(mask, dtype=bool)
    if radius <= 0:
        return mask
    core = edt.edt(mask) > radius
    if not core.any():
        return np.zeros_like(mask)
    return (edt.edt(~core) <= radius) & mask


def distance_to_background(mask: np.ndarray) -> np.ndarray:
    """Euclidean distance of each voxel to the background of ``mask``.

    Args:
        mask: ``(Z, Y, X)`` bool foreground.

    Returns:
        ``(Z, Y, X)`` float32 distances (0 on the background); finite even when ``mask`` has no
        background voxel (then capped at the sum of the shape).
    """
    distance = edt.edt(mask)
    if np.isinf(distance).any():  # no background voxel at all
        distance[np.isinf(distance)] = float(sum(mask.shape))
    return distance


def _check_connectivity(connectivity: int) -> int:
    if connectivity not in _CC3D_CONNECTIVITY:
        raise ValueError(
            f"connectivity must be 1, 2 or 3 (6-, 18-, 26-neighbours), got {connectivity}"
        )
    return _CC3D_CONNECTIVITY[connectivity]


def seeded_watershed(
    mask: np.ndarray,
    distance: np.ndarray,
    seed_erosion: float,
    connectivity: int = 1,
) -> np.ndarray:
    """Split a binary mask into particles by a watershed from eroded-mask seeds.

    Seeds are the connected components of ``distance > seed_erosion``; the watershed floods
    ``-distance`` inside ``mask`` from them. Components of ``mask`` that contain no seed become
    particles of their own, so no foreground voxel is dropped.

    Args:
        mask: ``(Z, Y, X)`` bool foreground.
        distance: ``(Z, Y, X)`` float Euclidean distance of each voxel of ``mask`` to the
            background (``edt.edt(mask)``).
        seed_erosion: Seeds are the voxels farther than this from the background (voxels).
        connectivity: 1, 2 or 3 (6-, 18-, 26-neighbourhood) for seed labelling, the watershed and
            seedless components.

    Returns:
        ``(Z, Y, X)`` uint32 labels, 0 background, ids 1..N consecutive: first the seeded
        particles, then the seedless components.
    """
    neighbours = _check_connectivity(connectivity)
    seeds, n_seeds = cc3d.connected_components(
        distance > seed_erosion, connectivity=neighbours, return_N=True, out_dtype=np.uint32
    )
    if n_seeds:
        labels = watershed(-distance, markers=seeds, mask=mask, connectivity=connectivity)
        labels = labels.astype(np.uint32, copy=False)
    else:
        labels = np.zeros(mask.shape, np.uint32)
    rest = mask & (labels == 0)
    if rest.any():
        extra = cc3d.connected_components(rest, connectivity=neighbours, out_dtype=np.uint32)
        labels[rest] = extra[rest] + np.uint32(n_seeds)
    return labels


def threshwater(
    image: np.ndarray,
    *,
    threshold: float | None = None,
    threshold_offset: float = 0.0,
    noise_erosion: float = 1,
    seed_erosion: float = 3,
    connectivity: int = 1,
) -> np.ndarray:
    """Segment particles with ThreshWater (threshold, opening, seeded watershed).

    Args:
        image: Greyscale volume ``(Z, Y, X)``, any real dtype, finite; particles brighter than
            the background.
        threshold: Intensity threshold in image units; None uses Otsu's threshold, computed on a
            strided subsample of big volumes.
        threshold_offset: Added to the threshold as a fraction of the image's robust intensity
            range (1st-99th percentile), so that one tuned value transfers between scans of
            different gain and offset.
        noise_erosion: Radius (voxels) of the Euclidean ball of the noise-suppressing
            *opening*: erosion ``edt(mask) > noise_erosion`` followed by dilation back inside
            the thresholded mask, so surviving particles keep their size. 0 disables it.
        seed_erosion: Watershed seeds are the voxels of the opened mask farther than this
            (voxels) from its background, labelled by connected components.
        connectivity: 1, 2 or 3 (6-, 18-, 26-neighbourhood) for the seeds, the watershed and
            seedless components (the default 1 labels seeds with 6-connectivity).

    Returns:
        ``(Z, Y, X)`` uint32 instance labels, 0 background, ids 1..N consecutive. Components
        of the opened mask without a seed are particles of their own.

    Raises:
        ValueError: If the image is not 3D, is empty, not finite, or constant; or a parameter
            is out of range.
    """
    image = validate_image(image)
    if not noise_erosion >= 0 or not seed_erosion >= 0:
        raise ValueError(
            f"noise_erosion and seed_erosion must be >= 0, got {noise_erosion}, {seed_erosion}"
        )
    _check_connectivity(connectivity)
    value = resolve_threshold(intensity_stats(image), threshold, threshold_offset)
    mask = open_mask(image > value, noise_erosion)
    return seeded_watershed(mask, distance_to_background(mask), seed_erosion, connectivity)

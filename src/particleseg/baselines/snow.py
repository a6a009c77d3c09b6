"""SNOW: threshold, then porespy's SNOW partitioning of the foreground (a classical baseline).

SNOW (Sub-Network of an Over-segmented Watershed, Gostick 2017) is what porous-media and
granular-materials users run on a binarized scan: ``porespy.filters.snow_partitioning`` smooths
the distance transform of the foreground with a Gaussian (``sigma``), takes its local maxima
within a ball of radius ``r_max`` as markers, drops saddle points and peaks closer to each other
than to the background, and floods the negated distance transform from the surviving markers.

Pipeline, for a greyscale volume of bright particles on a darker background:

1. threshold, exactly as :func:`~particleseg.baselines.threshwater.threshwater` does (Otsu's
   threshold or a given one, plus an offset as a fraction of the robust intensity range); there
   is no opening: SNOW's smoothing and ``min_size`` take its place;
2. ``porespy.filters.snow_partitioning`` of the mask, with the same Euclidean distance transform
   as ThreshWater (the volume edge is not background);
3. clean-up: porespy floods the whole volume, so a region restricted to the mask can fall apart;
   every connected piece becomes a fragment of its own, fragments smaller than ``min_size`` voxels
   are handed to the neighbouring particles they touch (a watershed of the mask from the other
   fragments), and isolated ones (noise specks) are dropped.

porespy is an optional dependency (``pip install -e .[eval]``, or ``requirements-dev.txt``); it
is imported on first use, with its side effects on the process undone (it installs a logging
handler on the root logger and changes numpy's floating-point error state when imported).
"""

from __future__ import annotations

import logging
import numbers
from types import ModuleType
from typing import Any

import cc3d
import numpy as np
from skimage.segmentation import watershed

from particleseg.baselines.threshwater import (
    ThresholdStats,
    distance_to_background,
    intensity_stats,
    resolve_threshold,
    validate_image,
)

__all__ = ["check_snow_params", "import_porespy", "snow_partition", "snow_segment"]

_PORESPY: ModuleType | None = None


def import_porespy() -> ModuleType:
    """Import porespy once, quietly, and undo what its import does to the process.

    porespy's ``__init__`` calls ``logging.basicConfig`` with a rich handler (which would take
    over the root logger's output) and ``numpy.seterr(divide="ignore", invalid="ignore")``; both
    are restored here, and the ``porespy`` logger is set to ERROR (its own default setting), so
    that its info messages and warnings do not reach the run's log. Its progress bars are off by
    default and stay off.

    Returns:
        The ``porespy`` module.

    Raises:
        ImportError: If porespy is not installed; the message says how to install it.
    """
    global _PORESPY
    if _PORESPY is not None:
        return _PORESPY
    root = logging.getLogger()
    handlers, level, errstate = list(root.handlers), root.level, np.geterr()
    try:
        import porespy
    except ImportError as error:
        raise ImportError(
            "the SNOW baseline needs porespy, an optional dependency: "
            "pip install -e .[eval]  (or pip install -r requirements-dev.txt)"
        ) from error
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        np.seterr(**errstate)
    logging.getLogger("porespy").setLevel(logging.ERROR)
    porespy.settings.tqdm["disable"] = True
    _PORESPY = porespy
    return porespy


def check_snow_params(
    *, sigma: float | None = None, r_max: Any = None, min_size: Any = None
) -> None:
    """Check SNOW's parameters; the ones given as None are not checked.

    Args:
        sigma: Standard deviation (voxels) of the Gaussian smoothing of the distance transform,
            >= 0 (0: no smoothing).
        r_max: Radius (voxels) of the ball within which a marker must be the maximum, an
            integer >= 1.
        min_size: Fragments with fewer voxels are merged into their neighbours or dropped, an
            integer >= 0 (0 and 1 keep every fragment).

    Raises:
        ValueError: If a value is out of range or not an integer where one is needed.
    """
    if sigma is not None and not (isinstance(sigma, numbers.Real) and 0 <= sigma < np.inf):
        raise ValueError(f"sigma must be a finite number >= 0, got {sigma!r}")
    for name, value, low in (("r_max", r_max, 1), ("min_size", min_size, 0)):
        if value is None:
            continue
        if not (isinstance(value, numbers.Real) and float(value).is_integer() and value >= low):
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


def snow_mask(
    image: np.ndarray,
    stats: ThresholdStats,
    threshold: float | None = None,
    threshold_offset: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """The thresholded foreground (as ThreshWater's) and its distance transform.

    Args:
        image: Greyscale volume ``(Z, Y, X)``, real dtype, finite.
        stats: Its :func:`~particleseg.baselines.threshwater.intensity_stats`.
        threshold: Base threshold in image units; None uses Otsu's.
        threshold_offset: Added to the base, as a fraction of the robust intensity range.

    Returns:
        ``(mask, distance)``: ``(Z, Y, X)`` bool voxels strictly above the threshold, and
        ``(Z, Y, X)`` float32 Euclidean distance of each to the background.
    """
    mask = image > resolve_threshold(stats, threshold, threshold_offset)
    return mask, distance_to_background(mask)


def _merge_small_fragments(
    regions: np.ndarray, mask: np.ndarray, distance: np.ndarray, min_size: int
) -> np.ndarray:
    """Split regions into connected fragments; hand small ones to neighbours or drop them.

    Args:
        regions: ``(Z, Y, X)`` integer region ids, 0 outside ``mask``.
        mask: ``(Z, Y, X)`` bool foreground.
        distance: ``(Z, Y, X)`` float distance of the foreground to the background.
        min_size: Fragments (26-connected pieces of one region) with fewer voxels are removed
            and their voxels flooded from the touching fragments; voxels no other fragment
            reaches become background.

    Returns:
        ``(Z, Y, X)`` uint32 labels, 0 background, ids 1..N consecutive.
    """
    fragments = cc3d.connected_components(regions, connectivity=26, out_dtype=np.uint32)
    if min_size <= 1 or not fragments.any():
        return fragments
    sizes = np.bincount(fragments.ravel())
    small = sizes < min_size
    small[0] = False
    if not small[1:].any():
        return fragments
    keep = ~small
    fragments[small[fragments]] = 0
    if fragments.any():
        fragments = watershed(-distance, markers=fragments, mask=mask, connectivity=3)
        fragments = fragments.astype(np.uint32, copy=False)
    lut = (np.cumsum(keep) - 1).astype(np.uint32)  # keep[0] is True: 0 -> 0, kept ids 1..N
    return lut[fragments]


def snow_partition(
    mask: np.ndarray,
    distance: np.ndarray,
    *,
    sigma: float = 0.4,
    r_max: int = 4,
    min_size: int = 8,
) -> np.ndarray:
    """SNOW partitioning of a binary foreground into particles (step 2 and 3 of the module).

    Args:
        mask: ``(Z, Y, X)`` bool foreground.
        distance: ``(Z, Y, X)`` float Euclidean distance of each voxel of ``mask`` to its
            background (:func:`~particleseg.baselines.threshwater.distance_to_background`).
        sigma: Gaussian smoothing of the distance transform before peak finding (voxels, >= 0).
        r_max: Radius of the ball of the maximum filter that finds the peaks (voxels, >= 1).
        min_size: Fragments smaller than this (voxels) are merged into the particles they
            touch, or dropped when they touch none.

    Returns:
        ``(Z, Y, X)`` uint32 labels restricted to ``mask``, 0 background, ids 1..N consecutive.
    """
    check_snow_params(sigma=sigma, r_max=r_max, min_size=min_size)
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return np.zeros(mask.shape, np.uint32)
    porespy = import_porespy()
    result = porespy.filters.snow_partitioning(
        mask, dt=distance, r_max=int(r_max), sigma=float(sigma)
    )
    regions = np.asarray(result.regions)
    regions = np.where(mask, regions, 0).astype(np.uint32, copy=False)
    return _merge_small_fragments(regions, mask, distance, int(min_size))


def snow_segment(
    image: np.ndarray,
    *,
    threshold: float | None = None,
    threshold_offset: float = 0.0,
    sigma: float = 0.4,
    r_max: int = 4,
    min_size: int = 8,
) -> np.ndarray:
    """Segment particles by thresholding and porespy's SNOW partitioning.

    Args:
        image: Greyscale volume ``(Z, Y, X)``, any real dtype, finite; particles brighter than
            the background.
        threshold: Intensity threshold in image units; None uses Otsu's threshold (computed on a
            strided subsample of big volumes), exactly as ThreshWater does.
        threshold_offset: Added to the threshold as a fraction of the image's robust intensity
            range (1st-99th percentile), as in ThreshWater.
        sigma: Standard deviation (voxels) of the Gaussian smoothing of the distance transform
            before peak finding, >= 0 (porespy's default 0.4); larger merges more.
        r_max: Radius (voxels) of the ball within which a marker must be the distance
            transform's maximum, an integer >= 1 (porespy's default 4); larger merges more.
        min_size: Fragments with fewer voxels are merged into the particles they touch, or
            dropped (noise specks) when they touch none; an integer >= 0.

    Returns:
        ``(Z, Y, X)`` uint32 instance labels, 0 background, ids 1..N consecutive, every particle
        inside the thresholded mask.

    Raises:
        ValueError: If the image is not 3D, is empty, not numeric, not finite, or constant; or a
            parameter is out of range.
        ImportError: If porespy is not installed.
    """
    image = validate_image(image)
    check_snow_params(sigma=sigma, r_max=r_max, min_size=min_size)
    mask, distance = snow_mask(image, intensity_stats(image), threshold, threshold_offset)
    return snow_partition(mask, distance, sigma=sigma, r_max=r_max, min_size=min_size)

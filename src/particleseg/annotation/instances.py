"""Instance labels from a semantic mask: connected components, optionally split by a watershed.

``label_instances`` first takes the connected components of the foreground. With
``split_touching=True`` it then separates touching particles the classic way: seeds are the
regional maxima of the Euclidean distance transform that stand at least ``h`` voxels above their
surroundings (h-maxima), and a watershed of the negated distance grows them back to the mask. A
component that gets no seed stays one particle. This is meant as a first draft to correct with the
split tool (:func:`particleseg.annotation.split_particle`), not as the final segmentation.
"""

from __future__ import annotations

import cc3d
import edt
import numpy as np
from skimage.morphology import h_maxima
from skimage.segmentation import relabel_sequential, watershed

from particleseg.io.validation import check_volume_shape


def foreground_mask(mask_or_semantic: np.ndarray, foreground_class: int = 1) -> np.ndarray:
    """Boolean foreground of a mask or class map.

    Args:
        mask_or_semantic: (Z, Y, X) bool mask, or integer class map.
        foreground_class: Class value of the particles in a class map (ignored for a bool mask).

    Returns:
        (Z, Y, X) bool array.
    """
    arr = np.asarray(mask_or_semantic)
    if arr.dtype == bool:
        return arr
    return arr == foreground_class


def label_instances(
    mask_or_semantic: np.ndarray,
    foreground_class: int = 1,
    *,
    split_touching: bool = False,
    h: float = 2.0,
    min_size: int = 0,
    connectivity: int = 6,
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0),
) -> np.ndarray:
    """Label the particles of a semantic mask.

    Args:
        mask_or_semantic: (Z, Y, X) bool mask or integer class map (e.g. from
            :func:`predict_semantic`).
        foreground_class: Class value of the particles in a class map.
        split_touching: Also split touching particles by a distance-transform watershed.
        h: Minimal height (voxels of distance) of a distance maximum to seed its own particle;
            larger values split less.
        min_size: Components (after splitting) smaller than this many voxels are dropped.
        connectivity: 6, 18 or 26 neighbourhood of the connected components.
        spacing: Voxel spacing for the distance transform (anisotropic scans).

    Returns:
        (Z, Y, X) uint32 instance labels, 0 = background, ids 1..N consecutive.

    Raises:
        ValueError: If the input is not 3D or ``connectivity`` is not 6, 18 or 26.
    """
    check_volume_shape(mask_or_semantic, "mask")
    if connectivity not in (6, 18, 26):
        raise ValueError(f"connectivity must be 6, 18 or 26, got {connectivity!r}")
    fg = foreground_mask(mask_or_semantic, foreground_class)
    labels = cc3d.connected_components(fg, connectivity=connectivity).astype(np.uint32)
    if split_touching and labels.any():
        labels = _split_by_distance(fg, labels, h, spacing)
    if min_size > 0:
        sizes = np.bincount(labels.ravel())
        small = np.flatnonzero(sizes < min_size)
        labels[np.isin(labels, small[small > 0])] = 0
    return relabel_sequential(labels)[0].astype(np.uint32)


def _split_by_distance(
    fg: np.ndarray, components: np.ndarray, h: float, spacing: tuple[float, float, float]
) -> np.ndarray:
    """Watershed of the negated distance transform from its h-maxima, inside ``fg``."""
    dist = edt.edt(fg, anisotropy=tuple(float(s) for s in spacing), black_border=False)
    seeds = cc3d.connected_components(h_maxima(dist, h).astype(bool), connectivity=26)
    seeds = seeds.astype(np.uint32)
    # components without a seed keep themselves as one seed
    seeded = np.zeros(int(components.max()) + 1, dtype=bool)
    seeded[np.unique(components[seeds > 0])] = True
    orphan = ~seeded[components] & fg
    seeds[orphan] = components[orphan] + seeds.max()
    return watershed(-dist, seeds, mask=fg).astype(np.uint32)

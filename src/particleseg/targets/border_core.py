"""Instance labels <-> border-core maps (0 background, 1 core, 2 border).

Whole-volume operations only (fastremap and compiled numba passes): no Python
loop over particles or components, so the cost is linear in the number of voxels.
"""

from __future__ import annotations

import fastremap
import numpy as np

from particleseg.spacing import VOXELS, check_spacing
from particleseg.targets._components import label_components
from particleseg.targets._distance import (
    depth_squared,
    relabel_inplace,
    thin_labels,
)
from particleseg.targets._feature_transform import (
    nearest_seed_label,
    nearest_seed_label_in_component,
)

BACKGROUND, CORE, BORDER = 0, 1, 2

# The border-core rule's built-in thresholds, set here once: validation, predict, tuning and the
# chunked post-processing start from them; a model's tuned values, then the user's, replace them.
SMALL_CORE_DISTANCE = 1.0
SMALL_CORE_FRACTION = 0.95
SMALL_CORE_MAX_DISTANCE = 3.0
MIN_RELATIVE_SIZE = 0.005


def _check_3d_integer(array: np.ndarray, what: str) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim != 3:
        raise ValueError(f"{what} must be a 3D array (Z, Y, X), got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.integer) and array.dtype != bool:
        raise ValueError(f"{what} must have an integer dtype, got {array.dtype}")
    return array


def instance_to_border_core(
    labels: np.ndarray, border_thickness: float = 3.0, spacing=None
) -> np.ndarray:
    """Convert instance labels to a border-core map.

    A particle voxel is core when it lies farther than ``border_thickness`` (Euclidean, in the
    units of ``spacing``) from every voxel that is background or another particle; the other
    particle voxels are border. The array edge is not a particle edge: a particle cut by it gets
    no border on the cut face (right for training crops).

    Args:
        labels: (Z, Y, X) non-negative integer instance labels, 0 = background.
        border_thickness: border width, in voxels when ``spacing`` is None.
        spacing: optional voxel size per axis (Z, Y, X) for anisotropic volumes.

    Returns:
        (Z, Y, X) uint8: 0 background, 1 core, 2 border.
    """
    labels = _check_3d_integer(labels, "labels")
    if labels.dtype.kind == "i" and labels.size and labels.min() < 0:
        raise ValueError("labels must be non-negative")
    if border_thickness < 0:
        raise ValueError(f"border_thickness must be >= 0, got {border_thickness}")
    sz, sy, sx = check_spacing(spacing, default=VOXELS)
    if labels.dtype == bool or labels.dtype.itemsize > 4:
        labels = labels.astype(np.uint32)
    # Squared distance to the nearest voxel of another value (background or another particle),
    # exact up to just past the border thickness.
    cap = float(border_thickness) ** 2 + 1.0
    depth2 = depth_squared(labels, cap, (sz, sy, sx))
    out = np.zeros(labels.shape, np.uint8)
    out[labels != 0] = BORDER
    out[depth2 > float(border_thickness) ** 2] = CORE  # depth is 0 on background
    return out


def demote_small_cores(
    cores: np.ndarray,
    small_core_distance: float = SMALL_CORE_DISTANCE,
    small_core_fraction: float = SMALL_CORE_FRACTION,
    small_core_max_distance: float = SMALL_CORE_MAX_DISTANCE,
    spacing=None,
) -> np.ndarray:
    """Drop cores that are thin shells rather than a particle's middle.

    A core is dropped when at least ``small_core_fraction`` of its voxels lie within
    ``small_core_distance`` of its surface and none lies at ``small_core_max_distance`` or
    deeper (the reference's rule). Such cores are noise or slivers of a border; their voxels
    should be grown over by a real core.

    Args:
        cores: (Z, Y, X) uint32 core labels 1..N (0 elsewhere).
        small_core_distance: depth counted as "at the surface".
        small_core_fraction: share of surface voxels from which a core may be thin.
        small_core_max_distance: a core with any voxel this deep is kept.
        spacing: optional voxel size per axis.

    Returns:
        (Z, Y, X) uint32 core labels, consecutive 1..M (M <= N).
    """
    cores = np.array(cores, dtype=np.uint32, order="C", copy=True)
    _demote_small_cores_inplace(
        cores,
        small_core_distance,
        small_core_fraction,
        small_core_max_distance,
        check_spacing(spacing, default=VOXELS),
    )
    return cores


def _demote_small_cores_inplace(
    cores, small_core_distance, small_core_fraction, small_core_max_distance, spacing, n=None
) -> int:
    """:func:`demote_small_cores` in place on uint32 ``cores``; returns the number kept.

    ``n`` is the largest label when the caller knows it (the labelling returns it),
    saving a pass.
    """
    n = int(cores.max(initial=0)) if n is None else int(n)
    if n == 0:
        return 0
    thin, size = thin_labels(
        cores, small_core_distance, small_core_fraction, small_core_max_distance, spacing, n
    )
    keep = (size > 0) & ~thin
    keep[0] = False
    if keep.sum() == n:
        return n
    lut = np.zeros(n + 1, np.uint32)
    lut[keep] = np.arange(1, int(keep.sum()) + 1, dtype=np.uint32)
    relabel_inplace(cores, lut)
    return int(keep.sum())


def border_core_to_instance(
    border_core: np.ndarray,
    small_core_distance: float = SMALL_CORE_DISTANCE,
    small_core_fraction: float = SMALL_CORE_FRACTION,
    small_core_max_distance: float = SMALL_CORE_MAX_DISTANCE,
    connectivity: int = 6,
    spacing=None,
) -> np.ndarray:
    """Convert a border-core map to instance labels.

    1. Foreground (core or border) is split into connected components.
    2. Cores are labelled (``connectivity``) and thin cores are demoted to border
       (:func:`demote_small_cores`).
    3. Every border voxel goes to the Euclidean-nearest core of its own foreground component
       (ties broken deterministically); a component without a core becomes one particle.

    Args:
        border_core: (Z, Y, X) integer map with values in {0, 1, 2}.
        small_core_distance: small-core rule, see :func:`demote_small_cores`.
        small_core_fraction: small-core rule.
        small_core_max_distance: small-core rule.
        connectivity: 6, 18 or 26, for both the cores and the foreground components.
        spacing: optional voxel size per axis (Z, Y, X).

    Returns:
        (Z, Y, X) uint32 instance labels, ids 1..N consecutive (no 65,535 limit).
    """
    border_core = _check_3d_integer(border_core, "border_core")
    if border_core.size and int(border_core.max()) > BORDER:
        raise ValueError(
            f"border_core values must be 0 (background), 1 (core) or 2 (border); "
            f"found {int(border_core.max())}"
        )
    spacing = check_spacing(spacing, default=VOXELS)
    # One C-ordered copy for both labellings (each would otherwise copy a map in another order);
    # their labels are C-ordered, as the in-place passes below need.
    border_core = np.ascontiguousarray(border_core)
    components, _ = label_components(border_core, None, connectivity)
    cores, n_found = label_components(border_core, CORE, connectivity)
    n_cores = _demote_small_cores_inplace(
        cores, small_core_distance, small_core_fraction, small_core_max_distance, spacing, n_found
    )
    # The transform writes the labels over the cores (each seed keeps its own label).
    labels, points, core_component, seed_d2 = nearest_seed_label(
        cores, components, spacing, overwrite_seeds=True, n_seeds=n_cores
    )
    del cores

    # Voxels whose globally nearest core sits in another component (across a thin gap), and
    # those of components without a core: they are resolved point by point.
    if len(points):
        where = tuple(points.T)
        point_comp = components[where]
        found = nearest_seed_label_in_component(
            points, point_comp, labels, seed_d2, components, core_component, spacing
        )
        # Components without any core become one particle each, numbered after the cores in
        # the raster order of their first voxel.
        coreless = found == 0
        if coreless.any():
            ids, _ = fastremap.renumber(point_comp[coreless], preserve_zero=False)
            found[coreless] = ids.astype(np.uint32) + np.uint32(n_cores)
        labels[where] = found
    # Already 1..N: kept cores are 1..n_cores (the labelling numbers 1..n, the small-core rule
    # renumbers the kept ones in order), every core keeps its own label, and coreless
    # components follow.
    return labels


def filter_small_particles(
    labels: np.ndarray, min_relative_size: float = MIN_RELATIVE_SIZE
) -> np.ndarray:
    """Remove particles smaller than a fraction of the mean particle size.

    The mean is over the particles that exist (ids with no voxels are not counted as size 0).
    Removed voxels become background; the remaining ids are renumbered 1..M keeping their
    order.

    Args:
        labels: (Z, Y, X) non-negative integer instance labels.
        min_relative_size: keep particles with at least this fraction of the mean voxel count.

    Returns:
        (Z, Y, X) uint32 labels, ids consecutive.
    """
    labels = _check_3d_integer(labels, "labels")
    if labels.dtype.kind == "i" and labels.size and labels.min() < 0:
        raise ValueError("labels must be non-negative")
    labels = labels.astype(np.uint32, copy=True)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    present = sizes > 0
    if not present.any():
        return labels
    threshold = min_relative_size * sizes[present].mean()
    small = np.flatnonzero(present & (sizes < threshold))
    if len(small):
        labels = fastremap.mask(labels, small.tolist(), in_place=True)
    # Keep the original order of ids: map each kept id to its rank among kept ids.
    keep = present.copy()
    keep[small] = False
    remap = np.zeros(len(sizes), np.uint32)
    remap[keep] = np.arange(1, int(keep.sum()) + 1, dtype=np.uint32)
    return remap[labels]

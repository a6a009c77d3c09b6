"""Per-particle size, shape and appearance of a labelled volume, as a column table.

:func:`particle_properties` takes a 3D label volume (0 = background, particles ``1..N``, ids not
necessarily consecutive), optionally the image, and the voxel size, and returns a dict of equal-
length 1D numpy arrays, one row per particle id present, sorted by id. Lengths are in the units
of ``spacing`` (e.g. mm), areas in units^2, volumes in units^3. The chunked variant for volumes
larger than memory, :func:`particleseg.analysis.chunked.particle_properties_chunked`, gives the
same table.

**Coordinates.** Voxel ``(k, j, i)`` has its centre at ``(k sz, j sy, i sx)`` and is the box of
side ``spacing`` around it; a particle is the union of its voxels' boxes (the *voxel solid*).

**Columns.**

* ``id`` (int64); ``volume`` = voxel count x voxel volume; ``equivalent_diameter`` =
  ``(6 volume / pi)^(1/3)``, the diameter of the ball of that volume.
* ``surface_area``: area of the marching-cubes mesh (level 0.5, spacing-aware) of the particle's
  binary mask padded by one background voxel (neighbouring particles count as background).
  ``sphericity`` = ``pi^(1/3) (6 volume)^(2/3) / surface_area``: about 0.91-0.92 for a
  digitised ball of radius 10-15 voxels, since marching cubes on a binary mask overestimates
  the area of a digitised surface by 8.7% on average over orientations (0-13% depending on
  orientation), and above 1 for particles of a few voxels (the mesh of one voxel is an
  octahedron enclosing 1/6 of its volume).
* ``feret_max``, ``feret_min``: largest and smallest caliper diameter of the voxel solid, i.e.
  of the convex hull of the voxel *corners*; ``feret_ratio`` = min / max. Both exact (Feret min
  by the facet-vertex / edge-edge antipodal pairs; see :mod:`particleseg.analysis._feret`).
  A box of ``a x b x c`` voxels gives exactly ``min(a, b, c)`` and ``sqrt(a^2 + b^2 + c^2)``;
  a digitised ball of radius r gives values in ``[2r - d, 2r + d]``, d the voxel diagonal
  (Feret min typically within a voxel of 2r, Feret max up to about 1.5 voxels above it).
* ``axis_major >= axis_intermediate >= axis_minor``: full axis lengths ``2 sqrt(5 lambda)`` of
  the ellipsoid with the same second moments as the voxel solid, lambda the eigenvalues of its
  covariance (of the voxel centres, plus ``s_k^2 / 12`` on the diagonal for the spread within a
  voxel, so a box of side L has variance exactly ``L^2 / 12`` and axis ``L sqrt(5/3)``; for a
  solid ellipsoid ``lambda = a^2 / 5`` gives back its full axis 2a).
  ``elongation`` = intermediate / major, ``flatness`` = minor / intermediate.
* ``convex_volume``: volume of the *digital* convex hull: voxel volume x the number of voxels
  whose centres lie in the convex hull of the particle's voxel centres. ``solidity`` = volume /
  convex_volume is at most 1, and exactly 1 for the digitisation of any convex body (ball,
  ellipsoid, box), unlike the volume of the continuous hull of the voxel solid, which would
  give a ball of radius 10 voxels a solidity of 0.85. Particles one voxel thick (coplanar
  centres) are counted in their plane, collinear ones on their line.
* ``centroid_z, centroid_y, centroid_x``: mean voxel centre, physical units.
* ``bbox_z0, bbox_y0, bbox_x0, bbox_z1, bbox_y1, bbox_x1``: bounding box in voxel indices,
  half-open (int64).
* ``touches_edge``: the particle has a voxel on a face of the array (bool).
* With an image: ``intensity_min``, ``intensity_mean``, ``intensity_max``, ``intensity_std``
  (population, ddof=0), float64, and ``hist_0 .. hist_{B-1}``: fraction of the particle's
  voxels in each of B equal bins over ``hist_range``, by default ``(image.min(), image.max())``
  over the whole image (background included), so histograms of all particles share one range.
  Bins are those of ``np.histogram(values, B, range=hist_range)``: the last bin includes its
  upper edge; values outside ``hist_range`` fall in no bin (the fractions then sum to less than
  1); a constant image uses the range ``(v, v + 1)``.

**Exactness.** Counts, coordinate sums and second moments are accumulated as int64 (exact), so
any split of the volume into blocks gives bit-identical sizes, moments and boxes; the
per-particle geometry is computed on the particle's bounding-box crop, identical whatever the
blocks. Intensity sums are float64 (exact for integer images while below 2^53). Particles of
one voxel, one voxel thick, or a line of voxels are handled (see
:mod:`particleseg.analysis._geometry`, "Flat particles").

Whole-volume work (counts, moments, boxes, intensities) is done with ``np.bincount``,
``scipy.ndimage.find_objects`` and ``ufunc.at`` over slabs of the volume; only the geometry
(surface, hull, Feret) loops over particles, each on its own small crop.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from particleseg.analysis._geometry import particle_geometry
from particleseg.analysis.block_stats import (
    PAIRS,
    HistSpec,
    block_stats,
    hist_spec,
    merge_stats,
)
from particleseg.spacing import check_spacing

__all__ = ["COLUMNS", "HistSpec", "particle_properties"]

#: Columns of every table, in order (intensity and histogram columns follow with an image).
COLUMNS = (
    "id",
    "volume",
    "equivalent_diameter",
    "surface_area",
    "sphericity",
    "feret_max",
    "feret_min",
    "feret_ratio",
    "axis_major",
    "axis_intermediate",
    "axis_minor",
    "elongation",
    "flatness",
    "convex_volume",
    "solidity",
    "centroid_z",
    "centroid_y",
    "centroid_x",
    "bbox_z0",
    "bbox_y0",
    "bbox_x0",
    "bbox_z1",
    "bbox_y1",
    "bbox_x1",
    "touches_edge",
)
#: Columns computed per particle on its crop (:func:`crop_geometry`), in its output order.
GEOMETRY_COLUMNS = ("surface_area", "feret_max", "feret_min", "convex_volume")
INTENSITY_COLUMNS = ("intensity_min", "intensity_mean", "intensity_max", "intensity_std")
#: Largest number of voxels of one slab of the in-memory pass (bounds its temporary arrays).
SLAB_VOXELS = 1 << 24


# ----------------------------------------------------------------------------- validation


def check_inputs(labels: Any, image: Any | None) -> None:
    """Check shapes and dtypes of a label volume and its optional image (array-likes).

    Args:
        labels: Array-like with ``shape`` and ``dtype`` (numpy, zarr or dask).
        image: Array-like of the same shape, or None.

    Raises:
        ValueError: If labels are not 3D, not integer, or the image shape or dtype does not fit.
    """
    shape = tuple(labels.shape)
    if len(shape) != 3:
        raise ValueError(f"labels must be a 3D (Z, Y, X) array, got shape {shape}")
    dtype = np.dtype(labels.dtype)
    if not np.issubdtype(dtype, np.integer):
        raise ValueError(f"labels must have an integer dtype, got {dtype} (shape {shape})")
    if image is None:
        return
    if tuple(image.shape) != shape:
        raise ValueError(f"image shape {tuple(image.shape)} does not match labels shape {shape}")
    idtype = np.dtype(image.dtype)
    if not (np.issubdtype(idtype, np.integer) or np.issubdtype(idtype, np.floating)):
        if idtype != np.bool_:
            raise ValueError(f"image must be numeric (integer or float), got dtype {idtype}")


# ----------------------------------------------------------------------------- columns


def _moment_columns(
    stats: dict[str, np.ndarray], spacing: tuple[float, float, float]
) -> dict[str, np.ndarray]:
    """Volume, equivalent diameter, centroid and equivalent-ellipsoid axes from moment sums."""
    s = np.asarray(spacing, np.float64)
    n = stats["n"].astype(np.float64)
    volume = n * float(np.prod(s))
    mean = np.stack([stats[a] / n for a in ("z", "y", "x")], axis=1)  # voxel indices
    cov = np.empty((len(n), 3, 3), np.float64)
    for name, (a, b) in PAIRS.items():
        c = (stats[name] / n - mean[:, a] * mean[:, b]) * (s[a] * s[b])
        cov[:, a, b] = c
        cov[:, b, a] = c
    cov[:, [0, 1, 2], [0, 1, 2]] += s**2 / 12.0  # spread within a voxel
    lam = np.linalg.eigvalsh(cov) if len(n) else np.zeros((0, 3))
    axes = 2.0 * np.sqrt(5.0 * np.clip(lam, 0.0, None))  # ascending
    out = {
        "volume": volume,
        "equivalent_diameter": np.cbrt(6.0 * volume / np.pi),
        "axis_major": axes[:, 2],
        "axis_intermediate": axes[:, 1],
        "axis_minor": axes[:, 0],
    }
    out["elongation"] = _ratio(axes[:, 1], axes[:, 2])
    out["flatness"] = _ratio(axes[:, 0], axes[:, 1])
    for axis, name in enumerate(("centroid_z", "centroid_y", "centroid_x")):
        out[name] = mean[:, axis] * s[axis]
    return out


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """Num / den, 0 where den is 0."""
    out = np.zeros(len(num), np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def geometry_arrays(k: int) -> dict[str, np.ndarray]:
    """Zero (k,) float64 arrays for the per-particle geometry, by name."""
    return {name: np.zeros(k, np.float64) for name in GEOMETRY_COLUMNS}


def assemble(
    stats: dict[str, np.ndarray],
    geometry: dict[str, np.ndarray],
    spacing: tuple[float, float, float],
    shape: Sequence[int],
    hist: HistSpec | None,
) -> dict[str, np.ndarray]:
    """Build the column table from merged statistics and per-particle geometry.

    Args:
        stats: Merged statistics (:func:`merge_stats`).
        geometry: ``surface_area``, ``feret_max``, ``feret_min``, ``convex_volume``: (K,)
            float64 in the order of ``stats["id"]``.
        spacing: (sz, sy, sx).
        shape: Shape of the whole volume (for ``touches_edge``).
        hist: Histogram bins if there is an image, else None.

    Returns:
        The column table (see the module docstring).
    """
    moments = _moment_columns(stats, spacing)
    volume = moments["volume"]
    area = geometry["surface_area"]
    sphericity = _ratio(np.cbrt(np.pi) * np.cbrt(6.0 * volume) ** 2, area)
    table: dict[str, np.ndarray] = {
        "id": stats["id"].astype(np.int64),
        "volume": volume,
        "equivalent_diameter": moments["equivalent_diameter"],
        "surface_area": area,
        "sphericity": sphericity,
        "feret_max": geometry["feret_max"],
        "feret_min": geometry["feret_min"],
        "feret_ratio": _ratio(geometry["feret_min"], geometry["feret_max"]),
    }
    for name in ("axis_major", "axis_intermediate", "axis_minor", "elongation", "flatness"):
        table[name] = moments[name]
    table["convex_volume"] = geometry["convex_volume"]
    table["solidity"] = _ratio(volume, geometry["convex_volume"])
    for name in ("centroid_z", "centroid_y", "centroid_x"):
        table[name] = moments[name]
    lo, hi = stats["lo"], stats["hi"]
    for axis, a in enumerate("zyx"):
        table[f"bbox_{a}0"] = lo[:, axis].copy()
    for axis, a in enumerate("zyx"):
        table[f"bbox_{a}1"] = hi[:, axis].copy()
    table["touches_edge"] = (lo == 0).any(axis=1) | (hi == np.asarray(shape, np.int64)).any(axis=1)
    if hist is not None:
        n = stats["n"].astype(np.float64)
        mean = stats["isum"] / n
        table["intensity_min"] = stats["imin"]
        table["intensity_mean"] = mean
        table["intensity_max"] = stats["imax"]
        table["intensity_std"] = np.sqrt(np.clip(stats["isq"] / n - mean**2, 0.0, None))
        for b in range(hist.bins):
            table[f"hist_{b}"] = stats["hist"][:, b] / n
    return table


def crop_geometry(
    crop: np.ndarray, pid: int, spacing: tuple[float, float, float]
) -> tuple[float, float, float, float]:
    """Geometry of particle ``pid`` from its exact bounding-box crop of the labels.

    Returns:
        (surface_area, feret_max, feret_min, convex_volume).
    """
    return tuple(particle_geometry(crop == pid, spacing))  # type: ignore[return-value]


# ----------------------------------------------------------------------------- in memory


def particle_properties(
    labels: np.ndarray,
    image: np.ndarray | None = None,
    spacing: Sequence[float] = (1.0, 1.0, 1.0),
    *,
    hist_bins: int = 8,
    hist_range: Sequence[float] | None = None,
) -> dict[str, np.ndarray]:
    """Size, shape and intensity properties of every particle of an in-memory label volume.

    Args:
        labels: (Z, Y, X) integer array, 0 = background, particle ids > 0 (any ids).
        image: (Z, Y, X) numeric array of the same shape, or None (no intensity columns).
        spacing: (sz, sy, sx) voxel size in physical units.
        hist_bins: Number of histogram bins (with an image).
        hist_range: (lo, hi) of the histogram; default the image's (min, max).

    Returns:
        Column table: dict of equal-length 1D arrays, one row per particle id present, sorted by
        id; columns and units as in the module docstring.

    Raises:
        ValueError: For non-3D or non-integer labels, negative labels, an image whose shape does
            not match, a bad spacing or bad histogram settings.
    """
    labels = np.asarray(labels)
    check_inputs(labels, image)
    spacing = check_spacing(spacing)
    hist = None
    if image is not None:
        image = np.asarray(image)
        lo, hi = (float(image.min()), float(image.max())) if image.size else (0.0, 1.0)
        hist = hist_spec(hist_bins, hist_range, lo, hi)
    bins = hist.bins if hist is not None else None

    plane = max(1, labels.shape[1] * labels.shape[2])
    step = max(1, SLAB_VOXELS // plane)
    parts = []
    for z0 in range(0, labels.shape[0], step):
        sl = slice(z0, z0 + step)
        img = image[sl] if image is not None else None
        parts.append(block_stats(labels[sl], img, (z0, 0, 0), hist))
    stats = merge_stats(parts, bins)

    geometry = geometry_arrays(len(stats["id"]))
    for row, pid in enumerate(stats["id"]):
        box = tuple(slice(a, b) for a, b in zip(stats["lo"][row], stats["hi"][row], strict=True))
        values = crop_geometry(labels[box], int(pid), spacing)
        for name, value in zip(GEOMETRY_COLUMNS, values, strict=True):
            geometry[name][row] = value
    return assemble(stats, geometry, spacing, labels.shape, hist)

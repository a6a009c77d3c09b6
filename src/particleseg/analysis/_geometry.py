"""Per-particle geometry on a binary crop: marching-cubes surface, convex hulls, Feret diameters.

Conventions (see :mod:`particleseg.analysis.properties` for the column definitions). Voxel
``(k, j, i)`` has its centre at ``(k, j, i) * spacing`` and is the box of side ``spacing``
around it; a particle is the union of its voxels' boxes (the *voxel solid*).

* **Feret diameters** are those of the convex hull of the voxel solid, i.e. of the voxels'
  *corner points*. A box of ``a x b x c`` voxels thus has Feret min ``min(a, b, c)`` and Feret
  max ``sqrt(a^2 + b^2 + c^2)`` exactly. That hull is the Minkowski sum ``P + B`` of the hull
  ``P`` of the voxel *centres* and one voxel box ``B``, so its width along a unit direction
  ``u`` is ``w_P(u) + sum_k |u_k| s_k`` (``s`` the spacing). For a digitised ball of radius
  ``r`` every width, hence both Feret diameters, lies in ``[2r - |s|, 2r + |s|]`` (``|s|`` the
  voxel diagonal): Feret min is typically within a voxel of ``2r``, Feret max up to about
  1.5 voxels above it. Both are computed exactly on ``P + B`` by
  :mod:`particleseg.analysis._feret` (see its docstring for how).
* **Convex volume** is the *digital* convex hull: the voxels whose centres lie in ``P``, times
  the voxel volume. It is at least the particle's volume (solidity <= 1) and equal to it for the
  digitisation of any convex body (``P`` then lies inside the body, so every voxel centre in
  ``P`` belongs to the particle): a digitised ball, ellipsoid or box has solidity exactly 1,
  whereas the volume of the continuous corner hull would give a ball of radius 10 voxels a
  solidity of about 0.85. (scikit-image's ``area_convex`` counts the centres inside the hull of
  the corners instead.)
* **Flat particles.** When the voxel centres are coplanar (one voxel thick), collinear or a
  single voxel, ``P`` is not three-dimensional and qhull cannot build it. The Feret diameters
  then come from qhull on the corner points (always three-dimensional: a voxel is a box) with
  the same exact minimum-width search, and the digital hull counts the lattice points in the
  plane of the centres inside their planar hull (``gcd(|q - p|) + 1`` on a segment ``pq``, 1 for
  a single voxel).
* **Hull input.** Only the first and last voxel of each column along Z can be vertices of ``P``
  (the others lie between them); likewise for corner points, where each corner column takes the
  lowest and highest end of the up to four voxel columns sharing it. ``P`` is built by qhull
  without facet pre-merging (:func:`centre_hull`), checked, and rebuilt with the defaults if
  that fails.
* **Surface area** is the area of the marching-cubes mesh (level 0.5) of the particle's binary
  mask padded by one voxel of background, with the spacing. It is computed as a sum over the
  2x2x2 cells of a table of per-configuration areas built with ``skimage.measure.marching_cubes``
  + ``mesh_surface_area`` on each of the 256 binary cells (the Lewiner algorithm triangulates
  each cell from its own 8 values), which equals the mesh area of the whole crop to float32
  rounding and is about ten times faster.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np
from scipy.spatial import ConvexHull, QhullError

from particleseg.analysis._feret import _BLAS_SINGLE_THREAD, _feret_max, _min_width, _polytope

__all__ = [
    "Geometry",
    "centre_hull",
    "centre_points",
    "convex_voxel_count",
    "corner_points",
    "feret_diameters",
    "particle_geometry",
    "surface_area",
]

#: Slack (voxels) for lattice points on a facet of a hull of lattice points. A lattice point
#: off a facet plane is at least 1 / |integer normal| away, far more for crops below ~10^3.
_LATTICE_EPS = 1e-7


class Geometry(NamedTuple):
    """Geometric properties of one particle, in physical units.

    Attributes:
        surface_area: Marching-cubes surface area.
        feret_max: Largest caliper diameter of the voxel solid (hull of the voxel corners).
        feret_min: Smallest caliper diameter (minimum width) of that hull.
        convex_volume: Voxel volume times the number of voxels whose centres lie in the convex
            hull of the particle's voxel centres.
    """

    surface_area: float
    feret_max: float
    feret_min: float
    convex_volume: float


@functools.lru_cache(maxsize=16)
def _area_table(spacing: tuple[float, float, float]) -> np.ndarray:
    """Marching-cubes surface area of each binary 2x2x2 cell, indexed by its 8-bit code.

    Args:
        spacing: (sz, sy, sx) voxel size.

    Returns:
        (256,) float64 area per cell configuration; bit ``4 dz + 2 dy + dx`` is corner
        ``(dz, dy, dx)``.
    """
    from skimage.measure import marching_cubes, mesh_surface_area

    table = np.zeros(256, np.float64)
    for code in range(1, 255):
        bits = [(code >> k) & 1 for k in range(8)]
        cell = np.asarray(bits, np.float64).reshape(2, 2, 2)
        verts, faces, _, _ = marching_cubes(cell, 0.5, spacing=spacing)
        table[code] = mesh_surface_area(verts, faces)
    return table


def surface_area(mask: np.ndarray, spacing: tuple[float, float, float]) -> float:
    """Marching-cubes (level 0.5) surface area of a binary mask padded by one voxel of background.

    Args:
        mask: (Z, Y, X) bool array, the particle.
        spacing: (sz, sy, sx) voxel size.

    Returns:
        The area of the closed mesh, equal to ``mesh_surface_area(*marching_cubes(padded, 0.5,
        spacing=spacing)[:2])`` up to float32 rounding.
    """
    m = np.pad(mask, 1).view(np.uint8)
    code = m[:-1, :-1, :-1].copy()
    code |= m[:-1, :-1, 1:] << 1
    code |= m[:-1, 1:, :-1] << 2
    code |= m[:-1, 1:, 1:] << 3
    code |= m[1:, :-1, :-1] << 4
    code |= m[1:, :-1, 1:] << 5
    code |= m[1:, 1:, :-1] << 6
    code |= m[1:, 1:, 1:] << 7
    counts = np.bincount(code.ravel(), minlength=256)
    return float(counts @ _area_table(tuple(float(s) for s in spacing)))


def corner_points(mask: np.ndarray) -> np.ndarray:
    """Voxel corners that can be vertices of the convex hull of the mask's voxel solid.

    Args:
        mask: (Z, Y, X) bool array with at least one True voxel.

    Returns:
        (P, 3) float64 corner coordinates in voxel units (voxel centres at integer indices).
    """
    nz = mask.shape[0]
    filled = mask.any(axis=0)
    first = np.where(filled, mask.argmax(axis=0), nz)
    last = np.where(filled, nz - 1 - mask[::-1].argmax(axis=0), -1)
    first = np.pad(first, 1, constant_values=nz)
    last = np.pad(last, 1, constant_values=-1)
    # corner column (j, i) sits at (y, x) = (j - 1/2, i - 1/2) between voxel columns j-1, j, i-1, i
    low = np.minimum(
        np.minimum(first[:-1, :-1], first[:-1, 1:]), np.minimum(first[1:, :-1], first[1:, 1:])
    )
    high = np.maximum(
        np.maximum(last[:-1, :-1], last[:-1, 1:]), np.maximum(last[1:, :-1], last[1:, 1:])
    )
    jj, ii = np.nonzero(high >= 0)
    y = jj - 0.5
    x = ii - 0.5
    bottom = np.stack([low[jj, ii] - 0.5, y, x], axis=1)
    top = np.stack([high[jj, ii] + 0.5, y, x], axis=1)
    return np.concatenate([bottom, top])


def centre_points(mask: np.ndarray) -> np.ndarray:
    """Voxel centres that can be vertices of the convex hull of the mask's voxel centres.

    Args:
        mask: (Z, Y, X) bool array with at least one True voxel.

    Returns:
        (P, 3) int64 voxel indices: the first and last voxel of each occupied column along Z.
    """
    nz = mask.shape[0]
    filled = mask.any(axis=0)
    yy, xx = np.nonzero(filled)
    first = mask.argmax(axis=0)[yy, xx]
    last = nz - 1 - mask[::-1].argmax(axis=0)[yy, xx]
    bottom = np.stack([first, yy, xx], axis=1)
    top = np.stack([last, yy, xx], axis=1)
    return np.concatenate([bottom, top]).astype(np.int64)


def centre_hull(centres: np.ndarray) -> ConvexHull:
    """Convex hull of (P, 3) integer voxel centres.

    Qhull is first run without pre-merging of coplanar facets (``Q0``), about twice as fast on
    lattice points, whose many coplanar points make merging the costly part; facets of one
    plane then come as several triangles with the same plane, which changes none of the
    results (the same planes, widths and lattice counts). Should that hull have a facet not
    facing away from the points' centroid (a precision failure), or qhull fail, it is rebuilt
    with the default options.

    Raises:
        QhullError: If the points are coplanar, collinear or fewer than four.
    """
    points = centres.astype(np.float64)
    try:
        hull = ConvexHull(points, qhull_options="Qt Q0")
    except (QhullError, ValueError):
        pass
    else:
        inner = points.mean(axis=0)
        if np.all(hull.equations[:, :3] @ inner + hull.equations[:, 3] < -1e-9):
            return hull
    return ConvexHull(points)


def feret_diameters(mask: np.ndarray, spacing: tuple[float, float, float]) -> tuple[float, float]:
    """Feret max and min of the voxel solid of a mask (exact; see the module docstring).

    Args:
        mask: (Z, Y, X) bool array with at least one True voxel.
        spacing: (sz, sy, sx) voxel size.

    Returns:
        (feret_max, feret_min) in physical units.
    """
    scale = np.asarray(spacing, np.float64)
    try:
        hull = centre_hull(centre_points(mask))
    except (QhullError, ValueError):
        return _corner_feret(mask, scale)
    poly = _polytope(hull, scale)
    return _feret_max(poly.vertices, scale), _min_width(poly, scale)


def _corner_feret(mask: np.ndarray, scale: np.ndarray) -> tuple[float, float]:
    """Feret max and min from the hull of the corner points (for flat particles)."""
    hull = ConvexHull(corner_points(mask))  # a voxel's corners span a box: never flat
    poly = _polytope(hull, scale)
    zero = np.zeros(3)
    return _feret_max(poly.vertices, zero), _min_width(poly, zero)


def _column_count(equations: np.ndarray, shape: tuple[int, int, int]) -> int:
    """Number of lattice points of the box ``[0, shape)`` inside a 3D polytope.

    For each (y, x) column the polytope is a z-interval: below every facet facing up, above
    every facet facing down, and empty unless the column is inside every vertical facet.

    Args:
        equations: (F, 4) facet equations ``n . x + d <= 0`` inside (unit outward normals), in
            voxel-index coordinates.
        shape: (Z, Y, X) extent of the lattice box searched (the polytope lies inside it).

    Returns:
        The count, points on the boundary included (within ``_LATTICE_EPS``).
    """
    nz, ny, nx = shape
    yy, xx = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
    columns = np.stack([yy.ravel(), xx.ravel(), np.ones(ny * nx)]).astype(np.float64)  # (3, C)
    a = equations[:, 0]
    up, down = a > 1e-9, a < -1e-9
    vertical = ~(up | down)
    top = np.full(ny * nx, nz - 1.0)
    bottom = np.zeros(ny * nx)
    ok = np.ones(ny * nx, bool)
    step = max(1, _BLAS_SINGLE_THREAD // (ny * nx))
    # z <= -(n_y y + n_x x + d) / n_z where n_z > 0, and >= where n_z < 0.
    rows = equations[up, 1:] / a[up, None]
    for start in range(0, len(rows), step):
        np.minimum(top, (-(rows[start : start + step] @ columns)).min(axis=0), out=top)
    rows = equations[down, 1:] / a[down, None]
    for start in range(0, len(rows), step):
        np.maximum(bottom, (-(rows[start : start + step] @ columns)).max(axis=0), out=bottom)
    rows = equations[vertical, 1:]
    for start in range(0, len(rows), step):
        ok &= (rows[start : start + step] @ columns <= _LATTICE_EPS).all(axis=0)
    count = np.floor(top + _LATTICE_EPS) - np.ceil(bottom - _LATTICE_EPS) + 1
    return int(np.clip(count, 0, None)[ok].sum())


def _flat_count(centres: np.ndarray, shape: tuple[int, int, int]) -> int:
    """Lattice points in the convex hull of lattice points that span less than three dimensions.

    Args:
        centres: (P, 3) int64 voxel indices inside the box ``[0, shape)``.
        shape: (Z, Y, X) extent of that box.

    Returns:
        1 for one point; ``gcd(|q - p|) + 1`` for points on a segment ``p q``; for coplanar
        points, the lattice points of the box within ``_LATTICE_EPS`` of their plane and inside
        their planar hull.
    """
    points = np.unique(centres, axis=0)
    if len(points) == 1:
        return 1
    centred = points - points.mean(axis=0)
    _, sv, vt = np.linalg.svd(centred.astype(np.float64), full_matrices=True)
    rank = int((sv > 1e-9 * max(sv[0], 1.0)).sum())
    if rank == 1:
        proj = centred @ vt[0]
        delta = np.abs(points[proj.argmax()] - points[proj.argmin()])
        return int(np.gcd.reduce(delta)) + 1
    origin = points.mean(axis=0)
    grid = np.indices(shape, dtype=np.float64).reshape(3, -1).T - origin
    near = grid[np.abs(grid @ vt[2]) <= _LATTICE_EPS]
    hull2 = ConvexHull(centred @ vt[:2].T)
    inside = (near @ vt[:2].T) @ hull2.equations[:, :2].T + hull2.equations[:, 2] <= _LATTICE_EPS
    return int(inside.all(axis=1).sum())


def convex_voxel_count(mask: np.ndarray) -> int:
    """Number of voxels whose centres lie in the convex hull of the mask's voxel centres.

    At least the mask's voxel count, and equal to it for the digitisation of any convex body.
    Coplanar or collinear centres are counted in their plane or on their line
    (:func:`_flat_count`).

    Args:
        mask: (Z, Y, X) bool array with at least one True voxel.

    Returns:
        The count (>= ``mask.sum()``).
    """
    centres = centre_points(mask)
    try:
        hull = centre_hull(centres)
    except (QhullError, ValueError):
        return _flat_count(centres, mask.shape)
    return _column_count(hull.equations, mask.shape)


def particle_geometry(mask: np.ndarray, spacing: tuple[float, float, float]) -> Geometry:
    """Surface area, Feret diameters and convex volume of one particle.

    Args:
        mask: (Z, Y, X) bool array (typically the particle's bounding-box crop) with at least one
            True voxel.
        spacing: (sz, sy, sx) voxel size in physical units.

    Returns:
        The particle's :class:`Geometry` in physical units.
    """
    scale = np.asarray(spacing, np.float64)
    area = surface_area(mask, spacing)
    centres = centre_points(mask)
    try:
        hull = centre_hull(centres)
    except (QhullError, ValueError):
        count = _flat_count(centres, mask.shape)
        fmax, fmin = _corner_feret(mask, scale)
    else:
        count = _column_count(hull.equations, mask.shape)
        poly = _polytope(hull, scale)
        fmax, fmin = _feret_max(poly.vertices, scale), _min_width(poly, scale)
    return Geometry(area, fmax, fmin, count * float(np.prod(scale)))

"""Split one merged particle in two or more along a drawn border (paper 3.1).

The user puts a marker in each part and draws the border between them: a polyline of points (for
example in one slice, on the contact) or a plane. Every voxel of the particle gets its geodesic
distance to the border (the shortest path that stays inside the particle,
``skimage.graph.MCP_Geometric``); a watershed of the negated distance, flooded from the markers
and confined to the particle, then meets exactly on the border and follows the ridge of the
distance away from it, which separates the parts in 3D. Only the particle's bounding box is
processed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from skimage.draw import line_nd
from skimage.graph import MCP_Geometric
from skimage.segmentation import watershed

from particleseg.io.validation import check_labels

Point = Sequence[float]


@dataclass(frozen=True)
class Plane:
    """A border plane through ``point`` with normal ``normal``, both (z, y, x) in voxels."""

    point: tuple[float, float, float]
    normal: tuple[float, float, float]

    def __post_init__(self) -> None:
        point = tuple(float(v) for v in self.point)
        normal = tuple(float(v) for v in self.normal)
        if len(point) != 3 or len(normal) != 3:
            raise ValueError(
                f"a plane needs a 3D point and normal, got {self.point}, {self.normal}"
            )
        if not np.all(np.isfinite(point + normal)) or not np.any(normal):
            raise ValueError(f"plane normal must be finite and non-zero, got {normal}")
        object.__setattr__(self, "point", point)
        object.__setattr__(self, "normal", normal)


def rasterise_polyline(points: np.ndarray) -> np.ndarray:
    """Voxels of a polyline through ``points`` (consecutive points joined by 3D lines).

    Args:
        points: (N, 3) float or int (z, y, x) coordinates, N >= 1; rounded to voxels.

    Returns:
        (M, 3) int64 voxel coordinates (may repeat, may lie outside any volume).
    """
    pts = np.rint(np.asarray(points, dtype=np.float64)).astype(np.int64).reshape(-1, 3)
    if len(pts) == 1:
        return pts
    segments = [
        np.stack(line_nd(a, b, endpoint=True), axis=1)
        for a, b in zip(pts[:-1], pts[1:], strict=True)
    ]
    return np.concatenate(segments).astype(np.int64)


def plane_voxels_mask(plane: Plane, offset: Sequence[int], shape: Sequence[int]) -> np.ndarray:
    """Voxels of a box that lie on a digital plane (6-tunnel-free: no 6-connected path crosses it).

    A voxel ``c`` is on the plane when ``|n . (c - p)| <= |n|_1 / 2`` with ``n`` the unit normal.

    Args:
        plane: The plane, in volume coordinates.
        offset: (z, y, x) volume coordinates of the box's first voxel.
        shape: (z, y, x) box shape.

    Returns:
        Bool array of ``shape``.
    """
    n = np.asarray(plane.normal) / np.linalg.norm(plane.normal)
    z, y, x = np.ogrid[tuple(slice(o, o + s) for o, s in zip(offset, shape, strict=True))]
    p = plane.point
    signed = n[0] * (z - p[0]) + n[1] * (y - p[1]) + n[2] * (x - p[2])
    return np.abs(signed) <= np.abs(n).sum() / 2.0


def _bbox(mask: np.ndarray) -> tuple[slice, slice, slice]:
    out = []
    for axis in range(3):
        other = tuple(a for a in range(3) if a != axis)
        hit = np.flatnonzero(mask.any(axis=other))
        out.append(slice(int(hit[0]), int(hit[-1]) + 1))
    return tuple(out)  # type: ignore[return-value]


def _marker_array(
    markers: Any, labels: np.ndarray, particle_id: int, box: tuple[slice, ...], mask: np.ndarray
) -> np.ndarray:
    """Markers as an int32 array of the crop, values 1..n in marker order."""
    arr = np.asarray(markers) if not isinstance(markers, list | tuple) else None
    if arr is not None and arr.shape == labels.shape:
        crop = np.asarray(arr[box])
        values = np.unique(crop[mask & (crop > 0)])
        outside = np.setdiff1d(np.unique(arr[arr > 0]), values)
        if outside.size:
            raise ValueError(
                f"markers: marker value(s) {outside.tolist()} have no voxel inside particle "
                f"{particle_id}"
            )
        if values.size < 2:
            raise ValueError(f"markers: need >= 2 markers (one per part), got {values.size}")
        out = np.zeros(crop.shape, dtype=np.int32)
        marked = mask & (crop > 0)
        out[marked] = np.searchsorted(values, crop[marked]) + 1
        return out
    pts = np.asarray(markers, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise ValueError(
            f"markers: expected a list of (z, y, x) points or a label array of shape "
            f"{labels.shape}, got an array of shape {pts.shape}"
        )
    if len(pts) < 2:
        raise ValueError(f"markers: need >= 2 markers (one per part), got {len(pts)}")
    vox = np.rint(pts).astype(np.int64)
    inside_volume = np.all((vox >= 0) & (vox < labels.shape), axis=1)
    ok = inside_volume.copy()
    ok[inside_volume] = labels[tuple(vox[inside_volume].T)] == particle_id
    if not ok.all():
        bad = [tuple(p) for p in pts[~ok].tolist()]
        raise ValueError(f"markers: point(s) {bad} lie outside particle {particle_id}")
    if len({tuple(v) for v in vox.tolist()}) < len(vox):
        raise ValueError("markers: two markers fall on the same voxel")
    out = np.zeros(mask.shape, dtype=np.int32)
    local = vox - [s.start for s in box]
    out[tuple(local.T)] = np.arange(1, len(vox) + 1, dtype=np.int32)
    return out


def _polylines(border: Any, labels_shape: tuple[int, ...]) -> list[np.ndarray]:
    """A border given as points: one (N, 3) polyline, or a list of them (e.g. napari shapes)."""
    many = isinstance(border, list | tuple) and len(border) > 0
    many = many and all(np.ndim(b) == 2 for b in border)
    lines = (
        [np.asarray(b, dtype=np.float64) for b in border]
        if many
        else [np.asarray(border, dtype=np.float64)]
    )
    lines = [line for line in lines if line.size]
    if not lines:
        raise ValueError("border: empty; draw at least one point on the contact")
    for line in lines:
        if line.ndim != 2 or line.shape[1] != 3:
            raise ValueError(
                f"border: expected (z, y, x) points, a list of polylines, a Plane or a mask of "
                f"shape {labels_shape}, got an array of shape {line.shape}"
            )
    return lines


def _border_mask(
    border: Any, labels_shape: tuple[int, ...], box: tuple[slice, ...], mask: np.ndarray
) -> np.ndarray:
    """The border's voxels inside the particle crop, as a bool array of the crop."""
    offset = [s.start for s in box]
    if isinstance(border, Plane):
        drawn = plane_voxels_mask(border, offset, mask.shape)
    elif hasattr(border, "shape") and tuple(border.shape) == tuple(labels_shape):
        drawn = np.asarray(border[box]).astype(bool)
    else:
        drawn = np.zeros(mask.shape, dtype=bool)
        for line in _polylines(border, labels_shape):
            vox = rasterise_polyline(line) - offset
            keep = np.all((vox >= 0) & (vox < mask.shape), axis=1)
            drawn[tuple(vox[keep].T)] = True
    return drawn & mask


def geodesic_distance(mask: np.ndarray, sources: np.ndarray) -> np.ndarray:
    """Geodesic (path inside ``mask``) distance of every voxel to the ``sources``.

    Args:
        mask: (Z, Y, X) bool, where paths may go.
        sources: (Z, Y, X) bool, distance 0 (inside ``mask``).

    Returns:
        (Z, Y, X) float64 distances in voxels (26-neighbour steps of length 1, sqrt 2, sqrt 3);
        ``inf`` outside ``mask`` and where no path reaches.
    """
    costs = np.where(mask, 1.0, np.inf)
    mcp = MCP_Geometric(costs, fully_connected=True)
    dist, _ = mcp.find_costs(np.argwhere(sources))
    dist[~mask] = np.inf
    return dist


def split_particle(
    labels: np.ndarray,
    particle_id: int,
    markers: Any,
    border: Any,
) -> np.ndarray:
    """Split one particle in parts along a drawn border.

    Args:
        labels: (Z, Y, X) integer instance labels (0 = background).
        particle_id: Id of the particle to split.
        markers: One marker per part, >= 2: a list of (z, y, x) points (floats are rounded) inside
            the particle, or an integer array of ``labels``' shape whose distinct non-zero values
            mark the parts (marker voxels outside the particle are ignored, but each value needs
            one inside).
        border: The contact between the parts: (N, 3) (z, y, x) points joined into a polyline
            (N >= 1; e.g. drawn in one slice), a list of such polylines (each joined on its
            own), a :class:`Plane`, or a bool array of ``labels``' shape. Only its voxels inside
            the particle count.

    Returns:
        New (Z, Y, X) labels (a copy; dtype of ``labels``, widened to uint32/uint64 only if the new
        ids do not fit). Only the particle's voxels change: the part of the first marker keeps
        ``particle_id``, the others get ``labels.max() + 1``, ``+ 2``... in marker order. Voxels
        the watershed cannot reach (a piece of the particle without a marker) keep
        ``particle_id``.

    Raises:
        ValueError: If ``particle_id`` is absent, fewer than 2 markers are given, a marker lies
            outside the particle, two markers share a voxel, or the border is empty or misses the
            particle.
    """
    check_labels(labels, "labels")
    labels = np.asarray(labels)
    particle_id = int(particle_id)
    if particle_id <= 0:
        raise ValueError(f"particle_id must be a positive label id, got {particle_id}")
    full_mask = labels == particle_id
    if not full_mask.any():
        raise ValueError(f"labels: particle id {particle_id} is absent")
    box = _bbox(full_mask)
    mask = full_mask[box]
    del full_mask
    seeds = _marker_array(markers, labels, particle_id, box, mask)
    drawn = _border_mask(border, labels.shape, box, mask)
    if not drawn.any():
        raise ValueError(f"border: does not cross particle {particle_id}")
    dist = geodesic_distance(mask, drawn)
    finite = np.isfinite(dist)
    dist[~finite] = dist[finite].max() + 1.0
    parts = watershed(-dist, seeds, mask=mask)
    n_parts = int(seeds.max())
    first_new = int(labels.max()) + 1
    ids = np.array([particle_id, *range(first_new, first_new + n_parts - 1)], dtype=np.uint64)
    dtype = labels.dtype
    if dtype.kind in "iu" and ids.max() > np.iinfo(dtype).max:
        dtype = np.dtype(np.uint32 if ids.max() <= np.iinfo(np.uint32).max else np.uint64)
    out = labels.astype(dtype, copy=True)
    crop = out[box]
    reached = mask & (parts > 0)
    crop[reached] = ids[parts[reached] - 1].astype(dtype)
    return out

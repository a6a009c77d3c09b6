"""Exact Feret diameters of a convex polytope plus an axis-aligned box.

:mod:`particleseg.analysis._geometry` calls this with ``P`` the hull of a particle's voxel
*centres* and ``B`` one voxel box (sides ``s``, the spacing): ``P + B`` is then the convex hull
of the voxel solid, whose width along a unit direction ``u`` is ``w_P(u) + sum_k |u_k| s_k``
(for flat particles, with ``P`` the hull of the voxel corners and an empty box).

* **Feret max** is the largest distance between two vertices of ``P + B``:
  ``max over vertices p, q of P of |(|p - q| + s)|`` (componentwise absolute values), exact.
* **Feret min** is the exact minimum width of ``P + B``. The width of a convex polytope is
  attained at an antipodal facet-vertex pair (direction = a facet normal) or an antipodal
  edge-edge pair (direction = cross product of the edges) [Houle & Toussaint 1988]. The facets
  of ``P + B`` have the normals of ``P``'s facets, the axes, and ``d x e_k`` for edges ``d`` of
  ``P`` whose normal cone contains it; its antipodal edge pairs are antipodal edge pairs of
  ``P`` (directions ``d1 x d2``), or involve an axis (directions ``d x e_k`` or axes). All these
  directions are scored, so the minimum is exact up to floating-point rounding (~1e-12
  relative); candidate pairs come from the normal cones (great-circle arcs between the two
  facet normals at each edge), so only nearly antipodal pairs are examined.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.spatial import ConvexHull

#: Slack in the antipodality tests of edge pairs (radians); extra pairs only cost time.
_ARC_TOL = 1e-9
#: Entries of one projection matrix (OpenBLAS runs products with m n k < 262144 on one thread;
#: on small matrices its threads cost far more than they save).
_BLAS_SINGLE_THREAD = 65536


class _Polytope(NamedTuple):
    """A triangulated 3D convex polytope (scipy ``ConvexHull`` arrays, possibly rescaled).

    Attributes:
        points: (P, 3) float64 input points (vertices among them).
        vertices: (V, 3) float64 vertex coordinates.
        simplices: (F, 3) indices into points of the facet triangles.
        neighbors: (F, 3) index of the triangle opposite each vertex of each triangle.
        normals: (F, 3) unit outward normals.
    """

    points: np.ndarray
    vertices: np.ndarray
    simplices: np.ndarray
    neighbors: np.ndarray
    normals: np.ndarray


def _polytope(hull: ConvexHull, scale: np.ndarray) -> _Polytope:
    """The hull mapped by ``x -> x * scale`` (normals map by ``n / scale``, renormalised)."""
    points = hull.points * scale
    normals = hull.equations[:, :3] / scale
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    return _Polytope(points, points[hull.vertices], hull.simplices, hull.neighbors, normals)


def _extent(vertices: np.ndarray, directions: np.ndarray) -> np.ndarray:
    """Width of the (V, 3) point set along each of the (D, 3) unit directions: (D,) float64.

    Products in pieces of at most ``_BLAS_SINGLE_THREAD`` entries, so OpenBLAS stays on one
    thread (its threads on small matrices cost tens of times more on a busy machine).
    """
    out = np.empty(len(directions), np.float64)
    step = max(1, _BLAS_SINGLE_THREAD // max(len(vertices), 1))
    for start in range(0, len(directions), step):
        proj = directions[start : start + step] @ vertices.T
        out[start : start + step] = proj.max(axis=1) - proj.min(axis=1)
    return out


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cross product of two (K, 3) arrays (np.cross without its per-call overhead)."""
    out = np.empty(np.broadcast_shapes(a.shape, b.shape), np.float64)
    out[:, 0] = a[:, 1] * b[:, 2] - a[:, 2] * b[:, 1]
    out[:, 1] = a[:, 2] * b[:, 0] - a[:, 0] * b[:, 2]
    out[:, 2] = a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]
    return out


def _dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise dot product of two (K, 3) arrays: (K,)."""
    return a[:, 0] * b[:, 0] + a[:, 1] * b[:, 1] + a[:, 2] * b[:, 2]


def _on_arc(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Whether unit vectors p (on the great circle through a, b) lie on the short arc a-b.

    On that circle ``p = alpha a + beta b``; p is on the short arc iff alpha, beta >= 0, i.e.
    ``p.a - (a.b) p.b >= 0`` and ``p.b - (a.b) p.a >= 0``.

    Args:
        p: (K, 3) unit vectors on the great circles.
        a: (K, 3) unit vectors, one end of each arc.
        b: (K, 3) unit vectors, the other end (the angle between a and b is below pi).

    Returns:
        (K,) bool.
    """
    c = _dot(a, b)
    pa, pb = _dot(p, a), _dot(p, b)
    return (pa - c * pb >= -_ARC_TOL) & (pb - c * pa >= -_ARC_TOL)


def _hull_edges(poly: _Polytope) -> tuple[np.ndarray, ...]:
    """Edges of a triangulated hull between two non-coplanar facets, each once.

    Returns:
        (first end, second end, normal of one facet, normal of the other): four (E, 3) arrays.
    """
    nfacets = len(poly.simplices)
    f = np.repeat(np.arange(nfacets), 3)
    opposite = np.tile(np.arange(3), nfacets)
    g = poly.neighbors.ravel()
    keep = f < g
    f, opposite, g = f[keep], opposite[keep], g[keep]
    nf, ng = poly.normals[f], poly.normals[g]
    real = _dot(nf, ng) < 1.0 - 1e-12
    f, opposite, nf, ng = f[real], opposite[real], nf[real], ng[real]
    simplices = poly.simplices[f]
    rows = np.arange(len(f))
    ends_a = poly.points[simplices[rows, (opposite + 1) % 3]]
    ends_b = poly.points[simplices[rows, (opposite + 2) % 3]]
    return ends_a, ends_b, nf, ng


def _unit(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of v normalised, and which rows were long enough to normalise."""
    norm = np.sqrt(_dot(v, v))
    ok = norm > 1e-12 * max(float(norm.max(initial=0.0)), 1e-300)
    out = np.zeros_like(v)
    out[ok] = v[ok] / norm[ok, None]
    return out, ok


def _antipodal_candidates(nf: np.ndarray, ng: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of edges whose normal cones may be antipodal (a superset of the antipodal pairs).

    An edge's normal cone is the arc between its facets' normals ``nf``, ``ng``; it lies in the
    cap around its midpoint ``m`` of angular radius ``h`` (half the arc). Two arcs can meet
    (one of them reflected) only if ``angle(m1, -m2) <= h1 + h2``.

    Returns:
        Edge indices (e1, e2), two (C,) intp arrays with e1 != e2.
    """
    mid = nf + ng
    mid /= np.linalg.norm(mid, axis=1, keepdims=True)
    cos_h = np.sqrt(np.clip((1.0 + _dot(nf, ng)) / 2.0, 0.0, 1.0))  # cos of half the arc
    sin_h = np.sqrt(np.clip((1.0 - _dot(nf, ng)) / 2.0, 0.0, 1.0))
    # cos(angle(m1, -m2)) >= cos(h1 + h_max) is necessary; rows in pieces that keep the
    # product on one BLAS thread.
    h_max = float(np.arctan2(sin_h, cos_h).max())
    threshold = np.cos(np.minimum(np.arctan2(sin_h, cos_h) + h_max + _ARC_TOL, np.pi))
    n = len(mid)
    step = max(1, _BLAS_SINGLE_THREAD // n)
    found = []
    for start in range(0, n, step):
        cos = -(mid[start : start + step] @ mid.T)
        flat = np.flatnonzero(cos >= threshold[start : start + step, None])
        found.append(flat + start * n)
    flat = np.concatenate(found)
    e1, e2 = np.divmod(flat, n)
    keep = e1 < e2
    e1, e2 = e1[keep], e2[keep]
    # exact cap test: cos(angle(m1, -m2)) >= cos(h1 + h2) (angles in [0, pi])
    cos_sum = cos_h[e1] * cos_h[e2] - sin_h[e1] * sin_h[e2]
    keep = -_dot(mid[e1], mid[e2]) >= cos_sum - _ARC_TOL
    return e1[keep], e2[keep]


def _min_width(poly: _Polytope, pad: np.ndarray) -> float:
    """Exact minimum width of ``poly + box(pad)`` (the box of sides ``pad`` centred at 0).

    Args:
        poly: The polytope ``P``.
        pad: (3,) side lengths of the box (zeros for ``P`` itself).

    Returns:
        The smallest distance between two parallel supporting planes of the sum.
    """
    vertices = poly.vertices
    widths = [_extent(vertices, poly.normals) + np.abs(poly.normals) @ pad]
    boxed = bool(np.any(pad > 0))
    if boxed:
        widths.append(vertices.max(axis=0) - vertices.min(axis=0) + pad)
    ends_a, ends_b, nf, ng = _hull_edges(poly)
    if len(nf):
        d = ends_b - ends_a
        if boxed:
            # Facets of the sum with normal d x e_k: where the edge's normal cone (the arc
            # nf-ng) crosses the plane u_k = 0, at u ~ |ng_k| nf + |nf_k| ng.
            for k in range(3):
                cross = (nf[:, k] * ng[:, k] <= 0) & ((nf[:, k] != 0) | (ng[:, k] != 0))
                if cross.any():
                    u = (
                        np.abs(ng[cross, k, None]) * nf[cross]
                        + np.abs(nf[cross, k, None]) * ng[cross]
                    )
                    u /= np.sqrt(_dot(u, u))[:, None]
                    widths.append(_extent(vertices, u) + np.abs(u) @ pad)
        e1, e2 = _antipodal_candidates(nf, ng)
        if len(e1):
            u, ok = _unit(_cross(d[e1], d[e2]))
            e1, e2, u = e1[ok], e2[ok], u[ok]
            # u is perpendicular to both edges, so it lies on both great circles: orient it
            # into edge 1's normal cone and require -u in edge 2's.
            on = _on_arc(u, nf[e1], ng[e1])
            flip = ~on & _on_arc(-u, nf[e1], ng[e1])
            u[flip] *= -1.0
            good = (on | flip) & _on_arc(-u, nf[e2], ng[e2])
            if good.any():
                u = u[good]
                # Both edges support P along u: the width of P is the gap between their lines.
                gap = np.abs(_dot(u, ends_a[e1[good]] - ends_a[e2[good]]))
                widths.append(gap + np.abs(u) @ pad)
    return float(min(w.min() for w in widths if len(w)))


def _feret_max(vertices: np.ndarray, pad: np.ndarray) -> float:
    """Largest distance between vertices of ``conv(vertices) + box(pad)``.

    The farthest pair of the sum is ``p + a``, ``q + b`` with a, b box corners, at distance
    ``|(|p - q| + pad)|`` with componentwise absolute values.
    """
    best = 0.0
    step = max(1, _BLAS_SINGLE_THREAD // max(len(vertices), 1))
    for start in range(0, len(vertices), step):
        part = vertices[start : start + step]
        d2 = np.zeros((len(part), len(vertices)))
        for k in range(3):
            gap = np.abs(np.subtract.outer(part[:, k], vertices[:, k]))
            gap += pad[k]
            d2 += gap * gap
        best = max(best, float(d2.max()))
    return float(np.sqrt(best))

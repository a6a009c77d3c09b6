"""Exact nearest seed of the own component for "far" voxels, with k-d trees (no brute force).

The voxels of a foreground component that have no core of their component within the halo are
few in ordinary scans, but a badly segmented scan (one huge component spanning the volume, with
its cores far apart) can hold millions of them: a brute force over all seed surfaces then takes
hours. Here the seed surface voxels of each such component go into a k-d tree and every point
queries it; ties are resolved exactly as the brute force does (smallest squared distance, in the
same floating-point formula, then the smallest raster index).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

K = 4  # neighbours asked first; a point whose K-th is as near as its 1st asks a ball


def _d2(points: np.ndarray, cand: np.ndarray, spacing) -> np.ndarray:
    """Squared distances in the brute force's formula: ``dz*dz + dy*dy + dx*dx``, scaled."""
    sz, sy, sx = spacing
    dz = sz * (points[..., 0] - cand[..., 0])
    dy = sy * (points[..., 1] - cand[..., 1])
    dx = sx * (points[..., 2] - cand[..., 2])
    return dz * dz + dy * dy + dx * dx


def nearest_in_component(
    points: np.ndarray,
    point_comp: np.ndarray,
    cand: np.ndarray,
    cand_raster: np.ndarray,
    cand_label: np.ndarray,
    cand_comp: np.ndarray,
    spacing=(1.0, 1.0, 1.0),
) -> np.ndarray:
    """Label of the nearest candidate of the same component, for every point.

    Args:
        points: (P, 3) int64 voxel coordinates.
        point_comp: (P,) component of each point.
        cand: (S, 3) int64 coordinates of candidate seed voxels.
        cand_raster: (S,) raster index of each candidate (tie-break: smaller wins).
        cand_label: (S,) seed label of each candidate.
        cand_comp: (S,) component of each candidate.
        spacing: voxel size (z, y, x).

    Returns:
        (P,) uint32 labels; 0 for a point whose component has no candidate.
    """
    spacing = tuple(float(s) for s in spacing)
    scale = np.asarray(spacing)
    out = np.zeros(len(points), np.uint32)
    p_order = np.argsort(point_comp, kind="stable")
    c_order = np.argsort(cand_comp, kind="stable")
    p_sorted, c_sorted = point_comp[p_order], cand_comp[c_order]
    for comp in np.unique(point_comp).tolist():  # components with far voxels: few
        pi = p_order[np.searchsorted(p_sorted, comp) : np.searchsorted(p_sorted, comp, "right")]
        cj = c_order[np.searchsorted(c_sorted, comp) : np.searchsorted(c_sorted, comp, "right")]
        if not len(cj):
            continue
        own = cand[cj]
        tree = cKDTree(own * scale)
        pts = points[pi]
        k = min(K, len(cj))
        _, idx = tree.query(pts * scale, k=k)
        idx = idx.reshape(len(pts), k)
        d2 = _d2(pts[:, None, :], own[idx], spacing)
        raster = cand_raster[cj][idx]
        best = np.lexsort((raster, d2), axis=-1)[:, 0] if k > 1 else np.zeros(len(pts), int)
        rows = np.arange(len(pts))
        choice = idx[rows, best]
        dmin = d2[rows, best]
        # a K-th neighbour (about) as near as the best: more ties may lie outside the K
        unsure = np.flatnonzero(d2.max(axis=1) <= dmin * (1 + 1e-9)) if k < len(cj) else []
        for r in np.asarray(unsure).tolist():
            near = np.asarray(
                tree.query_ball_point(pts[r] * scale, np.sqrt(dmin[r]) * (1 + 1e-6) + 1e-12)
            )
            dd = _d2(pts[r][None, :], own[near], spacing)
            m = dd == dd.min()
            choice[r] = near[m][np.argmin(cand_raster[cj][near[m]])]
        out[pi] = cand_label[cj][choice]
    return out

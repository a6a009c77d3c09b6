"""Supersampled rasterization of an implicit multi-material body into a small box (internal).

The body is a function ``evaluate(x) -> (material, clearance)`` of voxel-space points ``x``
(3, N) float32 relative to its centre: the material id at each point (0 = outside) and a lower
bound on the distance from the point to the nearest material boundary, in voxels.
Rasterization is hierarchical so that only the thin shell of voxels near a boundary is
supersampled:

1. blocks of ``block``^3 voxels whose centre clearance exceeds the block's half diagonal are
   filled with one material;
2. voxels of the other blocks whose centre clearance exceeds sqrt(3)/2 likewise;
3. the remaining voxels get the material fractions of ``supersample``^3 sub-voxel points.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Evaluate = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]

_CHUNK_POINTS = 1 << 17
_HALF_DIAGONAL = 3**0.5 / 2


def _evaluate_chunked(evaluate: Evaluate, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``evaluate`` over ``x`` (3, N) in chunks, to bound temporary memory."""
    n = x.shape[1]
    if n <= _CHUNK_POINTS:
        return evaluate(x)
    parts = [evaluate(x[:, i : i + _CHUNK_POINTS]) for i in range(0, n, _CHUNK_POINTS)]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _subvoxel_offsets(supersample: int) -> np.ndarray:
    """(3, s^3) float32 offsets of the sub-voxel sample points from the voxel centre."""
    t = (np.arange(supersample) + 0.5) / supersample - 0.5
    return np.stack(np.meshgrid(t, t, t, indexing="ij")).reshape(3, -1).astype(np.float32)


def rasterize(
    evaluate: Evaluate,
    box_shape: tuple[int, int, int],
    centre: np.ndarray,
    supersample: int,
    mu_lut: np.ndarray,
    block: int = 4,
) -> tuple[np.ndarray, np.ndarray]:
    """Fractional occupancy and attenuation of a body in a box.

    Args:
        evaluate: the body (see module docstring); material ids index ``mu_lut``.
        box_shape: (bz, by, bx) box size in voxels.
        centre: (3,) float position of the body's origin in box index coordinates.
        supersample: sub-voxel points per axis for boundary voxels (1 = voxel centres only).
        mu_lut: (M,) attenuation per material id; id 0 is outside the body.
        block: edge of the coarse blocks tried first.

    Returns:
        ``occupancy``: (bz, by, bx) float32, fraction of each voxel inside the body (any material
        > 0); ``mu``: (bz, by, bx) float32, the voxel's mean attenuation content from the body
        (sum over materials of fraction times attenuation).
    """
    shape = np.asarray(box_shape, int)
    mu_lut = np.asarray(mu_lut, np.float32)
    occ_lut = (np.arange(len(mu_lut)) > 0).astype(np.float32)
    centre = np.asarray(centre, np.float32).reshape(3, 1)

    nb = -(-shape // block)
    bidx = np.indices(nb).reshape(3, -1)
    mat, clr = _evaluate_chunked(evaluate, bidx * np.float32(block) + ((block - 1) / 2 - centre))
    pure = clr > block * _HALF_DIAGONAL
    occ_b = np.where(pure, occ_lut[mat], 0.0).reshape(nb)
    mu_b = np.where(pure, mu_lut[mat], 0.0).reshape(nb)
    crop = tuple(slice(0, int(n)) for n in shape)
    occ = np.ascontiguousarray(
        occ_b.repeat(block, 0).repeat(block, 1).repeat(block, 2)[crop], np.float32
    )
    mu = np.ascontiguousarray(
        mu_b.repeat(block, 0).repeat(block, 1).repeat(block, 2)[crop], np.float32
    )

    offsets = np.indices((block,) * 3).reshape(3, -1)
    vox = (bidx[:, ~pure][:, :, None] * block + offsets[:, None, :]).reshape(3, -1)
    vox = vox[:, (vox < shape[:, None]).all(axis=0)]
    if vox.shape[1] == 0:
        return occ, mu
    mat, clr = _evaluate_chunked(evaluate, vox.astype(np.float32) - centre)
    pure = clr > _HALF_DIAGONAL
    if supersample <= 1:
        pure[:] = True
    idx = tuple(vox[:, pure])
    occ[idx] = occ_lut[mat[pure]]
    mu[idx] = mu_lut[mat[pure]]

    mixed = vox[:, ~pure]
    sub = _subvoxel_offsets(supersample)
    ns = sub.shape[1]
    step = max(1, _CHUNK_POINTS // ns)
    for i in range(0, mixed.shape[1], step):
        part = mixed[:, i : i + step]
        pts = ((part.astype(np.float32) - centre)[:, :, None] + sub[:, None, :]).reshape(3, -1)
        mat, _ = evaluate(pts)
        mat = mat.reshape(-1, ns)
        idx = tuple(part)
        occ[idx] = occ_lut[mat].mean(axis=1)
        mu[idx] = mu_lut[mat].mean(axis=1)
    return occ, mu

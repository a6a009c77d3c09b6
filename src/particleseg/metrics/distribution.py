"""How far a prediction's particle size distribution is from the reference's (no torch).

What a process engineer reads off a segmentation is the size distribution: its D10 / D50 / D90
and the particle count. These are compared here as relative errors, ``(pred - ref) / ref``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from particleseg.analysis.distribution import size_distribution

PERCENTILES = (10, 50, 90)
DIST_KEYS = (
    "count_rel_error",
    *(f"d{p}_{w}_rel_error" for w in ("number", "volume") for p in PERCENTILES),
)


def equivalent_diameters(
    labels: np.ndarray, spacing: Sequence[float] = (1.0, 1.0, 1.0)
) -> tuple[np.ndarray, np.ndarray]:
    """Volume and equivalent (sphere) diameter of every particle, in physical units.

    Args:
        labels: (Z, Y, X) non-negative integer labels, 0 background.
        spacing: voxel size (z, y, x).

    Returns:
        ``(volumes, diameters)``: (N,) float64 each, particles in ascending id order.
    """
    ids, counts = np.unique(np.asarray(labels), return_counts=True)
    volumes = counts[ids != 0] * float(np.prod(spacing))
    return volumes, np.cbrt(6.0 * volumes / np.pi)


def size_distribution_errors(
    pred: np.ndarray, ref: np.ndarray, spacing: Sequence[float] = (1.0, 1.0, 1.0)
) -> dict[str, float]:
    """Relative errors of the particle count and of D10 / D50 / D90, number and volume weighted.

    D-values are of the equivalent diameter, interpolated as in
    :func:`particleseg.analysis.size_distribution`.

    Args:
        pred: (Z, Y, X) predicted labels.
        ref: (Z, Y, X) reference labels.
        spacing: voxel size (z, y, x); relative errors do not depend on it, D-values do.

    Returns:
        The keys of :data:`DIST_KEYS`; NaN where the reference has no particles, and for the
        D-values also where the prediction has none.
    """
    if np.shape(pred) != np.shape(ref):
        raise ValueError(f"pred shape {np.shape(pred)} differs from ref shape {np.shape(ref)}")
    dists = [
        size_distribution(d, v) for v, d in (equivalent_diameters(a, spacing) for a in (pred, ref))
    ]
    p, r = dists
    out = {"count_rel_error": (p.count - r.count) / r.count if r.count else float("nan")}
    for weighting in ("number", "volume"):
        dp, dr = getattr(p, f"d_{weighting}"), getattr(r, f"d_{weighting}")
        for q in PERCENTILES:
            ref_value = dr[float(q)]
            ok = r.count and p.count and ref_value > 0
            out[f"d{q}_{weighting}_rel_error"] = (
                (dp[float(q)] - ref_value) / ref_value if ok else float("nan")
            )
    return out

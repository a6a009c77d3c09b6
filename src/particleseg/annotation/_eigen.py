"""Eigenvalues of many symmetric 3x3 matrices, compiled with numba (one pass, no temporaries)."""

from __future__ import annotations

import math

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def _eigvals_kernel(a, b, c, d, e, f, out0, out1, out2):  # pragma: no cover - compiled
    """Trigonometric closed form (Smith 1961), float64 inside; ascending eigenvalues."""
    for i in range(a.size):
        aa, bb, cc = float(a[i]), float(b[i]), float(c[i])
        dd, ee, ff = float(d[i]), float(e[i]), float(f[i])
        q = (aa + bb + cc) / 3.0
        p1 = dd * dd + ee * ee + ff * ff
        p2 = (aa - q) ** 2 + (bb - q) ** 2 + (cc - q) ** 2 + 2.0 * p1
        p = math.sqrt(p2 / 6.0)
        if p < 1e-30:
            out0[i] = q
            out1[i] = q
            out2[i] = q
            continue
        ap, bp, cp = (aa - q) / p, (bb - q) / p, (cc - q) / p
        dp, ep, fp = dd / p, ee / p, ff / p
        det = ap * (bp * cp - fp * fp) - dp * (dp * cp - fp * ep) + ep * (dp * fp - bp * ep)
        r = min(1.0, max(-1.0, det / 2.0))
        phi = math.acos(r) / 3.0
        big = q + 2.0 * p * math.cos(phi)
        small = q + 2.0 * p * math.cos(phi + 2.0 * math.pi / 3.0)
        out0[i] = small
        out1[i] = 3.0 * q - big - small
        out2[i] = big


def sym_eigvals(
    a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray, e: np.ndarray, f: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Eigenvalues of the symmetric matrices ``[[a, d, e], [d, b, f], [e, f, c]]``, elementwise.

    Args:
        a: Entry zz, an array of any shape.
        b: Entry yy, same shape.
        c: Entry xx, same shape.
        d: Entry zy, same shape.
        e: Entry zx, same shape.
        f: Entry yx, same shape.

    Returns:
        Three float32 arrays of that shape: the eigenvalues in ascending order.
    """
    shape = np.shape(a)
    flat = [np.ascontiguousarray(x, dtype=np.float32).ravel() for x in (a, b, c, d, e, f)]
    outs = [np.empty(flat[0].size, dtype=np.float32) for _ in range(3)]
    _eigvals_kernel(*flat, *outs)
    return outs[0].reshape(shape), outs[1].reshape(shape), outs[2].reshape(shape)

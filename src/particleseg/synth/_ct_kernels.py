"""Parallel-beam projector, back-projector and FBP filters shared by the two CT simulators.

All slices of a volume are processed at once: volumes are laid out as (Y, X, Z) and sinograms as
(angles, detector, Z), so that the innermost loop of every kernel runs over Z on contiguous memory
(vectorised by LLVM) while the geometry (ray positions, interpolation weights) is computed once per
slice stack. Units: one pixel = one detector bin = 1 voxel; angles in [0, pi); detector coordinate
``t = x cos(theta) + y sin(theta)`` about the grid centre, with ``x`` along X and ``y`` along Y.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import scipy.fft

FILTERS = ("ramp", "shepp-logan", "hann")
#: Share of the photons in the soft bin of the two-bin spectrum (see ``CTParams``).
SOFT_FRACTION = 0.3


def default_n_angles(width: int) -> int:
    """Default number of projections for a slice ``width`` voxels wide: 1.5 x width, at least 90."""
    return max(90, int(math.ceil(1.5 * width)))


def n_detector(ny: int, nx: int) -> int:
    """Detector bins needed so that every pixel of a (ny, nx) slice projects onto the detector."""
    return int(math.ceil(math.hypot(ny, nx))) + 3


def angles(n_angles: int) -> np.ndarray:
    """Projection angles: (n_angles,) float64, equally spaced over [0, pi)."""
    return np.arange(n_angles, dtype=np.float64) * (np.pi / n_angles)


@numba.njit(cache=True, parallel=True, fastmath=True)
def forward_project(vol, thetas, n_det):  # pragma: no cover - compiled
    """Line integrals with Joseph's method (ray-driven, linear interpolation).

    Args:
        vol: (Y, X, Z) float32, attenuation per voxel.
        thetas: (A,) float64 projection angles in radians.
        n_det: number of detector bins D.

    Returns:
        (A, D, Z) float32 sinogram: line integrals through every slice.
    """
    ny, nx, nz = vol.shape
    na = thetas.shape[0]
    sino = np.zeros((na, n_det, nz), dtype=np.float32)
    cy = 0.5 * (ny - 1)
    cx = 0.5 * (nx - 1)
    cd = 0.5 * (n_det - 1)
    for a in numba.prange(na):
        c = math.cos(thetas[a])
        s = math.sin(thetas[a])
        for k in range(n_det):
            t = k - cd
            if abs(c) >= abs(s):
                # ray mostly along Y: step over rows, interpolate along X
                w = np.float32(1.0 / abs(c))
                for iy in range(ny):
                    y = iy - cy
                    xf = (t - y * s) / c + cx
                    i0 = int(math.floor(xf))
                    if i0 < -1 or i0 >= nx:
                        continue
                    f1 = np.float32(xf - i0) * w
                    f0 = w - f1
                    if i0 >= 0 and i0 + 1 < nx:
                        for z in range(nz):
                            sino[a, k, z] += f0 * vol[iy, i0, z] + f1 * vol[iy, i0 + 1, z]
                    elif i0 >= 0:
                        for z in range(nz):
                            sino[a, k, z] += f0 * vol[iy, i0, z]
                    else:
                        for z in range(nz):
                            sino[a, k, z] += f1 * vol[iy, 0, z]
            else:
                # ray mostly along X: step over columns, interpolate along Y
                w = np.float32(1.0 / abs(s))
                for ix in range(nx):
                    x = ix - cx
                    yf = (t - x * c) / s + cy
                    i0 = int(math.floor(yf))
                    if i0 < -1 or i0 >= ny:
                        continue
                    f1 = np.float32(yf - i0) * w
                    f0 = w - f1
                    if i0 >= 0 and i0 + 1 < ny:
                        for z in range(nz):
                            sino[a, k, z] += f0 * vol[i0, ix, z] + f1 * vol[i0 + 1, ix, z]
                    elif i0 >= 0:
                        for z in range(nz):
                            sino[a, k, z] += f0 * vol[i0, ix, z]
                    else:
                        for z in range(nz):
                            sino[a, k, z] += f1 * vol[0, ix, z]
    return sino


@numba.njit(cache=True, parallel=True, fastmath=True)
def back_project(sino, thetas, ny, nx, scale):  # pragma: no cover - compiled
    """Pixel-driven back-projection with linear interpolation on the detector.

    Args:
        sino: (A, D, Z) float32 (filtered) sinogram.
        thetas: (A,) float64 projection angles in radians.
        ny: rows Y of the output slices.
        nx: columns X of the output slices.
        scale: factor applied to the sum over angles (``pi / A`` for FBP).

    Returns:
        (Y, X, Z) float32 back-projection.
    """
    na, n_det, nz = sino.shape
    out = np.zeros((ny, nx, nz), dtype=np.float32)
    cy = 0.5 * (ny - 1)
    cx = 0.5 * (nx - 1)
    cd = 0.5 * (n_det - 1)
    sc = np.float32(scale)
    for iy in numba.prange(ny):
        y = iy - cy
        for a in range(na):
            c = math.cos(thetas[a])
            s = math.sin(thetas[a])
            base = y * s + cd
            for ix in range(nx):
                tf = (ix - cx) * c + base
                k = int(math.floor(tf))
                if k < 0 or k + 1 >= n_det:
                    continue
                f1 = np.float32(tf - k)
                f0 = np.float32(1.0) - f1
                for z in range(nz):
                    out[iy, ix, z] += f0 * sino[a, k, z] + f1 * sino[a, k + 1, z]
        for ix in range(nx):
            for z in range(nz):
                out[iy, ix, z] *= sc
    return out


def fbp_filter(n_det: int, name: str) -> tuple[np.ndarray, int]:
    """Frequency response of the FBP filter for a zero-padded detector row.

    The ramp is built from its band-limited spatial kernel (h[0] = 1/4, h[n odd] = -1/(pi n)^2),
    which avoids the DC offset of a sampled ``|f|`` (Kak & Slaney, ch. 3), then apodised.

    Args:
        n_det: detector bins D.
        name: ``"ramp"``, ``"shepp-logan"`` (ramp x sinc) or ``"hann"`` (ramp x raised cosine).

    Returns:
        (P // 2 + 1,) float32 response for ``scipy.fft.rfft`` of length P, and P (>= 2 D).
    """
    if name not in FILTERS:
        raise ValueError(f"filter must be one of {FILTERS}, got {name!r}")
    size = scipy.fft.next_fast_len(2 * n_det, real=True)
    dist = np.minimum(np.arange(size), size - np.arange(size))  # circular distance to tap 0
    h = np.zeros(size)
    odd = dist % 2 == 1
    h[odd] = -1.0 / (np.pi * dist[odd]) ** 2
    h[0] = 0.25
    response = 2.0 * np.real(np.fft.rfft(h))
    freq = np.fft.rfftfreq(size)  # cycles per bin, 0 .. 0.5
    if name == "shepp-logan":
        response *= np.sinc(freq)
    elif name == "hann":
        response *= 0.5 * (1.0 + np.cos(2.0 * np.pi * freq))
    return (0.5 * response).astype(np.float32), size


def filter_sinogram(sino: np.ndarray, name: str, block: int = 32) -> np.ndarray:
    """Apply the FBP filter along the detector axis, in blocks of angles to bound memory.

    Args:
        sino: (A, D, Z) float32 sinogram.
        name: filter name (see ``fbp_filter``).
        block: angles filtered per FFT call.

    Returns:
        (A, D, Z) float32 filtered sinogram (new array).
    """
    n_det = sino.shape[1]
    response, size = fbp_filter(n_det, name)
    out = np.empty_like(sino)
    for a0 in range(0, sino.shape[0], block):
        spec = scipy.fft.rfft(sino[a0 : a0 + block], n=size, axis=1, workers=-1)
        spec *= response[None, :, None]
        out[a0 : a0 + block] = scipy.fft.irfft(spec, n=size, axis=1, workers=-1)[:, :n_det]
    return out


def fbp(sino: np.ndarray, thetas: np.ndarray, ny: int, nx: int, name: str) -> np.ndarray:
    """Filtered back-projection of a parallel-beam sinogram over [0, pi).

    Args:
        sino: (A, D, Z) float32 line integrals (dimensionless).
        thetas: (A,) float64 angles.
        ny: output rows.
        nx: output columns.
        name: filter name (see ``fbp_filter``).

    Returns:
        (Y, X, Z) float32 attenuation per voxel.
    """
    filtered = filter_sinogram(np.ascontiguousarray(sino, dtype=np.float32), name)
    return back_project(filtered, thetas, ny, nx, np.pi / len(thetas))


def as_rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    """A generator from a Generator (returned as is), an int seed, or None (fresh entropy)."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, int | np.integer):
        return np.random.default_rng(rng)
    raise ValueError(f"rng must be a numpy Generator, an int seed or None, got {type(rng)}")


def check_attenuation(mu: np.ndarray) -> np.ndarray:
    """Validate a (Z, Y, X) attenuation volume and return it as float32.

    Raises:
        ValueError: not a 3D floating array, a slice smaller than 8 x 8, a non-finite or a
            negative value; the message names the shape.
    """
    if not isinstance(mu, np.ndarray):
        raise ValueError(f"mu must be a numpy array, got {type(mu).__name__}")
    if mu.ndim != 3:
        raise ValueError(f"mu must be 3D (Z, Y, X), got shape {mu.shape}")
    if not np.issubdtype(mu.dtype, np.floating):
        raise ValueError(f"mu must be a float array, got dtype {mu.dtype} (shape {mu.shape})")
    if mu.shape[0] < 1 or mu.shape[1] < 8 or mu.shape[2] < 8:
        raise ValueError(f"mu needs Z >= 1 and slices of at least 8 x 8, got shape {mu.shape}")
    if not np.isfinite(mu).all():
        raise ValueError(f"mu of shape {mu.shape} contains NaN or inf")
    if mu.min() < 0:
        raise ValueError(f"mu of shape {mu.shape} has negative values (min {float(mu.min()):g})")
    return mu.astype(np.float32, copy=False)


def polychromatic_transmission(p: np.ndarray, beam_hardening: float) -> np.ndarray:
    """Transmitted fraction of the two-bin spectrum for monochromatic line integrals ``p``.

    Args:
        p: line integrals (any shape), float32, >= 0.
        beam_hardening: curvature ``b`` in [0, 1) (see ``CTParams``); 0 gives ``exp(-p)``.

    Returns:
        Transmission in (0, 1], float32, same shape as ``p``.
    """
    if beam_hardening == 0:
        return np.exp(-p)
    w = SOFT_FRACTION
    spread = math.sqrt(2.0 * beam_hardening / (w * (1.0 - w)))
    s_soft = 1.0 + (1.0 - w) * spread
    s_hard = max(1.0 - w * spread, 0.0)
    soft = np.float32(w) * np.exp(np.float32(-s_soft) * p)
    hard = np.float32(1.0 - w) * np.exp(np.float32(-s_hard) * p)
    return (soft + hard).astype(np.float32, copy=False)

"""Cheap image-space look-alike of ``simulate_ct`` for bulk training data.

The expensive part of the full simulation is the full-resolution projection and back-projection.
Here only the low-frequency physics goes through a projector, on a coarse copy of each slice
(about ``coarse_size`` pixels wide, downsampled by block means): beam-hardening error (cupping in
the resin cylinder, dark streaks between dense particles) and the local noise variance (the FBP
noise variance at a pixel is the mean over angles of ``1 / transmission`` along the rays through
it: more noise in the centre and along dense directions). The high-frequency look is made in
image space at full resolution:

- blur: 3D Gaussian (``blur`` voxels) of the attenuation;
- noise: white noise shaped to the FBP noise power spectrum ``|k| W(k)^2 MTF(k)^2`` (ramp in the
  slice plane, cut at 0.5 cycles/voxel, apodised by the reconstruction filter ``W`` and the blur)
  and scaled by the square root of the coarse variance map;
- rings: random per-detector-pixel gain errors, ramp-filtered and back-projected for a point on
  the Y axis, giving a radial profile per slice; pixels with ``y > 0`` take the profile at ``+r``
  and the others at ``-r`` (half-rings of a 180 degree scan, as in ``simulate_ct``).

Not reproduced: the directional texture of noise around dense particles (the noise is isotropic
with a smoothly varying amplitude), starvation streaks, view aliasing, and the exact shape of the
streaks and cupping (computed at the coarse resolution, hence blurred by about the block size).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.fft
import scipy.ndimage as ndi
import scipy.special

from particleseg.synth._ct_kernels import (
    FILTERS,
    angles,
    as_rng,
    back_project,
    check_attenuation,
    default_n_angles,
    fbp,
    filter_sinogram,
    forward_project,
    n_detector,
    polychromatic_transmission,
)

__all__ = ["FastCTParams", "simulate_ct_fast"]

#: Reference level when the volume holds no material at all (typical resin, 1/voxel).
_FALLBACK_REFERENCE_MU = 0.005


@dataclass(frozen=True)
class FastCTParams:
    """Knobs of the image-space simulation (``simulate_ct_fast``).

    Attributes:
        noise_sigma: noise std, relative to the reference level ``reference_mu``, at the median
            noise level over the sample (the noise is higher in the centre and behind dense
            particles, lower near the rim and in air). 0 disables noise. The default matches
            ``CTParams()`` (about 5 noise std between 0.012 / voxel particles and 0.005 resin).
        cupping: beam-hardening curvature ``b``, as ``CTParams.beam_hardening``: the relative
            drop at the centre of a uniform cylinder is about ``(4 / pi) b p_centre`` with
            ``p_centre`` the line integral through its centre; also darkens the band between
            dense particles. Must be in [0, 1).
        ring_strength: relative std of the per-detector-pixel gain errors, as
            ``CTParams.ring_strength``.
        blur: Gaussian sigma, in voxels, of the image blur (detector plus reconstruction).
        filter: reconstruction filter whose apodisation shapes the noise spectrum and the rings:
            ``"ramp"``, ``"shepp-logan"`` or ``"hann"``.
        reference_mu: level the noise is relative to (1/voxel); None for the median attenuation
            of the sample (voxels above a tenth of the median of non-zero voxels), a fair estimate
            of the resin level when resin is the main phase.
        coarse_size: width, in pixels, of the coarse slices used for the beam-hardening error
            and the noise-variance map (>= 16).
    """

    noise_sigma: float = 0.25
    cupping: float = 0.05
    ring_strength: float = 0.003
    blur: float = 0.5
    filter: str = "shepp-logan"
    reference_mu: float | None = None
    coarse_size: int = 64

    def validate(self) -> None:
        """Raise ValueError naming the first out-of-range knob."""
        if not 0 <= self.noise_sigma < 100:
            raise ValueError(f"noise_sigma must be in [0, 100), got {self.noise_sigma}")
        if not 0 <= self.cupping < 1:
            raise ValueError(f"cupping must be in [0, 1), got {self.cupping}")
        if not 0 <= self.ring_strength < 0.5:
            raise ValueError(f"ring_strength must be in [0, 0.5), got {self.ring_strength}")
        if not 0 <= self.blur <= 10:
            raise ValueError(f"blur must be in [0, 10], got {self.blur}")
        if self.filter not in FILTERS:
            raise ValueError(f"filter must be one of {FILTERS}, got {self.filter!r}")
        if self.reference_mu is not None and not (0 < self.reference_mu < math.inf):
            raise ValueError(f"reference_mu must be None or positive, got {self.reference_mu}")
        if not isinstance(self.coarse_size, int | np.integer) or self.coarse_size < 16:
            raise ValueError(f"coarse_size must be an int >= 16, got {self.coarse_size!r}")


def _pads(n: int, factor: int) -> tuple[int, int]:
    """Zero padding (before, after) that makes ``n`` a multiple of ``factor``, centred."""
    total = -n % factor
    return total // 2, total - total // 2


def _downsample(mu: np.ndarray, factor: int) -> np.ndarray:
    """Block means of (Z, Y, X) over ``factor`` x ``factor`` in-plane: (Yc, Xc, Z) float32."""
    nz, ny, nx = mu.shape
    padded = np.pad(mu, ((0, 0), _pads(ny, factor), _pads(nx, factor)))
    yc, xc = padded.shape[1] // factor, padded.shape[2] // factor
    coarse = padded.reshape(nz, yc, factor, xc, factor).mean(axis=(2, 4), dtype=np.float32)
    return np.ascontiguousarray(coarse.transpose(1, 2, 0))


def _upsample_axis(a: np.ndarray, axis: int, n: int, factor: int) -> np.ndarray:
    """Linear interpolation of a block-mean grid back to ``n`` samples along ``axis``."""
    m = a.shape[axis]
    u = np.clip((np.arange(n) + _pads(n, factor)[0] + 0.5) / factor - 0.5, 0, m - 1)
    i0 = np.minimum(np.floor(u), max(m - 2, 0)).astype(np.intp)
    shape = [1] * a.ndim
    shape[axis] = n
    w = (u - i0).astype(np.float32).reshape(shape)
    lo = np.take(a, i0, axis=axis)
    hi = np.take(a, np.minimum(i0 + 1, m - 1), axis=axis)
    return lo + w * (hi - lo)


def _upsample(coarse: np.ndarray, ny: int, nx: int, factor: int) -> np.ndarray:
    """(Yc, Xc, Z) coarse field to (Z, Y, X) float32 at full resolution."""
    a = np.ascontiguousarray(coarse.transpose(2, 0, 1))
    if factor == 1:
        return a
    return _upsample_axis(_upsample_axis(a, 1, ny, factor), 2, nx, factor)


def _coarse_physics(
    mu: np.ndarray, cupping: float, coarse_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Beam-hardening error and relative noise variance, both (Z, Y, X) float32.

    The variance is the mean over angles of ``1 / transmission`` (1 where rays cross only air).
    """
    nz, ny, nx = mu.shape
    factor = max(1, math.ceil(max(ny, nx) / coarse_size))
    coarse = _downsample(mu, factor)
    yc, xc = coarse.shape[:2]
    thetas = angles(max(32, math.ceil(1.5 * max(yc, xc))))
    p = forward_project(coarse, thetas, n_detector(yc, xc))
    p *= np.float32(factor)  # coarse voxels are ``factor`` fine voxels long
    p_meas = -np.log(polychromatic_transmission(p, cupping))
    variance = back_project(np.exp(p_meas), thetas, yc, xc, 1.0 / len(thetas))
    if cupping > 0:
        error = fbp(p_meas - p, thetas, yc, xc, "ramp") / np.float32(factor)
        error = _upsample(error, ny, nx, factor)
    else:
        error = np.zeros(mu.shape, np.float32)
    return error, _upsample(variance, ny, nx, factor)


def _ring_image(shape: tuple[int, int, int], params: FastCTParams, rng) -> np.ndarray:
    """(Z, Y, X) float32 half-rings from random detector gains, one radial profile per slice."""
    nz, ny, nx = shape
    n_det = n_detector(ny, nx)
    gains = 1.0 + params.ring_strength * rng.standard_normal((n_det, nz), dtype=np.float32)
    q = -np.log(np.clip(gains, 0.5, 2.0))
    qf = filter_sinogram(q[None], params.filter)[0]  # (D, Z)
    # back-projection, over all angles, of the constant sinogram to points (0, s) on the Y axis
    thetas = angles(default_n_angles(max(ny, nx)))
    r_max = (n_det - 1) // 2 - 1  # > half the slice diagonal, see n_detector
    step = 0.25  # fine radial sampling: the profile is interpolated again onto the pixels
    s = np.arange(-r_max, r_max + step / 2, step, dtype=np.float64)
    t = s[:, None] * np.sin(thetas)[None, :] + 0.5 * (n_det - 1)
    k = np.floor(t).astype(np.intp)
    w = t - k
    weights = np.zeros((s.size, n_det))
    rows = np.broadcast_to(np.arange(s.size)[:, None], k.shape)
    np.add.at(weights, (rows, k), (1.0 - w) * np.pi / len(thetas))
    np.add.at(weights, (rows, k + 1), w * np.pi / len(thetas))
    profile = (weights.astype(np.float32) @ qf).T  # (Z, n_s)
    y = np.arange(ny)[:, None] - 0.5 * (ny - 1)
    x = np.arange(nx)[None, :] - 0.5 * (nx - 1)
    r = np.hypot(y, x)
    sign = np.where((y > 0) | ((y == 0) & (x > 0)), 1.0, -1.0)
    # near the X axis the tangent angle sits at an end of [0, pi): its stationary-phase window
    # (about sqrt(2 / r) wide) is shared between the profiles at +r and -r
    psi = np.arctan2(np.abs(y), x)  # in [0, pi]
    edge = np.minimum(psi, np.pi - psi)
    main = (0.5 * (1.0 + scipy.special.erf(edge * np.sqrt(r / 2.0)))).ravel().astype(np.float32)
    rings = np.zeros((nz, ny * nx), np.float32)
    for signed, weight in ((r * sign, main), (-r * sign, 1.0 - main)):
        u = ((signed + r_max) / step).ravel()
        i0 = np.floor(u).astype(np.intp)
        f = (u - i0).astype(np.float32)
        rings += (profile[:, i0] * (1.0 - f) + profile[:, i0 + 1] * f) * weight
    return rings.reshape(nz, ny, nx)


def _shaped_noise(shape: tuple[int, int, int], params: FastCTParams, rng) -> np.ndarray:
    """(Z, Y, X) float32 unit-std noise with the FBP noise power spectrum."""
    white = rng.standard_normal(shape, dtype=np.float32)
    spec = scipy.fft.rfftn(white, workers=-1)
    fz = np.fft.fftfreq(shape[0]).astype(np.float32)[:, None, None]
    fy = np.fft.fftfreq(shape[1]).astype(np.float32)[None, :, None]
    fx = np.fft.rfftfreq(shape[2]).astype(np.float32)[None, None, :]
    k = np.sqrt(fy**2 + fx**2)
    if params.filter == "shepp-logan":
        window = np.sinc(k)
    elif params.filter == "hann":
        window = 0.5 * (1.0 + np.cos(2.0 * np.pi * k))
    else:
        window = np.ones_like(k)
    amplitude = np.sqrt(k) * window * (k <= 0.5)
    b = params.blur
    amplitude = amplitude * np.exp(-2.0 * (np.pi * b) ** 2 * k**2)  # sqrt of MTF^2 in-plane
    spec *= amplitude.astype(np.float32)
    spec *= np.exp(-2.0 * (np.pi * b) ** 2 * fz**2).astype(np.float32)
    noise = scipy.fft.irfftn(spec, s=shape, workers=-1).astype(np.float32, copy=False)
    std = float(noise.std())
    return noise / np.float32(std) if std > 0 else noise


def _reference(mu: np.ndarray) -> tuple[float, np.ndarray | None]:
    """Median attenuation of the sample, on every other voxel, and that subsampled sample mask.

    The sample is the voxels above a tenth of the median of the non-zero ones; None when the
    volume holds no material.
    """
    sub = mu[::2, ::2, ::2]
    positive = sub[sub > 0]
    if positive.size == 0:
        return _FALLBACK_REFERENCE_MU, None
    mask = sub > 0.1 * float(np.median(positive))
    return float(np.median(sub[mask])), mask


def simulate_ct_fast(
    mu: np.ndarray,
    params: FastCTParams = FastCTParams(),  # noqa: B008 - frozen dataclass, immutable default
    rng: np.random.Generator | int | None = None,
) -> np.ndarray:
    """Image-space approximation of ``simulate_ct``: blur, cupping, streaks, rings, FBP noise.

    Args:
        mu: (Z, Y, X) float attenuation in 1/voxel, >= 0, finite (see ``simulate_ct``).
        params: knobs (see ``FastCTParams``).
        rng: numpy Generator or int seed; the same seed gives the same result.

    Returns:
        (Z, Y, X) float32 attenuation-like image in 1/voxel.

    Raises:
        ValueError: bad ``mu`` (not 3D, not float, not finite, negative, slices under 8 x 8) or
            an out-of-range knob.
    """
    mu = check_attenuation(mu)
    params.validate()
    rng = as_rng(rng)
    nz, ny, nx = mu.shape
    if params.blur > 0:
        out = ndi.gaussian_filter(mu, params.blur, mode="nearest", truncate=3.0)
    else:
        out = mu.copy()
    error, variance = _coarse_physics(mu, params.cupping, params.coarse_size)
    out += error
    del error
    if params.ring_strength > 0:
        out += _ring_image(mu.shape, params, rng)
    if params.noise_sigma > 0:
        ref, mask = _reference(mu)
        if params.reference_mu is not None:
            ref = params.reference_mu
        var_ref = 1.0 if mask is None else float(np.median(variance[::2, ::2, ::2][mask]))
        scale = np.sqrt(variance / np.float32(var_ref))
        scale *= np.float32(params.noise_sigma * ref)
        out += _shaped_noise(mu.shape, params, rng) * scale
    return out

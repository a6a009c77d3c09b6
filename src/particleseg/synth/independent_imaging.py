"""Scanner model for the independent OOD split, written apart from the training CT simulator.

Nothing here comes from :mod:`particleseg.synth.ct`, ``ct_fast`` or ``_ct_kernels``. A scan of an
attenuation volume (:func:`scan`) is, slice by slice along Z:

1. :func:`box_blur`: the voxel footprint, a centred box of fractional width per axis;
2. :func:`sinograms`: scikit-image's ``radon`` (rotation-based parallel projection) of every
   Z slice, over fewer angles than the training simulator uses;
3. :func:`beam_hardening`: the rational law ``p / (1 + beta p)`` on the line integrals;
4. :func:`detector`: transmitted counts, a scatter background spread from the rays that
   scatter (:func:`scatter_background`: an exponential kernel along the detector), a 2D
   Lorentzian (Cauchy) point-spread function over detector rows and columns, a few
   miscalibrated detector pixels, and mixed Poisson-Gaussian noise in its Gaussian form
   (signal-dependent quantum noise correlated between neighbouring columns by cross-talk,
   plus electronic read noise), then the log;
5. :func:`reconstruct`: scikit-image's ``iradon`` with a ``cosine`` or ``hamming`` filter;
6. :func:`quantize`: uint16 with a random gain and offset.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy import ndimage as ndi

FILTERS = ("cosine", "hamming")
"""Reconstruction filters of this split (the training simulator uses ramp, shepp-logan, hann)."""
INTERPOLATIONS = ("linear", "cubic")


def box_kernel(width: float) -> np.ndarray:
    """A centred 1D box of fractional width, sampled on the voxel grid.

    Args:
        width: box width in voxels (>= 1; 1 is the identity).

    Returns:
        (2k + 1,) float64 weights summing to 1.
    """
    half = max(float(width), 1.0) / 2.0
    k = int(np.ceil(half - 0.5))
    taps = np.arange(-k, k + 1, dtype=np.float64)
    weights = np.clip(np.minimum(taps + 0.5, half) - np.maximum(taps - 0.5, -half), 0.0, None)
    return weights / weights.sum()


def box_blur(volume: np.ndarray, width: float) -> np.ndarray:
    """Separable box blur (:func:`box_kernel`) along every axis.

    Args:
        volume: (Z, Y, X) float array.
        width: box width in voxels.

    Returns:
        (Z, Y, X) float32.
    """
    out = np.asarray(volume, np.float32)
    kernel = box_kernel(width)
    if len(kernel) == 1:
        return out.copy()
    for axis in range(out.ndim):
        out = ndi.convolve1d(out, kernel, axis=axis, mode="nearest")
    return out


def lorentzian_kernel(gamma_px: float, radius_px: int | None = None) -> np.ndarray:
    """2D isotropic Lorentzian (Cauchy) point-spread function, ``(1 + (r / gamma)^2)^-1.5``.

    Args:
        gamma_px: half width at which the profile falls to 0.35 of its peak, in pixels (> 0).
        radius_px: truncation radius; default ``ceil(8 gamma)``, at least 1.

    Returns:
        (2R + 1, 2R + 1) float64 weights summing to 1.
    """
    radius = radius_px if radius_px is not None else max(1, int(np.ceil(8.0 * gamma_px)))
    r = np.arange(-radius, radius + 1, dtype=np.float64)
    rr = r[:, None] ** 2 + r[None, :] ** 2
    kernel = (1.0 + rr / gamma_px**2) ** -1.5
    return kernel / kernel.sum()


def projection_angles(width: int, angles_per_width: float) -> np.ndarray:
    """Projection angles in degrees over [0, 180).

    Args:
        width: slice width in voxels.
        angles_per_width: number of angles per voxel of width.

    Returns:
        (n,) float64 angles, n = max(16, round(angles_per_width * width)).
    """
    n = max(16, round(angles_per_width * width))
    return np.arange(n) * (180.0 / n)


def sinograms(mu: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """Parallel-beam line integrals of every Z slice (scikit-image ``radon``).

    Args:
        mu: (Z, N, N) float attenuation, 1/voxel; must be 0 outside the inscribed circle.
        theta: (A,) angles in degrees.

    Returns:
        (Z, N, A) float32 line integrals (detector column, angle).
    """
    from skimage.transform import radon

    return np.stack([radon(s, theta, circle=True) for s in np.asarray(mu, np.float64)]).astype(
        np.float32
    )


def beam_hardening(p: np.ndarray, beta: float) -> np.ndarray:
    """Rational beam-hardening law: effective line integral ``p / (1 + beta p)``.

    Args:
        p: float array of monochromatic line integrals (>= 0).
        beta: strength (0 = none).

    Returns:
        float32 array of the same shape.
    """
    p = np.asarray(p, np.float32)
    return (p / (1.0 + np.float32(beta) * np.maximum(p, 0.0))).astype(np.float32)


def scatter_background(source: np.ndarray, length_px: float) -> np.ndarray:
    """Scatter reaching the detector: the scatter source spread by a wide exponential kernel.

    Args:
        source: (Z, D, A) float scatter source per detector pixel (the detector takes the
            transmitted counts times the line integral: rays that cross more matter scatter more).
        length_px: decay length of the kernel along the detector columns, in pixels.

    Returns:
        (Z, D, A) float64 scatter counts (the kernel sums to 1 along D).
    """
    d = source.shape[1]
    x = np.arange(-d + 1, d, dtype=np.float64)
    kernel = np.exp(-np.abs(x) / max(length_px, 1e-6))
    return ndi.convolve1d(
        np.asarray(source, np.float64), kernel / kernel.sum(), axis=1, mode="nearest"
    )


def detector(p: np.ndarray, params: Mapping, rng: np.random.Generator) -> np.ndarray:
    """Measured line integrals: counts, scatter, Lorentzian PSF, bad pixels, noise, log.

    Args:
        p: (Z, D, A) float line integrals (detector row, column, angle).
        params: ``photons`` (unattenuated counts per pixel), ``scatter`` (scatter counts per
            count times line integral, see :func:`scatter_background`), ``psf_gamma_px`` (Lorentzian
            width; 0 = none), ``bad_pixels`` (number of miscalibrated pixels, each a run of
            detector rows of one column), ``bad_pixel_gain`` (their relative gain error),
            ``crosstalk`` (weight of each neighbouring column in the quantum noise),
            ``read_noise`` (electronic noise, counts).
        rng: random generator.

    Returns:
        (Z, D, A) float32 measured line integrals ``-log(counts / photons)``.
    """
    from scipy.signal import fftconvolve

    photons = float(params["photons"])
    counts = photons * np.exp(-np.asarray(p, np.float64))
    counts += float(params["scatter"]) * scatter_background(counts * p, counts.shape[1] / 4.0)
    gamma = float(params["psf_gamma_px"])
    if gamma > 0:
        kernel = lorentzian_kernel(gamma)
        r = kernel.shape[0] // 2
        padded = np.pad(counts, ((r, r), (r, r), (0, 0)), mode="edge")
        counts = fftconvolve(padded, kernel[:, :, None], mode="valid", axes=(0, 1))
    nz, nd, _ = counts.shape
    for _ in range(int(params["bad_pixels"])):
        column, z0 = int(rng.integers(nd)), int(rng.integers(nz))
        rows = slice(z0, z0 + int(rng.integers(1, max(2, nz // 4))))
        sign = 1.0 if rng.random() < 0.5 else -1.0
        counts[rows, column, :] *= 1.0 + sign * float(params["bad_pixel_gain"])
    w = float(params["crosstalk"])
    white = rng.standard_normal(counts.shape)
    quantum = ndi.convolve1d(white, np.array([w, 1.0, w]), axis=1, mode="wrap")
    quantum /= np.sqrt(1.0 + 2.0 * w * w)
    noisy = counts + np.sqrt(np.maximum(counts, 0.0)) * quantum
    noisy += float(params["read_noise"]) * rng.standard_normal(counts.shape)
    return (-np.log(np.maximum(noisy, 0.5) / photons)).astype(np.float32)


def reconstruct(sino: np.ndarray, theta: np.ndarray, filter_name: str, interpolation: str):
    """Filtered back-projection of every slice (scikit-image ``iradon``).

    Args:
        sino: (Z, N, A) float measured line integrals.
        theta: (A,) angles in degrees.
        filter_name: one of :data:`FILTERS`.
        interpolation: one of :data:`INTERPOLATIONS`.

    Returns:
        (Z, N, N) float32 attenuation, 0 outside the inscribed circle.

    Raises:
        ValueError: If the filter or the interpolation is not one of this split's.
    """
    from skimage.transform import iradon

    if filter_name not in FILTERS:
        raise ValueError(f"filter must be one of {FILTERS}, got {filter_name!r}")
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, got {interpolation!r}")
    n = sino.shape[1]
    slices = [
        iradon(
            np.asarray(s, np.float64),
            theta,
            output_size=n,
            filter_name=filter_name,
            interpolation=interpolation,
            circle=True,
        )
        for s in sino
    ]
    return np.stack(slices).astype(np.float32)


def quantize(recon: np.ndarray, level: float, offset: float) -> np.ndarray:
    """Map a reconstruction to uint16: ``offset + gain * recon``, clipped and rounded.

    Args:
        recon: (Z, Y, X) float reconstruction.
        level: grey value that the 99.9th percentile of ``recon`` maps to (sets the gain).
        offset: grey value of attenuation 0.

    Returns:
        (Z, Y, X) uint16.
    """
    top = float(np.percentile(recon, 99.9))
    gain = (float(level) - float(offset)) / max(top, 1e-12)
    return np.clip(np.rint(offset + gain * np.asarray(recon, np.float64)), 0, 65535).astype(
        np.uint16
    )


def scan(mu: np.ndarray, params: Mapping, rng: np.random.Generator) -> np.ndarray:
    """Scan an attenuation volume: blur, project, harden, detect, reconstruct, quantize.

    Args:
        mu: (Z, N, N) float attenuation, 1/voxel, 0 outside the inscribed circle of a slice.
        params: ``voxel_box_px``, ``angles_per_width``, ``beam_hardening``, ``filter``,
            ``interpolation``, ``gain_level``, ``offset`` and the keys of :func:`detector`
            (see ``conf/synth/ood_independent.yaml``).
        rng: random generator.

    Returns:
        (Z, N, N) uint16 reconstructed scan.

    Raises:
        ValueError: If a slice is not square.
    """
    mu = np.asarray(mu, np.float32)
    if mu.ndim != 3 or mu.shape[1] != mu.shape[2]:
        raise ValueError(f"mu must be (Z, N, N) with square slices, got shape {mu.shape}")
    theta = projection_angles(mu.shape[2], float(params["angles_per_width"]))
    blurred = box_blur(mu, float(params["voxel_box_px"]))
    yy, xx = np.ogrid[: mu.shape[1], : mu.shape[2]]
    c = mu.shape[1] // 2  # scikit-image's reconstruction circle
    blurred[:, (yy - c) ** 2 + (xx - c) ** 2 > c**2] = 0.0
    p = beam_hardening(sinograms(blurred, theta), float(params["beam_hardening"]))
    measured = detector(p, params, rng)
    recon = reconstruct(measured, theta, str(params["filter"]), str(params["interpolation"]))
    return quantize(recon, float(params["gain_level"]), float(params["offset"]))

"""Simulated lab micro-CT acquisition of an attenuation volume, slice by slice.

``simulate_ct`` runs the whole chain for every axial (Z) slice, in parallel-beam geometry over
[0, pi): line integrals (Joseph's ray-driven projector), a polychromatic spectrum (beam hardening),
scatter, Poisson photon noise, detector blur, per-pixel gain errors (rings), photon starvation
(counts clamped to >= 1 before the log), -log and filtered back-projection. ``simulate_ct_fast``
(re-exported from ``particleseg.synth.ct_fast``) is the cheap image-space look-alike for bulk data,
and ``to_uint16`` maps either result to scanner-like 16-bit grey values.

What is modelled and what is not:

- modelled: finite number of projections (view aliasing), interpolation blur of projector and
  back-projector, scintillator/detector blur (2D, across detector columns and rows, so it also
  blurs along Z), quantum noise with its FBP texture (ramp-shaped noise power, more noise along
  strongly attenuating directions), starvation streaks, beam-hardening cupping and dark streaks
  between dense particles, a uniform scatter background, half-rings from detector gain errors
  (180 degree scan), the apodisation of the reconstruction filter;
- not modelled: cone-beam geometry (and its artefacts far from the central slice), focal-spot
  blur, material-dependent spectra (all materials share one energy dependence, so beam hardening
  is a function of the line integral only), phase contrast (edge overshoot), detector lag,
  motion, centre-of-rotation errors, electronic noise, ring-removal or other vendor corrections.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.ndimage as ndi

from particleseg.synth._ct_kernels import (
    FILTERS,
    angles,
    as_rng,
    check_attenuation,
    default_n_angles,
    fbp,
    forward_project,
    n_detector,
    polychromatic_transmission,
)
from particleseg.synth.ct_fast import FastCTParams, simulate_ct_fast

__all__ = [
    "CTParams",
    "FastCTParams",
    "polychromatic_transmission",
    "simulate_ct",
    "simulate_ct_fast",
    "to_uint16",
]

#: Below this many expected counts, noise is drawn from the exact Poisson law (else Gaussian).
_POISSON_EXACT_BELOW = 30.0


@dataclass(frozen=True)
class CTParams:
    """Knobs of the full acquisition simulation (``simulate_ct``).

    Beam hardening uses an explicit two-bin spectrum rather than a fitted polynomial: a fraction
    ``w = 0.3`` of the photons is "soft" and sees ``s_soft * mu``, the rest "hard" and
    sees ``s_hard * mu``, with the mean of ``s`` equal to 1 so that thin objects are reconstructed
    at ``mu``. The measured line integral is ``-log(w exp(-s_soft p) + (1 - w) exp(-s_hard p))``,
    which is ``p - b p^2 + O(p^3)`` for a spread chosen so that ``var(s) = 2 b``. Unlike
    ``p - b p^2 / (1 + c p)`` it follows from a spectrum, needs no second constant, is concave and
    increasing for every ``p`` (slope tends to ``s_hard``: dense rays are under-estimated but never
    inverted), and gives cupping in a uniform cylinder (relative centre drop about
    ``(4 / pi) b p_centre``) and dark streaks along rays through two dense particles.

    Attributes:
        n_angles: projections over [0, pi); None for ``max(90, ceil(1.5 * max(Y, X)))``.
        photons: unattenuated photons per detector pixel and projection (I0); None for a
            noiseless acquisition. Noise std scales as ``1 / sqrt(photons)``; the default puts a
            particle of 0.012 / voxel about 5 noise std above resin of 0.005 (grids 64-256),
            i.e. a fast, noisy lab scan; 2e3-2e4 gives clean data.
        beam_hardening: curvature ``b`` of the measured line integral, ``p - b p^2`` for small
            ``p`` (0 = monochromatic); 0.05 gives the soft bin 1.48 x and the hard bin 0.79 x the
            effective attenuation. Must be in [0, 1).
        detector_blur: Gaussian sigma of the detector (scintillator) blur, in detector pixels,
            applied along detector columns and rows to the counts.
        ring_strength: relative std of the per-detector-pixel gain error left after flat-field
            correction, constant over angles (gives rings).
        scatter: scatter-to-primary ratio: a background, uniform along each detector row, equal
            to this fraction of the mean primary transmission in the sample's shadow (0 = none;
            0.05-0.2 adds cupping and streaks, as in cone-beam scanners without a grid).
        filter: reconstruction filter, ``"ramp"``, ``"shepp-logan"`` or ``"hann"``.
    """

    n_angles: int | None = None
    photons: float | None = 500.0
    beam_hardening: float = 0.05
    detector_blur: float = 0.5
    ring_strength: float = 0.003
    scatter: float = 0.0
    filter: str = "shepp-logan"

    def validate(self) -> None:
        """Raise ValueError naming the first out-of-range knob."""
        if self.n_angles is not None and (
            not isinstance(self.n_angles, int | np.integer) or self.n_angles < 8
        ):
            raise ValueError(f"n_angles must be None or an int >= 8, got {self.n_angles!r}")
        if self.photons is not None and not (0 < self.photons < math.inf):
            raise ValueError(f"photons must be None or positive and finite, got {self.photons}")
        if not 0 <= self.beam_hardening < 1:
            raise ValueError(f"beam_hardening must be in [0, 1), got {self.beam_hardening}")
        if not 0 <= self.detector_blur <= 10:
            raise ValueError(f"detector_blur must be in [0, 10], got {self.detector_blur}")
        if not 0 <= self.ring_strength < 0.5:
            raise ValueError(f"ring_strength must be in [0, 0.5), got {self.ring_strength}")
        if not 0 <= self.scatter < 1:
            raise ValueError(f"scatter must be in [0, 1), got {self.scatter}")
        if self.filter not in FILTERS:
            raise ValueError(f"filter must be one of {FILTERS}, got {self.filter!r}")


def _scatter(trans: np.ndarray, ratio: float) -> np.ndarray:
    """Uniform scatter background (A, 1, Z): ``ratio`` x mean primary behind the sample."""
    shadow = trans < np.float32(0.999)
    primary = np.where(shadow, trans, 0).sum(axis=1, keepdims=True)
    return (ratio * primary / np.maximum(shadow.sum(axis=1, keepdims=True), 1)).astype(np.float32)


def _detect(trans: np.ndarray, params: CTParams, rng: np.random.Generator) -> np.ndarray:
    """Measured line integrals from transmissions (A, D, Z): noise, blur, gains, clamp, -log."""
    gains = None
    if params.ring_strength > 0:
        gains = 1.0 + params.ring_strength * rng.standard_normal(trans.shape[1:], dtype=np.float32)
        np.clip(gains, 0.5, 2.0, out=gains)
    if params.photons is None:
        signal = trans
        floor = np.float32(1e-12)
    else:
        lam = trans * np.float32(params.photons)
        signal = lam + np.sqrt(lam) * rng.standard_normal(lam.shape, dtype=np.float32)
        starved = lam < _POISSON_EXACT_BELOW
        if starved.any():
            signal[starved] = rng.poisson(lam[starved]).astype(np.float32)
        floor = np.float32(1.0)
    if params.detector_blur > 0:
        s = params.detector_blur
        signal = ndi.gaussian_filter(signal, (0, s, s), mode="nearest", truncate=3.0)
    if gains is not None:
        signal *= gains[None]
    np.maximum(signal, floor, out=signal)
    ref = 1.0 if params.photons is None else params.photons
    return np.float32(math.log(ref)) - np.log(signal)


def simulate_ct(
    mu: np.ndarray,
    params: CTParams = CTParams(),  # noqa: B008 - frozen dataclass, immutable default
    rng: np.random.Generator | int | None = None,
) -> np.ndarray:
    """Simulate a parallel-beam micro-CT scan of each Z slice and reconstruct it by FBP.

    Args:
        mu: (Z, Y, X) float attenuation in 1/voxel at the final grid, >= 0, finite (air 0,
            resin ~0.005, minerals 0.01-0.03, metals up to ~0.1).
        params: acquisition knobs (see ``CTParams``).
        rng: numpy Generator or int seed; the same seed gives the same result.

    Returns:
        (Z, Y, X) float32 reconstructed attenuation in 1/voxel: a noiseless monochromatic scan of
        a uniform disc gives back its ``mu`` inside (within about 1 %).

    Raises:
        ValueError: bad ``mu`` (not 3D, not float, not finite, negative, slices under 8 x 8) or
            an out-of-range knob.
    """
    mu = check_attenuation(mu)
    params.validate()
    rng = as_rng(rng)
    nz, ny, nx = mu.shape
    thetas = angles(params.n_angles or default_n_angles(max(ny, nx)))
    vol = np.ascontiguousarray(mu.transpose(1, 2, 0))
    p = forward_project(vol, thetas, n_detector(ny, nx))  # (A, D, Z)
    del vol
    trans = polychromatic_transmission(p, params.beam_hardening)
    del p
    if params.scatter > 0:
        trans += _scatter(trans, params.scatter)
    measured = _detect(trans, params, rng)
    del trans
    recon = fbp(measured, thetas, ny, nx, params.filter)
    return np.ascontiguousarray(recon.transpose(2, 0, 1))


def to_uint16(
    image: np.ndarray,
    rng: np.random.Generator | int | None = None,
    offset_range: tuple[float, float] = (1000.0, 12000.0),
    gain_range: tuple[float, float] = (0.8e6, 1.6e6),
) -> np.ndarray:
    """Map reconstructed attenuation to 16-bit grey values with a random offset and gain.

    ``grey = offset + gain * image``, rounded and clipped to [0, 65535] (no wrap-around), with
    ``offset`` and ``gain`` drawn uniformly from their ranges. With the defaults, resin
    (0.004-0.006 / voxel) lands between about 4,000 and 22,000, minerals of 0.03 / voxel between
    25,000 and 60,000, and metal-like phases saturate, as in scanner exports.

    Args:
        image: float array (any shape), attenuation in 1/voxel; finite.
        rng: numpy Generator or int seed.
        offset_range: (low, high) grey value of zero attenuation (air).
        gain_range: (low, high) grey values per unit of attenuation (1/voxel), > 0.

    Returns:
        uint16 array of the same shape.

    Raises:
        ValueError: non-float or non-finite image, or a malformed range.
    """
    image = np.asarray(image)
    if not np.issubdtype(image.dtype, np.floating):
        raise ValueError(f"image must be float, got dtype {image.dtype} (shape {image.shape})")
    if not np.isfinite(image).all():
        raise ValueError(f"image of shape {image.shape} contains NaN or inf")
    for name, (lo, hi) in (("offset_range", offset_range), ("gain_range", gain_range)):
        if not lo <= hi:
            raise ValueError(f"{name} must be (low, high) with low <= high, got {(lo, hi)}")
    if gain_range[0] <= 0:
        raise ValueError(f"gain_range must be positive, got {gain_range}")
    rng = as_rng(rng)
    offset = rng.uniform(*offset_range)
    gain = rng.uniform(*gain_range)
    grey = np.float32(offset) + np.float32(gain) * image.astype(np.float32, copy=False)
    return np.clip(np.rint(grey), 0, 65535).astype(np.uint16)

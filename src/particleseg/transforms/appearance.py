"""Appearance randomization: re-render a training patch from its phase map with random contrast.

The SynthSeg idea (Billot et al., 2023): a network trained on labels rendered with random
appearance learns shape and boundaries, not grey values. A patch's phase map (codes in
:mod:`particleseg.synth.phases`: air, matrix, voids, pores, mineral phases) is turned into a new
image each time, with every value drawn at random:

1. a level per phase, in units of the noise sigma: the matrix brighter or darker than the air,
   each mineral phase above (or, with ``particle_darker_p``, below) the matrix by a contrast
   from barely visible (1-2 sigma) to metal-like, phases of one scan spread around a common
   contrast; voids and pores near the air level;
2. a smooth random bias (cupping) field, multiplicative;
3. a Gaussian blur (partial volume, detector blur);
4. correlated noise: a random mix of white and Gaussian-filtered noise, FBP-like grain;
5. rings around a random axis and straight streaks, each with a random strength.

The result is normalized as predict normalizes a scan (:mod:`particleseg.transforms.normalization`):
the scheme's statistics come from the phases of the voxels that the normalization sampled on the
whole sample (``phase_sample``), rendered with the same levels and noise, so a patch of pure matrix
is not stretched to full contrast. The labels are never touched.

- :class:`AppearanceRanges`: the configured ranges;
- :func:`render_appearance`: the pure function, numpy in, numpy out;
- :class:`RandAppearanced`: the MONAI dict transform of the training pipeline.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.ndimage as ndi
from monai.transforms import MapTransform, RandomizableTransform

from particleseg.io.phase_codes import AIR, MATERIAL0, MATRIX, PORE, VOID
from particleseg.transforms.normalization import fit_normalization, resolve_config


def _pair(name: str, value: Sequence[float], low: float = 0.0) -> tuple[float, float]:
    try:
        a, b = (float(v) for v in value)
    except (TypeError, ValueError):
        a = b = np.nan
    if not (np.isfinite(a) and np.isfinite(b) and low <= a <= b):
        raise ValueError(
            f"appearance {name} must be (low, high) with {low} <= low <= high: {value}"
        )
    return a, b


@dataclass(frozen=True)
class AppearanceRanges:
    """Ranges of the random appearance; levels are in units of the noise sigma.

    Attributes:
        matrix_contrast: |matrix - air| (log-uniform).
        matrix_darker_p: probability that the matrix is darker than the air.
        particle_contrast: the scan's common |mineral - matrix| contrast (log-uniform).
        material_spread: factor between a phase's contrast and the scan's (log-uniform, >= 1
            both ways: ``(1/s, s)`` with ``s`` drawn from this range).
        particle_darker_p: probability that a scan's minerals are darker than its matrix.
        bias: amplitude of the multiplicative bias field (uniform).
        blur_sigma: Gaussian blur sigma in voxels (uniform).
        noise_correlation: sigma of the filter of the correlated part of the noise (uniform).
        noise_white_share: share of white noise in the noise (uniform).
        ring_strength: ring amplitude (uniform; 0 = none).
        streak_strength: streak amplitude (uniform; 0 = none).
    """

    matrix_contrast: tuple[float, float] = (1.0, 40.0)
    matrix_darker_p: float = 0.2
    particle_contrast: tuple[float, float] = (1.0, 200.0)
    material_spread: tuple[float, float] = (1.0, 2.0)
    particle_darker_p: float = 0.0
    bias: tuple[float, float] = (0.0, 0.3)
    blur_sigma: tuple[float, float] = (0.0, 1.5)
    noise_correlation: tuple[float, float] = (0.5, 1.5)
    noise_white_share: tuple[float, float] = (0.2, 1.0)
    ring_strength: tuple[float, float] = (0.0, 1.0)
    streak_strength: tuple[float, float] = (0.0, 1.0)

    def __post_init__(self) -> None:
        for name in (
            "matrix_contrast",
            "particle_contrast",
            "material_spread",
            "bias",
            "blur_sigma",
            "noise_correlation",
            "noise_white_share",
            "ring_strength",
            "streak_strength",
        ):
            low = 1.0 if name == "material_spread" else 0.0
            object.__setattr__(self, name, _pair(name, getattr(self, name), low))
        for name in ("matrix_contrast", "particle_contrast"):
            if getattr(self, name)[0] <= 0:
                raise ValueError(f"appearance {name} must be > 0, got {getattr(self, name)}")
        for name in ("matrix_darker_p", "particle_darker_p"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"appearance {name} must be in [0, 1], got {getattr(self, name)}")
        if self.noise_white_share[1] > 1:
            raise ValueError(
                f"appearance noise_white_share must be within [0, 1]: {self.noise_white_share}"
            )


def _loguniform(rng: np.random.Generator, pair: tuple[float, float], size=None):
    return np.exp(rng.uniform(np.log(pair[0]), np.log(pair[1]), size))


def draw_levels(ranges: AppearanceRanges, rng: np.random.Generator) -> np.ndarray:
    """A level for each of the 256 phase codes, in noise sigmas (air at 0).

    Returns:
        (256,) float64 levels.
    """
    levels = np.zeros(256)
    matrix = float(_loguniform(rng, ranges.matrix_contrast))
    if rng.random() < ranges.matrix_darker_p:
        matrix = -matrix
    levels[AIR], levels[MATRIX] = 0.0, matrix
    # voids and pores hold air; partial volume in small ones leaves them a bit towards the matrix
    levels[VOID] = matrix * rng.uniform(0.0, 0.3)
    levels[PORE] = matrix * rng.uniform(0.0, 0.5)
    n = 256 - MATERIAL0
    common = float(_loguniform(rng, ranges.particle_contrast))
    spread = float(rng.uniform(*ranges.material_spread))
    contrast = common * np.exp(rng.uniform(-np.log(spread), np.log(spread), n))
    if rng.random() < 0.7:  # keep the physical order of the phases (codes rank attenuation)
        contrast = np.sort(contrast)
    sign = -1.0 if rng.random() < ranges.particle_darker_p else 1.0
    levels[MATERIAL0:] = matrix + sign * contrast
    return levels


def _smooth_field(shape: tuple[int, ...], rng: np.random.Generator, cells: int = 3) -> np.ndarray:
    """A smooth random field in [-1, 1] (a coarse random grid, cubically upsampled)."""
    coarse = rng.uniform(-1, 1, (cells,) * len(shape))
    zoom = [s / cells for s in shape]
    field = ndi.zoom(coarse, zoom, order=3, mode="nearest", grid_mode=True)
    field = field[tuple(slice(0, s) for s in shape)]
    return np.clip(field, -1, 1).astype(np.float32)


def _noise(shape: tuple[int, ...], white: float, sigma: float, rng: np.random.Generator):
    """Unit-variance noise: ``sqrt(white)`` white plus ``sqrt(1 - white)`` correlated."""
    out = rng.standard_normal(shape, dtype=np.float32)
    if white < 1 and sigma > 0:
        corr = ndi.gaussian_filter(rng.standard_normal(shape, dtype=np.float32), sigma)
        corr /= max(float(corr.std()), 1e-6)
        out = np.sqrt(white) * out + np.sqrt(1 - white) * corr
    return out.astype(np.float32, copy=False)


def _rings_and_streaks(
    shape: tuple[int, int, int], rings: float, streaks: float, rng: np.random.Generator
) -> np.ndarray:
    """Rings around a random Z axis and straight Y-X streaks, constant along Z."""
    _, ny, nx = shape
    yy, xx = np.mgrid[:ny, :nx].astype(np.float32)
    out = np.zeros((ny, nx), np.float32)
    if rings > 0:
        cy, cx = rng.uniform(-0.5, 1.5, 2) * (ny, nx)
        r = np.hypot(yy - cy, xx - cx)
        profile = rng.standard_normal(int(r.max()) + 2) * (rng.random(int(r.max()) + 2) < 0.1)
        out += rings * np.interp(r, np.arange(len(profile)), profile).astype(np.float32)
    if streaks > 0:
        for _ in range(int(rng.integers(1, 4))):
            angle = rng.uniform(0, np.pi)
            py, px = rng.uniform(0, 1, 2) * (ny, nx)
            d = (yy - py) * np.cos(angle) - (xx - px) * np.sin(angle)
            width = rng.uniform(0.5, 2.0)
            out += streaks * rng.choice([-1, 1]) * np.exp(-0.5 * (d / width) ** 2)
    return np.broadcast_to(out[None], shape)


def render_appearance(
    phases: np.ndarray,
    phase_sample: np.ndarray,
    normalization: Mapping[str, Any],
    rng: np.random.Generator,
    ranges: AppearanceRanges | None = None,
) -> np.ndarray:
    """Render a normalized image from a phase map with a random appearance (module docstring).

    Args:
        phases: (Z, Y, X) uint8 phase map of the patch.
        phase_sample: (n,) uint8 phases of the voxels the normalization sampled on the whole
            sample (see :class:`particleseg.data.prepare.PreparedSample`).
        normalization: the training's normalization scheme config; a ``global_zscore`` scheme
            z-scores the rendering with the mean and std of the rendered sample instead.
        rng: random generator (all draws come from it).
        ranges: the ranges; ``AppearanceRanges()`` when None.

    Returns:
        (Z, Y, X) float32 normalized image.

    Raises:
        ValueError: ``phases`` is not a 3D uint8 array or ``phase_sample`` is empty.
    """
    ranges = AppearanceRanges() if ranges is None else ranges
    phases = np.asarray(phases)
    if phases.ndim != 3 or phases.dtype != np.uint8:
        raise ValueError(f"phases must be a 3D uint8 array, got {phases.dtype} {phases.shape}")
    phase_sample = np.asarray(phase_sample)
    if phase_sample.size == 0:
        raise ValueError("phase_sample is empty: cannot normalize the rendered image")
    levels = draw_levels(ranges, rng).astype(np.float32)
    image = levels[phases]
    low = float(levels[phase_sample].min())
    bias = float(rng.uniform(*ranges.bias))
    if bias > 0:
        image = low + (image - low) * (1 + bias * _smooth_field(phases.shape, rng))
    blur = float(rng.uniform(*ranges.blur_sigma))
    if blur > 0:
        image = ndi.gaussian_filter(image, blur)
    white = float(rng.uniform(*ranges.noise_white_share))
    image = image + _noise(phases.shape, white, float(rng.uniform(*ranges.noise_correlation)), rng)
    rings, streaks = (
        float(rng.uniform(*r)) for r in (ranges.ring_strength, ranges.streak_strength)
    )
    if rings > 0 or streaks > 0:
        image = image + _rings_and_streaks(phases.shape, rings, streaks, rng)
    # the whole sample's statistics, from the sampled voxels' phases with the same levels + noise
    values = levels[phase_sample] + rng.standard_normal(phase_sample.size).astype(np.float32)
    cfg = resolve_config(normalization) if normalization.get("scheme") == "percentile" else None
    if cfg is None:
        cfg = {"scheme": "global_zscore", "mean": float(values.mean()), "std": float(values.std())}
    norm = fit_normalization(values, cfg)
    return norm(image.astype(np.float32, copy=False))


class RandAppearanced(RandomizableTransform, MapTransform):
    """Dict transform: with probability ``prob``, replace the image by a rendering of its phases.

    Expects ``image`` (1, Z, Y, X), ``phases`` (1, Z, Y, X) uint8 and ``phase_sample`` (n,)
    uint8; the two phase keys are removed from the output either way, all other keys (labels)
    pass through untouched.

    Args:
        normalization: the training's normalization scheme config.
        prob: probability of re-rendering a patch.
        image_key, phases_key, sample_key: dict keys.
        **ranges: fields of :class:`AppearanceRanges`.
    """

    def __init__(
        self,
        normalization: Mapping[str, Any],
        prob: float = 0.5,
        image_key: Hashable = "image",
        phases_key: Hashable = "phases",
        sample_key: Hashable = "phase_sample",
        **ranges: Any,
    ) -> None:
        MapTransform.__init__(self, [image_key], allow_missing_keys=True)
        if not 0 <= prob <= 1:
            raise ValueError(f"appearance prob must be in [0, 1], got {prob}")
        RandomizableTransform.__init__(self, prob)
        self.normalization = dict(normalization)
        self.ranges = AppearanceRanges(**ranges)
        self.image_key, self.phases_key, self.sample_key = image_key, phases_key, sample_key
        self.seed = 0

    def randomize(self, data: Any = None) -> None:
        """Draw whether to re-render, and the seed of the rendering."""
        super().randomize(None)
        self.seed = int(self.R.randint(2**31 - 1))

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Return a copy of ``data`` with the image re-rendered (or not) and the phases dropped."""
        d = dict(data)
        phases = d.pop(self.phases_key, None)
        sample = d.pop(self.sample_key, None)
        self.randomize()
        if not self._do_transform or phases is None or sample is None:
            return d
        rng = np.random.default_rng(self.seed)
        phases = np.asarray(phases)
        image = render_appearance(phases[0], sample, self.normalization, rng, self.ranges)
        d[self.image_key] = image[None].astype(np.float32, copy=False)
        return d

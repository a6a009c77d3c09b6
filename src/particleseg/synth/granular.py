"""Dense granular packings without resin: sand- or soil-like scans with grains touching all round.

:func:`render_granular` returns the same :class:`~particleseg.synth.scene.Scene` as
:func:`~particleseg.synth.scene.render_scene` (attenuation with partial volume, exact labels, phase
map), for a packing in which grains touch several neighbours each, in air or water, with no
cylinder by default (the scan sees the inside of a larger sample, so grains are cut by all six
faces) or inside a container cylinder. How it is made:

1. seed spheres with log-normal diameters are relaxed to a jammed packing of about
   ``seed_fraction`` (:mod:`._granular_pack`), in a box a little larger than the scan;
2. each voxel goes to the power (Laguerre) cell of its seed (weights ``r^2``: overlapping spheres
   meet on their radical plane), and each grain is its cell shrunk towards the seed by a smooth
   random gap field that is zero on ``contact_share`` of space: where the field is zero,
   neighbouring grains both reach their common face and touch over a patch
   (:mod:`._granular_cells`); each grain recedes by the gap times its size over the median
   size, so that small grains keep their shape;
3. grain shapes: *angular* grains keep the sharp cell edges and lose corners to a few random
   facet planes; *rounded* grains are their cell intersected with a ball of about the seed
   radius, with edges rounded by a smooth minimum;
4. the gap amplitude is found by bisection so that the grain volume fraction (envelopes,
   pores included) meets ``packing``;
5. partial volume: occupancy ``clip(0.5 + depth - gap, 0, 1)`` per grain at every voxel (the depth
   is a distance in voxels), with the grain across the nearest face included within one voxel of
   it, so contacts between different minerals are mixed too; inclusions (balls of a second phase)
   and pores (empty balls) likewise;
6. labels: the grain with the larger share of each voxel that is at least half solid; stray
   pieces join the neighbour they touch most, or are dropped when they touch none and are under
   8 voxels (:mod:`._granular_labels`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.ndimage as ndi

from particleseg.synth._granular_cells import bucket_candidates, grain_depths
from particleseg.synth._granular_compose import Grains, compose
from particleseg.synth._granular_pack import draw_diameters, pack_spheres
from particleseg.synth.scene import Scene, _as_rng, _check_shape

CONTAINERS: tuple[str, ...] = ("none", "cylinder")
_MAX_FACETS = 6


def _pair(name: str, value: Any, lo: float, hi: float | None = None) -> tuple[float, float]:
    """``value`` as (a, b) floats with lo <= a <= b (<= hi), else a ValueError naming the field."""
    try:
        a, b = (float(v) for v in value)
    except (TypeError, ValueError):
        a, b = np.nan, np.nan
    if not (lo <= a <= b and (hi is None or b <= hi)):
        bound = f"{lo} <= low <= high" + (f" <= {hi}" if hi is not None else "")
        raise ValueError(f"GranularParams.{name} must be (low, high) with {bound}, got {value!r}")
    return a, b


def _within(name: str, value: Any, lo: float, hi: float, *, open_lo: bool = False) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and np.isfinite(value)
    ok = ok and (lo < value if open_lo else lo <= value) and value <= hi
    if not ok:
        interval = f"{'(' if open_lo else '['}{lo}, {hi}]"
        raise ValueError(f"GranularParams.{name} must be a number in {interval}, got {value!r}")


@dataclass(frozen=True)
class GranularParams:
    """Knobs of a dense granular packing; lengths in voxels, attenuations in 1/voxel.

    Attributes:
        packing: target grain volume fraction of the sample (of the container with one);
            reached within about 0.01 unless the shapes cannot fill that much.
        size_median_px: median seed diameter (grains are a little smaller: gaps, rounding).
        size_sigma: sigma of the log-normal diameter distribution (log units).
        size_range_px: diameters are clipped to this (min, max).
        rounded_fraction: share of rounded grains (the rest are angular).
        rounding_range: smooth-minimum width of rounded grains, as a fraction of the radius.
        ball_range: ball radius of rounded grains over their seed radius (> 1 flattens more
            contacts).
        max_facets: angular grains lose up to this many corners to random facet planes.
        contact_share: share of space where the gap field is zero (contact patches).
        max_gap: widest gap between neighbouring grains, as a fraction of the median diameter.
        gap_scale: correlation length of the gap field, as a fraction of the median diameter
            (smaller: more, smaller contact patches and rougher grains).
        material_mu_range: grain attenuations are drawn log-uniformly from this range.
        n_materials: number of distinct minerals in the sample (each grain picks one); 0 draws
            one per grain.
        matrix_mu: attenuation of what fills the pores between grains (0 air, ~0.004 water).
        inclusion_prob: probability that a grain holds a ball of a second phase.
        pore_prob: probability of 1-4 empty pores inside a grain.
        container: ``"none"`` (the matrix fills the field of view) or ``"cylinder"`` (axis Z,
            air outside, grains pressed against its wall).
        cylinder_margin_px: air between the container and the nearest Y-X field edge.
        seed_fraction: volume fraction of the seed spheres before relaxation (above jamming,
            about 0.64, so that every seed presses on its neighbours).
        relax_sweeps: relaxation sweeps of the seed packing.
        max_grains: safety cap on the number of seeds.
    """

    packing: float = 0.55
    size_median_px: float = 14.0
    size_sigma: float = 0.3
    size_range_px: tuple[float, float] = (4.0, 80.0)
    rounded_fraction: float = 0.5
    rounding_range: tuple[float, float] = (0.1, 0.35)
    ball_range: tuple[float, float] = (1.05, 1.3)
    max_facets: int = 5
    contact_share: float = 0.6
    max_gap: float = 0.5
    gap_scale: float = 0.5
    material_mu_range: tuple[float, float] = (0.008, 0.04)
    n_materials: int = 3
    matrix_mu: float = 0.0
    inclusion_prob: float = 0.1
    pore_prob: float = 0.1
    container: str = "none"
    cylinder_margin_px: float = 4.0
    seed_fraction: float = 0.68
    relax_sweeps: int = 40
    max_grains: int = 200_000

    def __post_init__(self) -> None:
        fix = object.__setattr__  # lists from YAML/JSON configs become tuples
        fix(self, "size_range_px", _pair("size_range_px", self.size_range_px, 1.0))
        fix(self, "rounding_range", _pair("rounding_range", self.rounding_range, 0.0, 1.0))
        fix(self, "ball_range", _pair("ball_range", self.ball_range, 0.5, 2.0))
        mu_range = _pair("material_mu_range", self.material_mu_range, 0.0)
        if mu_range[0] <= 0:
            raise ValueError(
                f"GranularParams.material_mu_range must be positive, got {self.material_mu_range}"
            )
        fix(self, "material_mu_range", mu_range)
        _within("packing", self.packing, 0.05, 0.75)
        _within("size_median_px", self.size_median_px, 0.0, 1e4, open_lo=True)
        _within("size_sigma", self.size_sigma, 0.0, 1.5)
        for name in ("rounded_fraction", "inclusion_prob", "pore_prob"):
            _within(name, getattr(self, name), 0.0, 1.0)
        _within("contact_share", self.contact_share, 0.0, 1.0, open_lo=True)
        _within("max_gap", self.max_gap, 0.0, 2.0)
        _within("gap_scale", self.gap_scale, 0.0, 10.0, open_lo=True)
        _within("matrix_mu", self.matrix_mu, 0.0, 10.0)
        _within("cylinder_margin_px", self.cylinder_margin_px, 0.0, 1e4)
        _within("seed_fraction", self.seed_fraction, 0.3, 0.8)
        for name, lo, hi in (
            ("max_facets", 0, _MAX_FACETS),
            ("n_materials", 0, 252),
            ("relax_sweeps", 0, 10_000),
            ("max_grains", 1, 10**7),
        ):
            value = getattr(self, name)
            if not isinstance(value, int | np.integer) or isinstance(value, bool):
                raise ValueError(f"GranularParams.{name} must be an integer, got {value!r}")
            if not lo <= value <= hi:
                raise ValueError(f"GranularParams.{name} must be in [{lo}, {hi}], got {value}")
        if self.container not in CONTAINERS:
            raise ValueError(
                f"GranularParams.container must be one of {CONTAINERS}, got {self.container!r}"
            )


def _region(shape: tuple[int, int, int], p: GranularParams) -> tuple[np.ndarray, tuple | None]:
    """(Y, X) float32 share of each column inside the sample, and the cylinder (cy, cx, R)."""
    _, y, x = shape
    if p.container == "none":
        return np.ones((y, x), np.float32), None
    radius = min(y, x) / 2 - p.cylinder_margin_px
    if radius < 4:
        raise ValueError(
            f"container radius {radius:.1f} px is too small for a {y}x{x} field of view with "
            f"GranularParams.cylinder_margin_px={p.cylinder_margin_px}"
        )
    cy, cx = (y - 1) / 2, (x - 1) / 2
    yy, xx = np.ogrid[:y, :x]
    inside = np.clip(radius - np.hypot(yy - cy, xx - cx) + 0.5, 0, 1).astype(np.float32)
    return inside, (cy, cx, radius)


def _inclusion_mu(host: float, lo: float, hi: float, rng: np.random.Generator) -> float:
    """A second phase at least 1.4x away from the host (as in resin scenes)."""
    step = np.log(1.4)
    for _ in range(16):
        mu = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
        if abs(np.log(mu / host)) >= step:
            return mu
    return host * 1.4 if np.log(host) + step <= np.log(hi) else host / 1.4


def _draw_grains(
    shape: tuple[int, int, int], p: GranularParams, cyl: tuple | None, rng: np.random.Generator
) -> tuple[Grains, float]:
    """Seeds, shapes, materials and features of every grain; and the seeds' mean overlap."""
    d_typ = min(p.size_median_px * np.exp(2 * p.size_sigma), p.size_range_px[1])
    margin = 0.6 * d_typ + 2
    lo = np.array([-margin] * 3)
    hi = np.array(shape, float) - 1 + margin
    if cyl is not None:
        lo[1:] = cyl[0] - cyl[2], cyl[1] - cyl[2]
        hi[1:] = cyl[0] + cyl[2], cyl[1] + cyl[2]
        volume = np.pi * cyl[2] ** 2 * (hi[0] - lo[0])
    else:
        volume = float(np.prod(hi - lo))
    d = draw_diameters(
        p.seed_fraction * volume,
        p.size_median_px,
        p.size_sigma,
        p.size_range_px,
        p.max_grains,
        rng,
    )
    d = np.sort(d)[::-1].copy()
    pos, overlap = pack_spheres(lo, hi, d, rng, cylinder=cyl, sweeps=p.relax_sweeps)
    n, r = len(d), d / 2
    rounded = rng.random(n) < p.rounded_fraction
    k = np.where(rounded, rng.uniform(*p.rounding_range, n), rng.uniform(0, 0.08, n)) * r
    beta = rng.uniform(*p.ball_range, n)
    ball = np.where(rounded, beta * r, 0.0)
    kb = np.where(rounded, np.minimum(k, 0.7 * np.maximum(beta - 1, 0) * r), 0.0)
    nfac = np.where(rounded, 0, rng.integers(0, p.max_facets + 1, n)).astype(np.int64)
    normals = rng.normal(size=(n, _MAX_FACETS, 3))
    normals /= np.linalg.norm(normals, axis=2, keepdims=True)
    offsets = rng.uniform(0.7, 1.0, (n, _MAX_FACETS, 1)) * r[:, None, None]
    facets = np.ascontiguousarray(np.concatenate([normals, offsets], axis=2))
    lo_mu, hi_mu = p.material_mu_range
    palette = np.exp(rng.uniform(np.log(lo_mu), np.log(hi_mu), p.n_materials))
    if len(palette):
        host = palette[rng.integers(len(palette), size=n)]
    else:
        host = np.exp(rng.uniform(np.log(lo_mu), np.log(hi_mu), n))
    inclusion = np.zeros((n, 5))
    for i in np.flatnonzero(rng.random(n) < p.inclusion_prob):
        radius = max(1.0, rng.uniform(0.25, 0.45) * r[i])
        offset = rng.normal(size=3)
        offset *= rng.uniform(0, 0.3) * r[i] / np.linalg.norm(offset)
        mu = _inclusion_mu(float(host[i]), lo_mu, hi_mu, rng)
        inclusion[i] = (*(pos[i] + offset), radius, mu)
    pores = np.zeros((n, 4, 4))
    for i in np.flatnonzero(rng.random(n) < p.pore_prob):
        for j in range(int(rng.integers(1, 5))):
            radius = max(1.2, rng.uniform(0.05, 0.12) * d[i])
            offset = rng.normal(size=3)
            offset *= rng.uniform(0, max(0.45 * r[i] - radius, 0)) / np.linalg.norm(offset)
            pores[i, j] = (*(pos[i] + offset), radius)
    grains = Grains(pos, r, rounded, k, kb, ball, facets, nfac, host, inclusion, pores)
    return grains, overlap


def _gap_field(
    shape: tuple[int, int, int], scale: float, share: float, rng: np.random.Generator
) -> np.ndarray:
    """(Z, Y, X) float32 smooth field >= 0, zero on ``share`` of the volume, std about 1."""
    step = max(1.0, scale / 3.0)
    coarse_shape = tuple(int(np.ceil(n / step)) + 3 for n in shape)
    noise = ndi.gaussian_filter(rng.standard_normal(coarse_shape), scale / (2.0 * step))
    noise = (noise - noise.mean()) / max(float(noise.std()), 1e-12)
    threshold = float(np.quantile(noise, share)) if share < 1 else np.inf
    field = ndi.zoom(np.maximum(noise - threshold, 0.0).astype(np.float32), step, order=1)
    if any(f < n for f, n in zip(field.shape, shape, strict=True)):
        raise AssertionError("gap field smaller than the volume")  # pragma: no cover
    return np.ascontiguousarray(field[: shape[0], : shape[1], : shape[2]])


def relative_size(g: Grains, p: GranularParams) -> np.ndarray:
    """(n,) float32 grain radius over the median radius, clipped to [0.25, 3]: gap scale."""
    return np.clip(g.radius / (p.size_median_px / 2), 0.25, 3.0).astype(np.float32)


def gap_profile(field: np.ndarray, amplitude: float, cap: float) -> np.ndarray:
    """Gap in voxels from the field: ``cap * tanh(amplitude * field / cap)`` (float32)."""
    if cap <= 0:
        return np.zeros_like(field)
    return (np.float32(cap) * np.tanh(field * np.float32(amplitude / cap))).astype(np.float32)


def _occupancies(
    depth: np.ndarray,
    second_depth: np.ndarray,
    gap: np.ndarray,
    size_own: np.ndarray,
    size_second: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Occupancy of the owner and of the grain across the nearest face, scaled to sum <= 1.

    Each grain recedes by the gap times its relative size, so that small grains keep their shape.
    """
    own = np.clip(0.5 + depth - gap * size_own, 0, 1)
    other = np.clip(0.5 + second_depth - gap * size_second, 0, 1)
    total = own + other
    scale = np.where(total > 1, 1 / np.maximum(total, 1e-6), 1).astype(np.float32)
    return own * scale, other * scale


def _solve_gap(
    arrays: tuple[np.ndarray, ...], weight: np.ndarray, target: float, cap: float
) -> float:
    """Gap amplitude giving the target grain fraction (bisection on a 2x subsampled grid).

    Args:
        arrays: depth, second depth, gap field, relative size of owner and second grain, all
            (Z, Y, X) float32.
        weight: (Y, X) share of each column inside the sample.
        target: grain volume fraction wanted.
        cap: largest gap of a grain of median size, in voxels.
    """
    sub = (slice(None, None, 2),) * 3
    dep, sec, fld, s_own, s_sec = (a[sub] for a in arrays)
    wgt = np.broadcast_to(weight[None], arrays[0].shape)[sub]
    total_w = float(wgt.sum())

    def fraction(amplitude: float) -> float:
        own, other = _occupancies(dep, sec, gap_profile(fld, amplitude, cap), s_own, s_sec)
        return float(((own + other) * wgt).sum()) / total_w

    lo, hi = 0.0, max(cap, 1.0)
    if fraction(lo) <= target:
        return 0.0
    while fraction(hi) > target and hi < 1e3 * max(cap, 1.0):
        hi *= 4
    for _ in range(30):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if fraction(mid) > target else (lo, mid)
    return hi


def render_granular(
    shape: tuple[int, int, int],
    params: GranularParams | None = None,
    rng: np.random.Generator | int = 0,
) -> Scene:
    """Render a dense granular packing (see the module docstring) with exact labels.

    Args:
        shape: (Z, Y, X) volume shape, each >= 8.
        params: the knobs; defaults to ``GranularParams()``.
        rng: seed or generator; the same seed gives the same scene.

    Returns:
        The :class:`~particleseg.synth.scene.Scene`: ``mu`` (Z, Y, X) float32 in 1/voxel,
        ``labels`` (Z, Y, X) uint32 ids 1..N consecutive (each one 6-connected piece),
        ``void_mask`` all False, ``phases`` (Z, Y, X) uint8. ``info`` holds ``n_particles``;
        ``packing_fraction`` (achieved, from the occupancies) and ``packing_target``;
        ``touching_fraction`` (share of grains sharing a face with another) and
        ``contacts_per_particle`` (mean number of grains each one touches); ``n_contacts``;
        ``gap_amplitude_px``, ``seed_overlap_px`` (mean seed overlap after relaxation);
        per grain, as lists in id order, ``mu``, ``inclusion_mu`` (None without inclusion),
        ``family`` (``"angular"`` or ``"rounded"``), ``diameter_px`` (seed diameter),
        ``features``, ``voxel_count``, ``contacts``, ``cut_by_face``;
        ``container``, ``cylinder_radius_px`` (None without a container), ``matrix_mu`` and
        ``resin_mu`` (the same: the attenuation between the particles, under
        :func:`~particleseg.synth.scene.render_scene`'s key), ``void_voxels`` (0) and
        ``phase_mu`` (attenuation of each mineral phase code).

    Raises:
        ValueError: on a bad shape, seed or params, or a container that does not fit.
    """
    shape = _check_shape(shape)
    params = GranularParams() if params is None else params
    if not isinstance(params, GranularParams):
        raise ValueError(f"params must be a GranularParams, got {type(params).__name__}")
    rng = _as_rng(rng)
    weight, cyl = _region(shape, params)
    grains, overlap = _draw_grains(shape, params, cyl, rng)
    scale = params.gap_scale * params.size_median_px
    field = _gap_field(shape, scale, params.contact_share, rng)
    depth, owner, second, second_depth = _depths(shape, grains, params, cyl)
    cap = params.max_gap * params.size_median_px / 2
    relative = relative_size(grains, params)
    size_own = relative[np.maximum(owner, 0)]
    size_second = relative[np.maximum(second, 0)]
    arrays = (depth, second_depth, field, size_own, size_second)
    amplitude = _solve_gap(arrays, weight, params.packing, cap)
    own, other = _occupancies(
        depth, second_depth, gap_profile(field, amplitude, cap), size_own, size_second
    )
    del depth, second_depth, field, size_own, size_second, arrays
    extra = {
        "packing_target": float(params.packing),
        "gap_amplitude_px": float(amplitude),
        "seed_overlap_px": float(overlap),
    }
    return compose(params, grains, weight, cyl, owner, second, own, other, extra)


def _depths(
    shape: tuple[int, int, int], g: Grains, p: GranularParams, cyl: tuple | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Depth, owner, second grain and its depth at every voxel (numba kernels)."""
    size = int(np.clip(round(p.size_median_px / 2), 4, 16))
    # planes farther than the largest gap plus rounding from a voxel cannot change its occupancy
    cap = p.max_gap * p.size_median_px / 2
    reach = cap * float(relative_size(g, p).max()) + float(g.k.max()) + 2.0
    margin = 2.0 * reach * (g.radius + g.radius.max())
    w = g.radius**2
    shape_arr = np.asarray(shape, np.int64)
    start, items = bucket_candidates(g.pos, w, g.radius, margin, size, shape_arr)
    cyl_arr = np.zeros(4) if cyl is None else np.array([1.0, *cyl])
    owner, depth, second, second_depth = grain_depths(
        shape_arr, g.pos, w, g.k, g.kb, g.ball, g.facets, g.nfac, cyl_arr, start, items, size
    )
    return depth, owner, second, second_depth

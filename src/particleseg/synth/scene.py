"""A synthetic micro-CT sample before the CT physics: particles in a resin cylinder, in air.

:func:`render_scene` composes mineral particles (:mod:`particleseg.synth.particles`) embedded in
an epoxy resin cylinder (axis along Z, filling most of the Y-X field of view; air outside), with
spacer voids (dissolved sugar grains, polyhedral) and air bubbles (ellipsoidal) in the resin. It
returns the linear attenuation in 1/voxel with partial volume at every edge, and exact instance
labels. Particles never overlap; most keep ``min_gap_px`` of resin to every other object and to
the cylinder wall, and a requested fraction touch another particle: their label masks share a
face (6-adjacent voxels) without overlapping. Particles may be cut by the top and bottom faces
of the volume (the scan is a section of a taller sample). With ``container="none"`` there is no
cylinder: the matrix (resin, water or air) fills the field of view and particles may be cut by
all six faces (a scan of the inside of a larger sample).

The attenuation of a voxel is ``sum_i f_i mu_i + (1 - sum_i f_i - v) * c * resin_mu`` with
particle content ``f_i mu_i`` (host, inclusion, empty pores and cracks), void fraction ``v`` and
cylinder fraction ``c``; where sub-voxel occupancies of neighbours add up to more than one, they
are scaled down to one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from particleseg.synth._builder import Builder
from particleseg.synth.particles import FAMILIES
from particleseg.synth.phases import AIR, MATRIX, VOID, particle_phases

DEFAULT_SHAPE_WEIGHTS: Mapping[str, float] = {
    "polyhedron": 0.3,
    "star": 0.22,
    "concave": 0.15,
    "needle": 0.08,
    "flake": 0.1,
    "ellipsoid": 0.15,
}


CONTAINERS: tuple[str, ...] = ("cylinder", "none")

_RANGES = (
    "size_range_px",
    "needle_aspect_range",
    "flake_aspect_range",
    "material_mu_range",
    "bubble_diameter_range_px",
)


def _positive_range(name: str, value: Any) -> tuple[float, float]:
    """``value`` as a (low, high) float pair with 0 < low <= high, else a ValueError."""
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        lo, hi = np.nan, np.nan
    if not 0 < lo <= hi:
        raise ValueError(
            f"SceneParams.{name} must be (low, high) with 0 < low <= high, got {value!r}"
        )
    return lo, hi


@dataclass(frozen=True)
class SceneParams:
    """Every knob of a synthetic sample; lengths in voxels, attenuations in 1/voxel.

    Attributes:
        size_median_px: median particle equivalent diameter.
        size_sigma: sigma of the log-normal diameter distribution (log units).
        size_range_px: diameters are clipped to this (min, max).
        shape_weights: relative frequency of each shape family (keys from ``FAMILIES``).
        needle_aspect_range: inertia aspect (longest / middle axis) of needles.
        flake_aspect_range: inertia aspect (middle / shortest axis) of flakes.
        packing: target particle volume fraction of the resin cylinder.
        touching_fraction: target fraction of particles that share a face with another one.
        min_gap_px: least resin gap between non-touching objects and to the cylinder wall
            (>= 1, so that only the intended pairs touch).
        material_mu_range: particle attenuations are drawn log-uniformly from this range.
        n_materials: number of distinct mineral attenuations in the sample (each particle picks
            one); 0 draws an attenuation per particle.
        resin_mu: attenuation of the resin (air and voids are 0).
        multiphase_prob: probability that a particle holds an inclusion of a second phase.
        crack_prob: probability of an internal crack.
        pore_prob: probability of 1-4 internal pores.
        n_bubbles: number of air bubbles in the resin.
        bubble_diameter_range_px: bubble diameters are log-uniform in this range.
        void_fraction: volume fraction of the cylinder taken by spacer voids (dissolved sugar
            grains: polyhedra with the particle size distribution).
        cylinder_margin_px: air between the resin cylinder and the nearest Y-X field edge.
        container: ``"cylinder"``: a resin cylinder (axis Z) in air; ``"none"``: no cylinder, the
            matrix (attenuation ``resin_mu``: 0 for air, about 0.004 for water) fills the whole
            field of view and objects may be cut by the Y and X faces too (a scan that sees only
            the inside of a larger sample; the phase map then has no ``AIR`` voxels).
        cut_at_z_faces: let objects be cut by the first and last Z slice.
        supersample: sub-voxel points per axis where partial volume is computed.
        max_tries: placement attempts per object before it is dropped.
        max_objects: safety cap on the number of objects drawn.
    """

    size_median_px: float = 20.0
    size_sigma: float = 0.35
    size_range_px: tuple[float, float] = (3.0, 150.0)
    shape_weights: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_SHAPE_WEIGHTS))
    needle_aspect_range: tuple[float, float] = (3.0, 8.0)
    flake_aspect_range: tuple[float, float] = (3.0, 8.0)
    packing: float = 0.25
    touching_fraction: float = 0.05
    min_gap_px: float = 2.0
    material_mu_range: tuple[float, float] = (0.007, 0.08)
    n_materials: int = 5
    resin_mu: float = 0.005
    multiphase_prob: float = 0.1
    crack_prob: float = 0.1
    pore_prob: float = 0.15
    n_bubbles: int = 2
    bubble_diameter_range_px: tuple[float, float] = (4.0, 32.0)
    void_fraction: float = 0.03
    cylinder_margin_px: float = 4.0
    container: str = "cylinder"
    cut_at_z_faces: bool = True
    supersample: int = 3
    max_tries: int = 40
    max_objects: int = 100_000

    def __post_init__(self) -> None:
        for name in _RANGES:  # lists from YAML/JSON configs become tuples
            object.__setattr__(self, name, _positive_range(name, getattr(self, name)))
        object.__setattr__(self, "shape_weights", dict(self.shape_weights))
        if self.needle_aspect_range[0] < 1 or self.flake_aspect_range[0] < 1:
            raise ValueError("SceneParams: aspect ranges must be >= 1")
        if not self.size_median_px > 0 or not self.size_sigma >= 0:
            raise ValueError("SceneParams: size_median_px must be > 0 and size_sigma >= 0")
        unknown = set(self.shape_weights) - set(FAMILIES)
        weights = list(self.shape_weights.values())
        if unknown or any(w < 0 for w in weights) or not sum(weights) > 0:
            raise ValueError(
                f"SceneParams.shape_weights must map families from {FAMILIES} to non-negative "
                f"weights with a positive sum, got {dict(self.shape_weights)}"
            )
        for name in ("touching_fraction", "multiphase_prob", "crack_prob", "pore_prob"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"SceneParams.{name} must be in [0, 1], got {getattr(self, name)}")
        if not 0 <= self.packing <= 0.6 or not 0 <= self.void_fraction <= 0.3:
            raise ValueError(
                "SceneParams: packing must be in [0, 0.6] and void_fraction in [0, 0.3]"
            )
        if self.min_gap_px < 1:
            raise ValueError(f"SceneParams.min_gap_px must be >= 1, got {self.min_gap_px}")
        if self.resin_mu < 0 or self.cylinder_margin_px < 0 or self.n_bubbles < 0:
            raise ValueError("SceneParams: resin_mu, cylinder_margin_px, n_bubbles must be >= 0")
        if self.supersample < 1 or self.max_tries < 1 or self.n_materials < 0:
            raise ValueError("SceneParams: supersample, max_tries >= 1 and n_materials >= 0")
        if self.container not in CONTAINERS:
            raise ValueError(
                f"SceneParams.container must be one of {CONTAINERS}, got {self.container!r}"
            )


@dataclass(frozen=True)
class Scene:
    """A rendered sample.

    Attributes:
        mu: (Z, Y, X) float32 linear attenuation in 1/voxel, with partial volume.
        labels: (Z, Y, X) uint32 particle ids 1..N consecutive, 0 elsewhere.
        void_mask: (Z, Y, X) bool, voxels at least half filled by a spacer void or bubble.
        info: summary (see :func:`render_scene`).
        phases: (Z, Y, X) uint8 phase map (codes in :mod:`particleseg.synth.phases`), or None.
    """

    mu: np.ndarray
    labels: np.ndarray
    void_mask: np.ndarray
    info: dict[str, Any]
    phases: np.ndarray | None = None


def _as_rng(rng: np.random.Generator | int) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, int | np.integer) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise ValueError(f"rng must be an int seed or a numpy Generator, got {type(rng).__name__}")


def _check_shape(shape: tuple[int, int, int]) -> tuple[int, int, int]:
    if len(shape) != 3 or any(int(n) != n or n < 8 for n in shape):
        raise ValueError(f"scene shape must be three integers >= 8 (Z, Y, X), got {shape}")
    return int(shape[0]), int(shape[1]), int(shape[2])


def touching_particles(labels: np.ndarray) -> np.ndarray:
    """Which particles share a face (6-adjacent voxels) with a different particle.

    Args:
        labels: (Z, Y, X) integer labels, 0 background, ids 1..N.

    Returns:
        (N + 1,) bool, entry ``k`` True when particle ``k`` touches another one (entry 0 False).
    """
    touching = np.zeros(int(labels.max()) + 1, bool)
    for axis in range(3):
        a = np.moveaxis(labels, axis, 0)
        x, y = a[:-1], a[1:]
        m = (x != y) & (x > 0) & (y > 0)
        touching[x[m]] = True
        touching[y[m]] = True
    return touching


def _compose_mu(b: Builder, resin_mu: float) -> np.ndarray:
    """Attenuation (Z, Y, X) float32 from the accumulated occupancies (reuses ``b.mu_sum``)."""
    total = b.frac + b.void
    mu = np.divide(b.mu_sum, np.maximum(total, 1.0), out=b.mu_sum)
    np.subtract(1.0, total, out=total)
    np.clip(total, 0.0, 1.0, out=total)
    total *= b.cylinder[None] * np.float32(resin_mu)
    mu += total
    return mu


def render_scene(
    shape: tuple[int, int, int],
    params: SceneParams | None = None,
    rng: np.random.Generator | int = 0,
    *,
    progress: bool = False,
) -> Scene:
    """Render a synthetic sample: particles in a resin cylinder in air, with exact labels.

    Objects (particles, spacer voids, bubbles) are drawn until their volumes reach the requested
    fractions of the resin cylinder, then placed largest first; a particle that cannot be placed
    after ``max_tries`` is dropped, and particles are topped up (four rounds at most) if drops left
    the packing short. Each particle touches another one (face to face) when that brings the
    running touching fraction closer to ``touching_fraction``.

    Args:
        shape: (Z, Y, X) volume shape, each >= 8.
        params: the knobs; defaults to ``SceneParams()``.
        rng: seed or generator; the same seed gives the same scene.
        progress: show a progress bar over the objects.

    Returns:
        The :class:`Scene`. ``info`` holds: ``n_particles``; ``touching_fraction`` and
        ``packing_fraction`` achieved (measured on the labels and occupancies);
        ``touching_pairs`` (id pairs placed face to face); per particle, as lists in id order,
        ``mu``, ``inclusion_mu`` (None without inclusion), ``family``, ``diameter_px``, ``aspect``,
        ``features``, ``voxel_count`` (its label voxels in the volume), ``intended_voxel_count``
        (its own rendered label mask, before placement: equal unless cut by a face of the
        volume) and ``cut_by_z_face`` (cut by a face: only Z faces cut inside a cylinder);
        ``void_voxels``, ``n_spacers``, ``n_bubbles``, ``n_dropped`` (particles not placed),
        ``container``, ``cylinder_radius_px`` (None without a cylinder), ``resin_mu``,
        ``phase_mu`` (attenuation of each mineral phase code of ``Scene.phases``).

    Raises:
        ValueError: on a bad shape, seed or a cylinder that does not fit.
    """
    shape = _check_shape(shape)
    params = SceneParams() if params is None else params
    if not isinstance(params, SceneParams):
        raise ValueError(f"params must be a SceneParams, got {type(params).__name__}")
    rng = _as_rng(rng)
    b = Builder(shape, params, rng)
    target = params.packing * b.cylinder_volume
    plan = [("particle", d) for d in b.diameters(target, params.max_objects)]
    voids = b.diameters(params.void_fraction * b.cylinder_volume, params.max_objects)
    plan += [("spacer", d) for d in voids]
    lo, hi = np.log(params.bubble_diameter_range_px)
    plan += [("bubble", float(np.exp(rng.uniform(lo, hi)))) for _ in range(params.n_bubbles)]
    plan.sort(key=lambda item: -item[1])
    for kind, d in tqdm(plan, desc="scene", disable=not progress):
        if kind == "particle":
            b.add_particle(d)
        else:
            b.add_void(kind, d)
    for _ in range(4):  # top up: drops and objects cut by the Z faces leave the packing short
        deficit = target - b.particle_volume
        if deficit < 0.03 * target:
            break
        before = len(b.records)
        for d in sorted(b.diameters(deficit, params.max_objects), reverse=True):
            b.add_particle(d)
        if len(b.records) == before:
            break

    owner = b.packer.owner
    owner[owner < 0] = 0
    labels = owner.view(np.uint32)  # ids are >= 0: same bits
    void_mask = b.void >= 0.5
    phases, phase_mu = _phase_map(b, labels, void_mask)
    mu = _compose_mu(b, params.resin_mu)
    packing = float(np.minimum(b.frac, 1.0, out=b.frac).sum(dtype=np.float64))
    touching = touching_particles(labels)
    records = b.records
    info: dict[str, Any] = {
        "n_particles": len(records),
        "touching_fraction": float(touching[1:].mean()) if records else 0.0,
        "packing_fraction": packing / b.cylinder_volume,
        "touching_pairs": list(b.pairs),
        **{
            key: [r[key] for r in records]
            for key in ("mu", "inclusion_mu", "family", "diameter_px", "aspect", "features")
        },
        "voxel_count": [r["voxel_count"] for r in records],
        "intended_voxel_count": [r["intended_voxel_count"] for r in records],
        "cut_by_z_face": [r["cut"] for r in records],
        "void_voxels": int(void_mask.sum()),
        "n_spacers": b.n_voids["spacer"],
        "n_bubbles": b.n_voids["bubble"],
        "n_dropped": b.n_failed,
        "container": params.container,
        "cylinder_radius_px": None if b.radius is None else float(b.radius),
        "resin_mu": float(params.resin_mu),
        "phase_mu": [float(m) for m in phase_mu],
    }
    return Scene(mu, labels, void_mask, info, phases)


def _phase_map(b: Builder, labels: np.ndarray, void_mask: np.ndarray) -> tuple[np.ndarray, list]:
    """The phase map of the composed scene (before ``_compose_mu`` reuses ``b.mu_sum``)."""
    phases = np.where(b.cylinder >= 0.5, np.uint8(MATRIX), np.uint8(AIR))
    phases = np.ascontiguousarray(np.broadcast_to(phases[None], labels.shape))
    if b.p.resin_mu > 0:  # a bubble in an air matrix is just more of the matrix
        phases[void_mask] = VOID
    host = np.array([r["mu"] for r in b.records], np.float64)
    inclusion = np.array(
        [np.nan if r["inclusion_mu"] is None else r["inclusion_mu"] for r in b.records], np.float64
    )
    phase_mu = particle_phases(labels, b.mu_sum, b.frac, host, inclusion, phases)
    return phases, list(phase_mu)

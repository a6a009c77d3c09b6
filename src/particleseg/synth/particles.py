"""Single synthetic mineral particles: shape families, internal features, partial-volume rendering.

Each particle is an implicit solid scaled to an exact equivalent diameter ``d`` (the diameter of
the sphere of equal volume, in voxels, fractional allowed) at a uniformly random orientation and
sub-voxel position, rendered into its own small box with supersampling near every material
boundary, so the attenuation has partial volume at edges.

Families (:data:`FAMILIES`):

- ``"polyhedron"``: angular convex grain, the intersection of 8-16 random half-spaces.
- ``"star"``: rounded grain, a radius function of direction with smooth random perturbation.
- ``"concave"``: 2-3 overlapping blobs, or a star with one deep dent.
- ``"needle"``: rod (polygonal prism with flat or pointed ends, or a spindle); the ratio of the
  longest to the middle axis of the inertia ellipsoid is ``aspect`` (3-8).
- ``"flake"``: plate (thin polygonal prism or lens); middle over shortest inertia axis is
  ``aspect`` (3-8).
- ``"ellipsoid"``: spheroid or tri-axial ellipsoid with axis ratios up to 1.5 each.

Internal features, each optional: an inclusion of a second phase (a blob inside the particle
with another attenuation), an internal crack (a thin empty planar disc through part of the
particle) and pores (small empty balls inside). They change the attenuation only: the particle's
label is its envelope (voxels with envelope occupancy >= 0.5, largest 6-connected piece), so
cracks and pores never split a label.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from particleseg.synth import _shapes
from particleseg.synth._features import (
    Body,
    Placed,
    largest_piece,
    make_crack,
    make_inclusion,
    make_pores,
)
from particleseg.synth._raster import rasterize

FAMILIES: tuple[str, ...] = ("polyhedron", "star", "concave", "needle", "flake", "ellipsoid")
ASPECT_FAMILIES: tuple[str, ...] = ("needle", "flake")

_FACTORIES: dict[str, Callable[[np.random.Generator], _shapes.Shape]] = {
    "polyhedron": _shapes.polyhedron_shape,
    "star": _shapes.random_star,
    "concave": _shapes.concave_shape,
    "needle": _shapes.needle_shape,
    "flake": _shapes.flake_shape,
    "ellipsoid": _shapes.ellipsoid_shape,
}


@dataclass(frozen=True)
class Particle:
    """One rendered particle in its own box.

    Attributes:
        occupancy: (bz, by, bx) float32 in [0, 1], fraction of each voxel inside the particle's
            envelope (pores and cracks included).
        mu: (bz, by, bx) float32 attenuation content in 1/voxel: sum over the materials in the
            voxel of their fraction times their attenuation (0 outside, in pores and cracks).
        mask: (bz, by, bx) bool label mask: occupancy >= 0.5, its largest 6-connected piece.
        centre: (3,) float64 centroid position in box index coordinates.
        family: shape family.
        diameter: requested equivalent diameter in voxels.
        aspect: inertia aspect for ``needle`` / ``flake``, else None.
        features: names of the internal features present: ``"inclusion"``, ``"crack"``,
            ``"pores"``.
    """

    occupancy: np.ndarray
    mu: np.ndarray
    mask: np.ndarray
    centre: np.ndarray
    family: str
    diameter: float
    aspect: float | None
    features: tuple[str, ...]


def _axis_scales(
    family: str,
    cal: _shapes.Calibration,
    diameter: float,
    aspect: float | None,
    rng: np.random.Generator,
) -> np.ndarray:
    """Scale factors (voxels per canonical unit) along the shape's principal axes."""
    target = np.pi / 6.0 * diameter**3
    if family == "needle":
        rc = rng.uniform(1.0, 1.3)
        ratio = np.array([aspect * rc, rc, 1.0])
    elif family == "flake":
        ratio = np.array([rng.uniform(1.0, 1.3) * aspect, aspect, 1.0])
    elif family == "ellipsoid":
        b = rng.uniform(1.0, 1.5)
        ratio = np.array([b * rng.uniform(1.0, 1.5), b, 1.0])
    else:
        return np.full(3, (target / cal.volume) ** (1.0 / 3.0))
    s = ratio / cal.sigma
    return s * (target / (cal.volume * np.prod(s))) ** (1.0 / 3.0)


def _envelope(
    family: str, diameter: float, aspect: float | None, rng: np.random.Generator
) -> tuple[Placed, np.ndarray]:
    """Random particle envelope about the origin, and its (3,) half extents in voxels."""
    shape = _FACTORIES[family](rng)
    cal = _shapes.calibrate(shape, n=int(np.clip(1.5 * diameter, 16, 32)))
    s = _axis_scales(family, cal, diameter, aspect, rng)
    rot = Rotation.random(random_state=rng).as_matrix()  # columns: body axes in voxel space
    matrix = cal.axes @ np.diag(1.0 / s) @ rot.T
    half = np.abs(rot) @ (s * cal.extent)
    return Placed(shape, matrix, cal.centroid, cal.lipschitz / float(s.min())), half


def render_particle(
    family: str,
    diameter: float,
    rng: np.random.Generator | int,
    *,
    mu: float = 1.0,
    aspect: float | None = None,
    aspect_range: tuple[float, float] = (3.0, 8.0),
    inclusion_mu: float | None = None,
    crack: bool = False,
    n_pores: int = 0,
    supersample: int = 3,
) -> Particle:
    """Render one particle of a shape family at a random orientation.

    Args:
        family: one of :data:`FAMILIES`.
        diameter: equivalent (volume) diameter in voxels, > 0.
        rng: random generator or seed.
        mu: attenuation of the particle's material in 1/voxel.
        aspect: inertia aspect for ``needle`` and ``flake`` (>= 1); drawn uniformly from
            ``aspect_range`` when None; ignored by the other families.
        aspect_range: (min, max) aspect drawn when ``aspect`` is None.
        inclusion_mu: attenuation of a second-phase inclusion; None for no inclusion.
        crack: add an internal crack (empty thin disc).
        n_pores: number of empty pores to try to place (fewer fit in small particles).
        supersample: sub-voxel points per axis for voxels near a material boundary (>= 1).

    Returns:
        The :class:`Particle`, its box cropped to the voxels it touches.

    Raises:
        ValueError: on an unknown family or a non-positive size or parameter.
    """
    if family not in _FACTORIES:
        raise ValueError(f"unknown particle family {family!r}; expected one of {FAMILIES}")
    if not np.isfinite(diameter) or diameter <= 0:
        raise ValueError(f"particle diameter must be a positive number of voxels, got {diameter}")
    if supersample < 1 or n_pores < 0:
        raise ValueError(f"supersample must be >= 1 and n_pores >= 0, got {supersample}, {n_pores}")
    rng = np.random.default_rng(rng)
    if family in ASPECT_FAMILIES:
        if aspect is None:
            aspect = float(rng.uniform(*aspect_range))
        if aspect < 1:
            raise ValueError(f"aspect must be >= 1, got {aspect}")
    else:
        aspect = None
    env, half = _envelope(family, float(diameter), aspect, rng)
    inclusion = make_inclusion(env, half, diameter, rng) if inclusion_mu is not None else None
    pores = make_pores(env, half, diameter, n_pores, rng)
    crack_disc = make_crack(env, half, diameter, rng) if crack else None
    body = Body(env, inclusion, pores, crack_disc)
    features = tuple(
        name
        for name, present in (
            ("inclusion", inclusion is not None),
            ("crack", crack_disc is not None),
            ("pores", len(pores) > 0),
        )
        if present
    )

    n = 2 * np.ceil(half + 1.0).astype(int) + 2
    centre = (n - 1) / 2.0 + rng.uniform(-0.5, 0.5, 3)
    lut = np.array([0.0, mu, inclusion_mu if inclusion_mu is not None else mu, 0.0])
    occ, mu_box = rasterize(body.evaluate, tuple(n), centre, supersample, lut)
    nz = np.nonzero(occ.any(axis=(1, 2)))[0], np.nonzero(occ.any(axis=(0, 2)))[0]
    nz += (np.nonzero(occ.any(axis=(0, 1)))[0],)
    if any(len(a) == 0 for a in nz):
        raise ValueError(f"particle of diameter {diameter} rendered empty; use a larger diameter")
    crop = tuple(slice(int(a[0]), int(a[-1]) + 1) for a in nz)
    occ, mu_box = occ[crop].copy(), mu_box[crop].copy()
    return Particle(
        occupancy=occ,
        mu=mu_box,
        mask=largest_piece(occ >= 0.5),
        centre=centre - np.array([c.start for c in crop]),
        family=family,
        diameter=float(diameter),
        aspect=aspect,
        features=features,
    )

"""Canonical implicit shapes behind the particle families, and their calibration (internal).

A shape is a level function ``f(p)`` of points ``p`` (3, N) float32 in a canonical frame of
about unit size: ``f < 0`` inside, ``f > 0`` outside, ``f = 0`` on the surface. For a shape with
Lipschitz constant ``L`` (largest gradient norm of ``f``), ``|f| / L`` bounds the distance to
the surface from below; polyhedra and balls use exact distances (``L = 1``), star shapes use
``|p| / r(u) - 1``, whose gradient stays bounded everywhere. :func:`calibrate` measures volume,
centroid, principal axes, extents and ``L`` on a grid, so that the caller can scale any shape to
an exact equivalent diameter and, for rods and flakes, to an exact inertia aspect.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
from scipy.spatial.transform import Rotation


class Shape(Protocol):
    """An implicit solid: negative level inside, about distance-scaled."""

    bound: float  # radius of a sphere about the origin that contains the solid

    def level(self, p: np.ndarray) -> np.ndarray:
        """Level at points ``p`` (3, N) float32 -> (N,) float32."""
        ...


@dataclass(frozen=True)
class Ball:
    """Ball of ``radius`` about ``centre``."""

    centre: np.ndarray  # (3, 1) float32
    radius: float
    lipschitz = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "centre", np.asarray(self.centre, np.float32).reshape(3, 1))
        object.__setattr__(self, "radius", float(self.radius))

    @property
    def bound(self) -> float:  # noqa: D102
        return float(np.linalg.norm(self.centre)) + self.radius

    def level(self, p: np.ndarray) -> np.ndarray:  # noqa: D102
        d = p - self.centre
        return np.sqrt((d * d).sum(axis=0)) - self.radius


@dataclass(frozen=True)
class Planes:
    """Intersection of half-spaces ``n_k . p <= h_k`` (unit normals), capped by a ball."""

    normals: np.ndarray  # (K, 3) float32 unit vectors
    offsets: np.ndarray  # (K, 1) float32
    bound: float  # capping ball radius, keeps the solid bounded whatever the normals
    lipschitz = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "normals", np.asarray(self.normals, np.float32).reshape(-1, 3))
        object.__setattr__(self, "offsets", np.asarray(self.offsets, np.float32).reshape(-1, 1))
        object.__setattr__(self, "bound", float(self.bound))

    def level(self, p: np.ndarray) -> np.ndarray:  # noqa: D102
        z = self.normals @ p
        z -= self.offsets
        return np.maximum(z.max(axis=0), np.sqrt((p * p).sum(axis=0)) - self.bound)


@dataclass(frozen=True)
class Star:
    """Star-shaped solid ``|p| <= r(u)``, ``r = exp(sum_k a_k sin(f_k . u + phi_k))``.

    An optional dent multiplies ``r`` by ``1 - depth * exp((u . v - 1) / width)`` around ``v``.
    """

    freqs: np.ndarray  # (K, 3) float32
    amps: np.ndarray  # (K,) float32
    phases: np.ndarray  # (K, 1) float32
    dent_dir: np.ndarray  # (3,) float32 unit vector
    dent_depth: float = 0.0
    dent_width: float = 0.2

    def __post_init__(self) -> None:
        object.__setattr__(self, "freqs", np.asarray(self.freqs, np.float32).reshape(-1, 3))
        object.__setattr__(self, "amps", np.asarray(self.amps, np.float32).ravel())
        object.__setattr__(self, "phases", np.asarray(self.phases, np.float32).reshape(-1, 1))
        object.__setattr__(self, "dent_dir", np.asarray(self.dent_dir, np.float32).ravel())
        object.__setattr__(self, "dent_depth", float(self.dent_depth))
        object.__setattr__(self, "dent_width", float(self.dent_width))

    @property
    def bound(self) -> float:  # noqa: D102
        return float(np.exp(np.abs(self.amps).sum()))

    def radius(self, u: np.ndarray) -> np.ndarray:
        """Radius along unit directions ``u`` (3, N) -> (N,)."""
        z = self.freqs @ u
        z += self.phases
        r = np.exp(self.amps @ np.sin(z, out=z))
        if self.dent_depth > 0:
            r *= 1.0 - self.dent_depth * np.exp((self.dent_dir @ u - 1.0) / self.dent_width)
        return r

    def level(self, p: np.ndarray) -> np.ndarray:
        """``|p| / r(u) - 1``: unlike ``|p| - r(u)`` its gradient stays bounded at the origin."""
        rho = np.sqrt((p * p).sum(axis=0))
        return rho / self.radius(p / np.maximum(rho, 1e-12)) - 1.0


@dataclass(frozen=True)
class Moved:
    """``shape`` scaled by ``scale`` about the origin, then moved by ``offset``."""

    shape: Shape
    scale: float
    offset: np.ndarray  # (3, 1) float32

    def __post_init__(self) -> None:
        object.__setattr__(self, "offset", np.asarray(self.offset, np.float32).reshape(3, 1))
        object.__setattr__(self, "scale", float(self.scale))

    @property
    def bound(self) -> float:  # noqa: D102
        return self.scale * self.shape.bound + float(np.linalg.norm(self.offset))

    def level(self, p: np.ndarray) -> np.ndarray:  # noqa: D102
        return self.scale * self.shape.level((p - self.offset) / np.float32(self.scale))


@dataclass(frozen=True)
class Union:
    """Union of solids (minimum of their levels)."""

    parts: tuple[Shape, ...]

    @property
    def bound(self) -> float:  # noqa: D102
        return max(s.bound for s in self.parts)

    def level(self, p: np.ndarray) -> np.ndarray:  # noqa: D102
        return np.minimum.reduce([s.level(p) for s in self.parts])


def unit_vectors(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` uniformly random unit vectors, (n, 3) float64."""
    v = rng.normal(size=(n, 3))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _spread_normals(n: int, jitter: float, rng: np.random.Generator) -> np.ndarray:
    """About evenly spread unit normals (jittered Fibonacci sphere at a random rotation)."""
    k = np.arange(n) + 0.5
    z = 1.0 - 2.0 * k / n
    phi = np.pi * (1.0 + 5**0.5) * k
    r = np.sqrt(1.0 - z**2)
    v = np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=1)
    v = v @ Rotation.random(random_state=rng).as_matrix().T + rng.normal(0, jitter, (n, 3))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def random_star(rng: np.random.Generator, amplitude: tuple[float, float] = (0.15, 0.35)) -> Star:
    """A random star shape of mean radius about 1: lumpy at low frequency, rough at high.

    ``amplitude`` is the range of the overall log-radius perturbation; 10 random plane waves
    on the sphere of frequency 1-6 with amplitudes falling as 1 / frequency.
    """
    k = 10
    f = rng.uniform(1.0, 6.0, k)
    freqs = unit_vectors(k, rng) * f[:, None]
    amps = rng.normal(0.0, 1.0, k) / f
    amps *= rng.uniform(*amplitude) / np.sqrt((amps**2).sum() / 2)
    return Star(freqs, amps, rng.uniform(0, 2 * np.pi, k), unit_vectors(1, rng)[0])


def polyhedron_shape(rng: np.random.Generator) -> Shape:
    """Angular convex solid: 8-16 random half-spaces around the origin."""
    n = int(rng.integers(8, 17))
    return Planes(_spread_normals(n, 0.25, rng), rng.uniform(0.7, 1.0, n), 1.6)


def concave_shape(rng: np.random.Generator) -> Shape:
    """Either 2-3 overlapping star blobs, or a star with one deep dent."""
    if rng.random() < 0.5:
        parts: list[Shape] = [random_star(rng)]
        for _ in range(int(rng.integers(1, 3))):
            scale = rng.uniform(0.6, 1.0)
            offset = unit_vectors(1, rng)[0] * rng.uniform(0.6, 0.85) * (1.0 + scale)
            parts.append(Moved(random_star(rng), scale, offset))
        return Union(tuple(parts))
    star = random_star(rng, (0.08, 0.2))
    return Star(
        star.freqs,
        star.amps,
        star.phases,
        star.dent_dir,
        dent_depth=rng.uniform(0.4, 0.65),
        dent_width=rng.uniform(0.1, 0.3),
    )


def _prism(
    n_sides: tuple[int, int], half_height: float, rng: np.random.Generator, tips: bool
) -> Planes:
    """Prism along canonical z (``|z| <= half_height``) over a jittered polygon of inradius ~1."""
    n = int(rng.integers(*n_sides))
    ang = 2 * np.pi * (np.arange(n) + rng.uniform(-0.25, 0.25, n)) / n + rng.uniform(0, 2 * np.pi)
    normals = [np.stack([np.cos(ang), np.sin(ang), np.zeros(n)], axis=1)]
    offsets = [rng.uniform(0.85, 1.0, n)]
    normals.append(np.array([[0.0, 0.0, 1.0], [0.0, 0.0, -1.0]]))
    offsets.append(np.full(2, half_height))
    if tips:  # chisel or pyramid ends: planes through the axis tips, tilted off the axis
        for sign in (1.0, -1.0):
            m = int(rng.integers(1, 4))
            a = rng.uniform(0, 2 * np.pi, m)
            tilt = rng.uniform(1.5, 4.0, m)
            nt = np.stack([np.cos(a), np.sin(a), sign * tilt], axis=1)
            nt /= np.linalg.norm(nt, axis=1, keepdims=True)
            normals.append(nt)
            offsets.append(np.abs(nt[:, 2]) * half_height)
    bound = float(np.hypot(half_height, 2.0))
    return Planes(np.concatenate(normals), np.concatenate(offsets), bound)


def needle_shape(rng: np.random.Generator) -> Shape:
    """Rod before stretching: a prism with flat or pointed ends, or a noisy blob (spindle)."""
    if rng.random() < 0.65:
        return _prism((4, 9), 3.0, rng, tips=rng.random() < 0.5)
    return random_star(rng, (0.05, 0.15))


def flake_shape(rng: np.random.Generator) -> Shape:
    """Plate before flattening: a thin polygonal prism, or a noisy blob (lens)."""
    if rng.random() < 0.65:
        return _prism((5, 11), 0.3, rng, tips=False)
    return random_star(rng, (0.05, 0.15))


def ellipsoid_shape(rng: np.random.Generator) -> Shape:
    """Unit ball; the caller stretches it into a spheroid or ellipsoid."""
    return Ball(np.zeros(3), 1.0)


@dataclass(frozen=True)
class Calibration:
    """Geometry of a canonical shape measured on a grid.

    Attributes:
        volume: solid volume (canonical units cubed).
        centroid: (3,) centre of mass.
        axes: (3, 3) principal directions as columns, by decreasing variance.
        sigma: (3,) standard deviation of the solid along each principal axis.
        extent: (3,) largest absolute coordinate along each principal axis, about the centroid.
        lipschitz: bound on the level function's gradient near the surface.
    """

    volume: float
    centroid: np.ndarray
    axes: np.ndarray
    sigma: np.ndarray
    extent: np.ndarray
    lipschitz: float


def _grid(lo: np.ndarray, hi: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Cell centres of an ``n``^3 grid over the box [lo, hi]: (3, n^3) float32 and (3,) spacing."""
    h = (hi - lo) / n
    axes = [lo[k] + h[k] * (np.arange(n) + 0.5) for k in range(3)]
    grid = np.meshgrid(*axes, indexing="ij")
    return np.stack([g.ravel() for g in grid]).astype(np.float32), h


def calibrate(shape: Shape, n: int = 32) -> Calibration:
    """Measure a canonical shape on an ``n``^3 grid over its bounding box.

    A coarse pass over the bounding cube finds the box, so that thin solids (flakes) are
    resolved by ``n`` points across their thickness too.

    Args:
        shape: the solid.
        n: grid points per axis.

    Returns:
        Its :class:`Calibration`.

    Raises:
        ValueError: if the solid misses the grid.
    """
    b = shape.bound
    pts, h = _grid(np.full(3, -b), np.full(3, b), 20)
    inside = shape.level(pts) < 0
    if inside.sum() < 2:
        raise ValueError("calibrate: the shape is empty on the calibration grid")
    lo = np.maximum(pts[:, inside].min(axis=1) - h, -b)
    hi = np.minimum(pts[:, inside].max(axis=1) + h, b)
    pts, h = _grid(lo, hi, n)
    lev = shape.level(pts)
    inside = lev < 0
    p = pts[:, inside].astype(np.float64)
    centroid = p.mean(axis=1)
    var, axes = np.linalg.eigh(np.cov(p))
    order = np.argsort(var)[::-1]
    var, axes = var[order], axes[:, order]
    extent = np.abs(axes.T @ (p - centroid[:, None])).max(axis=1) + float(np.linalg.norm(h))
    lip = getattr(shape, "lipschitz", None)
    if lip is None:  # numerical gradient near the surface, with a safety margin
        grad = np.gradient(lev.reshape(n, n, n).astype(np.float64), *h)
        norm = np.sqrt(sum(g * g for g in grad)).ravel()
        near = lev < 0.5  # inside and near the surface: where clearances are used
        lip = 1.25 * float(norm[near].max()) if near.any() else 1.0
    return Calibration(
        volume=float(inside.sum()) * float(np.prod(h)),
        centroid=centroid,
        axes=axes,
        sigma=np.sqrt(np.maximum(var, 1e-12)),
        extent=extent,
        lipschitz=max(1.0, float(lip)),
    )

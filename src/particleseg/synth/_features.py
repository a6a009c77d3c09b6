"""Internal features of a particle body and its material-id evaluation (internal).

A body is an envelope (a canonical shape mapped into voxel space) plus optional features in
voxel coordinates about the particle centre: an inclusion of a second phase (a star blob), pores
(balls) and a crack (a thin disc). :meth:`Body.evaluate` gives each point's material id and its
clearance (a lower bound on the distance to the nearest material boundary), as
:func:`particleseg.synth._raster.rasterize` expects. Pores and cracks are empty but lie inside the
envelope, so they never change or split the particle's label.
"""

from __future__ import annotations

from dataclasses import dataclass

import cc3d
import numpy as np
from scipy.spatial.transform import Rotation

from particleseg.synth import _shapes

# material ids inside a particle body
OUTSIDE, HOST, INCLUSION, EMPTY = 0, 1, 2, 3


@dataclass(frozen=True)
class Placed:
    """A canonical shape mapped into voxel space: ``level(x) = shape.level(M @ x + shift)``."""

    shape: _shapes.Shape
    matrix: np.ndarray  # (3, 3)
    shift: np.ndarray  # (3,)
    lipschitz: float  # of the level as a function of x

    def __post_init__(self) -> None:
        object.__setattr__(self, "matrix", np.asarray(self.matrix, np.float32))
        object.__setattr__(self, "shift", np.asarray(self.shift, np.float32).reshape(3, 1))
        object.__setattr__(self, "lipschitz", float(self.lipschitz))

    def level(self, x: np.ndarray) -> np.ndarray:
        """Level at voxel-space points ``x`` (3, N) float32 -> (N,) (negative inside)."""
        return self.shape.level(self.matrix @ x + self.shift)


def _interior_points(
    env: Placed, half: np.ndarray, depth: float, rng: np.random.Generator
) -> np.ndarray:
    """Random points (3, N) at least ``depth`` voxels inside the envelope (possibly none)."""
    x = rng.uniform(-half, half, (1024, 3)).T.astype(np.float32)
    return x[:, -env.level(x) / env.lipschitz >= depth]


@dataclass(frozen=True)
class Body:
    """Envelope plus optional inclusion, pores and crack, evaluated as material ids."""

    envelope: Placed
    inclusion: Placed | None
    pores: np.ndarray  # (k, 4): centre (3,) and radius, voxels
    crack: np.ndarray | None  # (8,): centre (3,), unit normal (3,), half thickness, radius

    def evaluate(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Material ids (N,) and boundary clearance (N,) in voxels at points ``x`` (3, N)."""
        lev = self.envelope.level(x)
        clr = np.abs(lev) / self.envelope.lipschitz
        mat = (lev < 0).astype(np.uint8)  # HOST or OUTSIDE
        if self.inclusion is not None:
            li = self.inclusion.level(x)
            clr = np.minimum(clr, np.abs(li) / self.inclusion.lipschitz)
            mat[(mat == HOST) & (li < 0)] = INCLUSION
        empty = None
        for c in self.pores:
            d = x - c[:3, None]
            ball = np.sqrt((d * d).sum(axis=0)) - c[3]
            empty = ball if empty is None else np.minimum(empty, ball)
        if self.crack is not None:
            d = x - self.crack[:3, None]
            along = self.crack[3:6] @ d
            across = np.sqrt(np.maximum((d * d).sum(axis=0) - along * along, 0))
            slab = np.maximum(np.abs(along) - self.crack[6], across - self.crack[7])
            empty = slab if empty is None else np.minimum(empty, slab)
        if empty is not None:
            clr = np.minimum(clr, np.abs(empty))
            mat[(mat != OUTSIDE) & (empty < 0)] = EMPTY
        return mat, clr


def make_inclusion(
    env: Placed, half: np.ndarray, diameter: float, rng: np.random.Generator
) -> Placed | None:
    """A star blob of radius 0.25-0.45 d/2 centred at least half its radius inside."""
    radius = max(1.0, rng.uniform(0.25, 0.45) * diameter / 2)
    star = _shapes.random_star(rng, (0.08, 0.2))
    lip = _shapes.calibrate(star, n=16).lipschitz
    rot = Rotation.random(random_state=rng).as_matrix()
    centres = _interior_points(env, half, 0.5 * radius, rng)
    if centres.shape[1] == 0:
        return None
    matrix = rot.T / radius
    return Placed(star, matrix, -(matrix @ centres[:, 0]), lip / radius)


def make_pores(
    env: Placed, half: np.ndarray, diameter: float, n: int, rng: np.random.Generator
) -> np.ndarray:
    """Up to ``n`` pores (k, 4) of radius max(1.2, 0.05-0.12 d), fully inside the envelope."""
    out = []
    for _ in range(n):
        r = max(1.2, rng.uniform(0.05, 0.12) * diameter)
        pts = _interior_points(env, half, r + 0.75, rng)
        if pts.shape[1]:
            out.append([*pts[:, 0], r])
    return np.asarray(out, np.float32).reshape(-1, 4)


def make_crack(
    env: Placed, half: np.ndarray, diameter: float, rng: np.random.Generator
) -> np.ndarray | None:
    """A thin disc (thickness 0.4-1.2 voxel, radius 0.35-0.6 d/2) about an interior point."""
    pts = _interior_points(env, half, 1.5, rng)
    if pts.shape[1] == 0:
        return None
    normal = _shapes.unit_vectors(1, rng)[0]
    thickness = rng.uniform(0.4, 1.2)
    radius = rng.uniform(0.35, 0.6) * diameter / 2
    return np.array([*pts[:, 0], *normal, thickness / 2, radius], np.float32)


def largest_piece(mask: np.ndarray) -> np.ndarray:
    """The largest 6-connected piece of a boolean mask (empty stays empty)."""
    pieces, n = cc3d.connected_components(mask, connectivity=6, return_N=True)
    if n <= 1:
        return mask
    sizes = np.bincount(pieces.ravel())
    sizes[0] = 0
    return pieces == int(sizes.argmax())

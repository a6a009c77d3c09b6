"""Mutable state while composing one synthetic scene (internal; see :mod:`.scene`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from particleseg.synth._pieces import Piece, make_piece
from particleseg.synth._placement import VOID, Packer, Placed
from particleseg.synth.particles import render_particle

if TYPE_CHECKING:
    from particleseg.synth.scene import SceneParams


class Builder:
    """Mutable state while composing one scene: volumes, placement, per-particle records."""

    def __init__(self, shape: tuple[int, int, int], params: SceneParams, rng: np.random.Generator):
        self.p, self.rng = params, rng
        z, y, x = shape
        if params.container == "cylinder":
            radius = min(y, x) / 2 - params.cylinder_margin_px
            if radius < 4:
                raise ValueError(
                    f"resin cylinder radius {radius:.1f} px is too small for a {y}x{x} field of "
                    f"view with cylinder_margin_px={params.cylinder_margin_px}"
                )
            yy, xx = np.ogrid[:y, :x]
            r = np.hypot(yy - (y - 1) / 2, xx - (x - 1) / 2)
            self.radius: float | None = radius
            self.cylinder = np.clip(radius - r + 0.5, 0, 1).astype(np.float32)  # (Y, X)
            inside = r <= radius - 0.5
            cut = (params.cut_at_z_faces, False, False)
        else:  # "none": the matrix fills the field of view; every face may cut an object
            self.radius = None
            self.cylinder = np.ones((y, x), np.float32)
            inside = np.ones((y, x), bool)
            cut = (params.cut_at_z_faces, True, True)
        self.cylinder_volume = float(self.cylinder.sum()) * z
        self.packer = Packer(shape, inside, params.min_gap_px, cut, rng)
        self.frac = np.zeros(shape, np.float32)
        self.mu_sum = np.zeros(shape, np.float32)
        self.void = np.zeros(shape, np.float32)
        self.families = list(params.shape_weights)
        w = np.array([params.shape_weights[f] for f in self.families], float)
        self.weights = w / w.sum()
        lo, hi = np.log(params.material_mu_range)
        self.palette = np.exp(rng.uniform(lo, hi, params.n_materials))
        self.records: list[dict[str, Any]] = []
        self.partners: list[Placed] = []
        self.touching: list[bool] = []
        self.pairs: list[tuple[int, int]] = []
        self.particle_volume = 0.0
        self.n_failed = 0
        self.n_voids = {"spacer": 0, "bubble": 0}

    # -- drawing -----------------------------------------------------------------------------
    def diameters(self, volume: float, cap: int) -> list[float]:
        """Log-normal diameters until their sphere volumes add up to ``volume`` (at most cap)."""
        p, out, total = self.p, [], 0.0
        while total < volume and len(out) < cap:
            d = np.clip(
                self.rng.lognormal(np.log(p.size_median_px), p.size_sigma, 64), *p.size_range_px
            )
            for di in d:
                out.append(float(di))
                total += np.pi / 6 * di**3
                if total >= volume or len(out) >= cap:
                    break
        return out

    def material(self) -> float:
        """A particle attenuation: from the sample's palette, or drawn when it has none."""
        if len(self.palette):
            return float(self.palette[self.rng.integers(len(self.palette))])
        return float(np.exp(self.rng.uniform(*np.log(self.p.material_mu_range))))

    def inclusion_mu(self, host: float) -> float:
        """A second-phase attenuation from the material range, at least 1.4x away from the host."""
        lo, hi = np.log(self.p.material_mu_range)
        step = np.log(1.4)
        for _ in range(16):
            mu = float(np.exp(self.rng.uniform(lo, hi)))
            if abs(np.log(mu / host)) >= step:
                return mu
        return host * 1.4 if np.log(host) + step <= hi else host / 1.4

    # -- placing -----------------------------------------------------------------------------
    def _accumulate(self, target: np.ndarray, piece: Piece, g: tuple, loc: tuple) -> float:
        target[g] += piece.occupancy[loc]
        return float(piece.occupancy[loc].sum())

    def _want_touch(self) -> bool:
        n, t = len(self.records), sum(self.touching)
        return n > 0 and self.p.touching_fraction * (n + 1) > t + 1

    def _place_touching(self, piece: Piece) -> tuple[np.ndarray | None, int]:
        free = [i for i, t in enumerate(self.touching) if not t]
        pool = free if free else list(range(len(self.touching)))
        for i in self.rng.permutation(pool)[:3]:
            origin = self.packer.place_touching(piece, self.partners[i], 6)
            if origin is not None:
                return origin, int(i) + 1
        return None, 0

    def add_particle(self, diameter: float) -> None:
        p, rng = self.p, self.rng
        family = str(self.families[rng.choice(len(self.families), p=self.weights)])
        host = self.material()
        inclusion = self.inclusion_mu(host) if rng.random() < p.multiphase_prob else None
        crack = bool(rng.random() < p.crack_prob)
        n_pores = int(rng.integers(1, 5)) if rng.random() < p.pore_prob else 0
        aspect_range = p.needle_aspect_range if family == "needle" else p.flake_aspect_range
        part = render_particle(
            family,
            diameter,
            rng,
            mu=host,
            aspect_range=aspect_range,
            inclusion_mu=inclusion,
            crack=crack,
            n_pores=n_pores,
            supersample=p.supersample,
        )
        if not part.mask.any():  # below about one voxel
            self.n_failed += 1
            return
        piece = make_piece(part.occupancy, part.mu, part.mask, part.centre, p.min_gap_px, rng)
        origin, partner = self._place_touching(piece) if self._want_touch() else (None, 0)
        if origin is None:
            origin = self.packer.place_free(piece, p.max_tries)
        if origin is None:
            self.n_failed += 1
            return
        pid = len(self.records) + 1
        g, loc, mask = self.packer.commit(piece, origin, pid)
        self.particle_volume += self._accumulate(self.frac, piece, g, loc)
        self.mu_sum[g] += piece.mu[loc]
        self.partners.append(self.packer.placed(g, mask, pid))
        self.touching.append(partner > 0)
        if partner:
            self.touching[partner - 1] = True
            self.pairs.append((partner, pid))
        self.records.append(
            {
                "family": family,
                "mu": host,
                "inclusion_mu": inclusion,
                "diameter_px": diameter,
                "aspect": part.aspect,
                "features": part.features,
                "voxel_count": int(mask.sum()),
                "intended_voxel_count": int(piece.mask.sum()),
                "cut": int(mask.sum()) != int(piece.mask.sum()),
            }
        )

    def add_void(self, kind: str, diameter: float) -> None:
        family = "polyhedron" if kind == "spacer" else "ellipsoid"
        part = render_particle(family, diameter, self.rng, mu=0.0, supersample=self.p.supersample)
        if not part.mask.any():
            return
        piece = make_piece(
            part.occupancy, part.mu, part.mask, part.centre, self.p.min_gap_px, self.rng
        )
        origin = self.packer.place_free(piece, self.p.max_tries)
        if origin is None:
            return
        g, loc, _ = self.packer.commit(piece, origin, VOID)
        self._accumulate(self.void, piece, g, loc)
        self.n_voids[kind] += 1

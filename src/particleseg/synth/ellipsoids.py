"""Dense packs of random ellipsoids with exact instance labels, for tests and benchmarks.

Two kinds, because they stress a border-core round trip differently (REFERENCE.md):

- ``"touching"``: ellipsoids may overlap when placed, and each voxel of an overlap goes to the
  ellipsoid it lies deepest in (radial depth below the surface). Particles then share a face
  and stay convex-ish, as real touching grains do.
- ``"painted"``: ellipsoids are painted one over the other, later ones winning; many particles
  become ellipsoids with bites taken out, whose eroded cores can split.

In both, a particle that ends up in pieces keeps its largest 6-connected piece, so every label is
one connected particle; ids are 1..N consecutive (N can be below ``n`` when a placement fails or a
particle is swallowed).
"""

from __future__ import annotations

import cc3d
import fastremap
import numpy as np
from scipy.spatial.transform import Rotation


def _place_centres(shape, radii, min_gap_factor, rng, max_tries):
    """Random sequential placement: centres at least ``factor * (r_i + r_j)`` apart."""
    centres = []
    kept = []
    grid_cell = max(1.0, 2 * float(radii.max()))
    grid: dict[tuple[int, int, int], list[int]] = {}
    for i, r in enumerate(radii):
        for _ in range(max_tries):
            c = rng.uniform(0, 1, 3) * np.asarray(shape, float)
            key = tuple((c // grid_cell).astype(int))
            ok = True
            for dz in (-1, 0, 1):
                for dy in (-1, 0, 1):
                    for dx in (-1, 0, 1):
                        for j in grid.get((key[0] + dz, key[1] + dy, key[2] + dx), ()):
                            if np.linalg.norm(c - centres[j]) < min_gap_factor * (
                                r + radii[kept[j]]
                            ):
                                ok = False
                                break
                        if not ok:
                            break
                    if not ok:
                        break
                if not ok:
                    break
            if ok:
                grid.setdefault(key, []).append(len(centres))
                centres.append(c)
                kept.append(i)
                break
    return np.asarray(centres).reshape(-1, 3), np.asarray(kept, int)


def packed_ellipsoids(
    shape: tuple[int, int, int] = (256, 256, 256),
    n: int = 800,
    semi_axes: tuple[float, float] = (8.0, 20.0),
    mode: str = "touching",
    seed: int = 0,
    min_gap_factor: float = 0.75,
    max_tries: int = 200,
) -> np.ndarray:
    """Generate ``n`` random ellipsoids packed so that most touch.

    Args:
        shape: (Z, Y, X) volume shape.
        n: number of ellipsoids to place.
        semi_axes: (min, max) of the uniformly drawn semi-axes, in voxels.
        mode: ``"touching"`` or ``"painted"`` (see module docstring).
        seed: random seed; the same seed gives the same volume.
        min_gap_factor: centres are kept at least this times the sum of the two mean semi-axes
            apart; below 1 neighbours overlap and hence touch after the overlap is split.
        max_tries: placement attempts per ellipsoid before it is skipped.

    Returns:
        (Z, Y, X) uint32 instance labels, ids 1..N consecutive.
    """
    if mode not in ("touching", "painted"):
        raise ValueError(f"mode must be 'touching' or 'painted', got {mode!r}")
    rng = np.random.default_rng(seed)
    axes = rng.uniform(semi_axes[0], semi_axes[1], size=(n, 3))
    centres, kept = _place_centres(shape, axes.mean(axis=1), min_gap_factor, rng, max_tries)
    axes = axes[kept]
    rotations = Rotation.random(len(kept), random_state=rng).as_matrix()

    labels = np.zeros(shape, np.uint32)
    depth = np.full(shape, -np.inf, np.float32) if mode == "touching" else None
    for i, (c, a, rot) in enumerate(zip(centres, axes, rotations, strict=True), start=1):
        reach = float(a.max())
        lo = np.maximum(np.floor(c - reach).astype(int), 0)
        hi = np.minimum(np.ceil(c + reach).astype(int) + 1, shape)
        if np.any(hi <= lo):
            continue
        grids = np.meshgrid(*[np.arange(lo[k], hi[k]) + 0.0 for k in range(3)], indexing="ij")
        d = np.stack([g - c[k] for k, g in enumerate(grids)], axis=-1)
        local = d @ rot  # coordinates in the ellipsoid's frame
        rho = np.sqrt(((local / a) ** 2).sum(-1))  # 1 on the surface
        inside = rho <= 1.0
        box = tuple(slice(lo[k], hi[k]) for k in range(3))
        if mode == "painted":
            labels[box][inside] = i
            continue
        radial = np.sqrt((d**2).sum(-1))
        dep = np.where(inside, radial * (1.0 / np.maximum(rho, 1e-6) - 1.0), -np.inf)
        win = dep > depth[box]
        depth[box][win] = dep[win]
        labels[box][win] = i

    # Keep the largest 6-connected piece of each particle.
    pieces = cc3d.connected_components(labels, connectivity=6)
    piece_size = np.bincount(pieces.ravel())
    piece_owner = np.zeros(len(piece_size), np.uint32)
    piece_owner[pieces.ravel()] = labels.ravel()
    order = np.lexsort((-piece_size[1:], piece_owner[1:])) + 1  # by owner, biggest first
    first = np.ones(len(order), bool)
    first[1:] = piece_owner[order][1:] != piece_owner[order][:-1]
    keep = np.zeros(len(piece_size), bool)
    keep[order[first]] = True
    labels[~keep[pieces]] = 0
    labels, _ = fastremap.renumber(labels, preserve_zero=True, in_place=True)
    return labels.astype(np.uint32, copy=False)

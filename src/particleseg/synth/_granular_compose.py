"""Attenuation, labels, phase map and info of a granular scene from its grain fields (internal)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from particleseg.synth._granular_labels import adjacent_pairs, one_piece_per_label
from particleseg.synth.phases import AIR, MATRIX, PORE, material_codes
from particleseg.synth.scene import Scene

if TYPE_CHECKING:
    from particleseg.synth.granular import GranularParams


@dataclass(frozen=True)
class Grains:
    """Per-grain arrays of one packing of ``n`` grains (lengths in voxels).

    Attributes:
        pos: (n, 3) float64 seed centres (Z, Y, X).
        radius: (n,) float64 seed radii.
        rounded: (n,) bool, rounded (else angular) grains.
        k: (n,) float64 smooth-minimum width between planes.
        kb: (n,) float64 smooth-minimum width where the ball meets the planes.
        ball: (n,) float64 ball radius of rounded grains, 0 for none.
        facets: (n, F, 4) float64 facet unit normals and offsets from the seed.
        nfac: (n,) int64 facets in use.
        host: (n,) float64 attenuation of the grain's mineral.
        inclusion: (n, 5) float64 centre, radius and attenuation of a ball of a second phase
            (radius 0: none).
        pores: (n, 4, 4) float64 centre and radius of up to four empty pores (radius 0: none).
    """

    pos: np.ndarray
    radius: np.ndarray
    rounded: np.ndarray
    k: np.ndarray
    kb: np.ndarray
    ball: np.ndarray
    facets: np.ndarray
    nfac: np.ndarray
    host: np.ndarray
    inclusion: np.ndarray
    pores: np.ndarray


def _ball_fraction(coords: np.ndarray, centre: np.ndarray, radius: np.ndarray) -> np.ndarray:
    """Share of each voxel (3, m) inside a ball (m, 3) / (m,): ``clip(0.5 + r - dist, 0, 1)``."""
    dist = np.sqrt(((coords.T - centre) ** 2).sum(axis=1))
    return np.where(radius > 0, np.clip(0.5 + radius - dist, 0.0, 1.0), 0.0)


def _features(g: Grains, owner: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inclusion and pore shares of the voxels ``idx`` (flat) of their owners."""
    coords = np.stack(np.unravel_index(idx, owner.shape)).astype(np.float64)
    own = owner.ravel()[idx]
    inclusion = g.inclusion[own]
    f_inc = _ball_fraction(coords, inclusion[:, :3], inclusion[:, 3])
    f_pore = np.zeros(len(idx))
    for j in range(g.pores.shape[1]):
        pore = g.pores[own, j]
        if np.any(pore[:, 3] > 0):
            f_pore = np.maximum(f_pore, _ball_fraction(coords, pore[:, :3], pore[:, 3]))
    return f_inc, f_pore


def compose(
    p: GranularParams,
    g: Grains,
    weight: np.ndarray,
    cyl: tuple | None,
    owner: np.ndarray,
    second: np.ndarray,
    own: np.ndarray,
    other: np.ndarray,
    extra: dict[str, Any],
) -> Scene:
    """The :class:`Scene` of a packing.

    Args:
        p: the knobs.
        g: the grains.
        weight: (Y, X) float32 share of each column inside the sample (container).
        cyl: (cy, cx, radius) of the container, or None.
        owner: (Z, Y, X) int32 grain of each voxel's cell.
        second: (Z, Y, X) int32 the grain across the nearest face (-1: none).
        own: (Z, Y, X) float32 occupancy of the owner.
        other: (Z, Y, X) float32 occupancy of the second grain.
        extra: scalar facts to add to ``info``.

    Returns:
        The scene (see :func:`particleseg.synth.granular.render_granular`).
    """
    shape = owner.shape
    n = len(g.host)
    solid = own + other
    packing = float((solid * weight[None]).sum(dtype=np.float64)) / (
        float(weight.sum(dtype=np.float64)) * shape[0]
    )
    idx = np.flatnonzero(own > 0)
    f_inc, f_pore = _features(g, owner, idx)
    oi = owner.ravel()[idx]
    mu_own = (1.0 - f_pore) * (f_inc * g.inclusion[oi, 4] + (1.0 - f_inc) * g.host[oi])
    mu = ((1.0 - solid) * np.float32(p.matrix_mu) * weight[None]).astype(np.float32)
    flat = mu.reshape(-1)
    flat[idx] += (own.ravel()[idx] * mu_own).astype(np.float32)
    has_second = second >= 0
    mu[has_second] += other[has_second] * g.host[second[has_second]].astype(np.float32)

    labelled = solid >= 0.5
    from_owner = own >= other
    grain = np.where(from_owner, owner, second)
    present = np.zeros(n, bool)  # grains with labelled voxels: only their minerals get codes
    present[grain[labelled]] = True
    has_inc = g.inclusion[:, 3] > 0
    listed = present & has_inc
    codes, phase_mu = material_codes(np.concatenate([g.host[present], g.inclusion[listed, 4]]))
    host_code = np.full(n, PORE, np.uint8)
    host_code[present] = codes[: int(present.sum())]
    inc_code = host_code.copy()
    inc_code[listed] = codes[int(present.sum()) :]
    raw = np.where(labelled, grain + 1, 0).astype(np.uint32)
    phases = np.where(weight >= 0.5, np.uint8(MATRIX), np.uint8(AIR))
    phases = np.ascontiguousarray(np.broadcast_to(phases[None], shape))
    code = np.where(labelled, host_code[np.maximum(grain, 0)], phases).astype(np.uint8)
    flat_code = code.reshape(-1)
    sel = labelled.ravel()[idx] & from_owner.ravel()[idx]
    at = idx[sel]
    flat_code[at] = np.where(f_inc[sel] >= 0.5, inc_code[oi[sel]], flat_code[at])
    flat_code[at] = np.where(f_pore[sel] >= 0.5, np.uint8(PORE), flat_code[at])
    del grain, own, other, solid

    labels, source, moved, dropped = one_piece_per_label(raw)
    grain_of = source - 1  # grain index of each new id (entry 0 unused)
    code[moved] = host_code[grain_of[labels[moved]]]
    code[dropped] = phases[dropped]  # specks left by the gap field become matrix
    mu[dropped] = (np.float32(p.matrix_mu) * np.broadcast_to(weight[None], shape))[dropped]
    m = len(source) - 1
    pairs, _ = adjacent_pairs(labels)
    contacts = np.bincount(pairs.ravel(), minlength=m + 1)[1:]
    faces = np.zeros(m + 1, bool)
    for axis in range(3):
        for end in (0, -1):
            faces[np.take(labels, end, axis=axis)] = True
    src = grain_of[1:]
    features = []
    for i in src.tolist():
        names = [("inclusion", has_inc[i]), ("pores", bool(np.any(g.pores[i, :, 3] > 0)))]
        features.append(tuple(name for name, present in names if present))
    info: dict[str, Any] = {
        "n_particles": m,
        "touching_fraction": float((contacts > 0).mean()) if m else 0.0,
        "contacts_per_particle": float(contacts.mean()) if m else 0.0,
        "n_contacts": len(pairs),
        "packing_fraction": packing,
        **extra,
        "mu": [float(v) for v in g.host[src]],
        "inclusion_mu": [float(g.inclusion[i, 4]) if has_inc[i] else None for i in src.tolist()],
        "family": ["rounded" if g.rounded[i] else "angular" for i in src.tolist()],
        "diameter_px": [float(2 * g.radius[i]) for i in src.tolist()],
        "features": features,
        "voxel_count": np.bincount(labels.ravel(), minlength=m + 1)[1:].tolist(),
        "contacts": contacts.tolist(),
        "cut_by_face": faces[1:].tolist(),
        "container": p.container,
        "cylinder_radius_px": None if cyl is None else float(cyl[2]),
        "matrix_mu": float(p.matrix_mu),
        "resin_mu": float(p.matrix_mu),
        "void_voxels": 0,
        "phase_mu": [float(v) for v in phase_mu],
    }
    return Scene(mu, labels, np.zeros(shape, bool), info, code)

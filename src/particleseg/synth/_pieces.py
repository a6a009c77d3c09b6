"""An object (particle or void) prepared for placement: masks, surface, probes (internal)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.ndimage as ndi

CROSS = ndi.generate_binary_structure(3, 1)
_N_PROBES = 32


@dataclass(frozen=True)
class Piece:
    """A rendered object ready to place.

    Attributes:
        occupancy: (bz, by, bx) float32 fractional occupancy.
        mu: (bz, by, bx) float32 attenuation content.
        mask: (bz, by, bx) bool label mask.
        centre: (3,) float64 centroid in box coordinates.
        dilated: (bz + 2 pad, by + 2 pad, bx + 2 pad) bool, ``mask`` grown by the gap.
        pad: margin of ``dilated`` around the box.
        surface: (3, n) int64 box coordinates of the mask's 6-surface voxels.
        radius: largest distance from ``centre`` to a mask voxel, plus 0.5.
        probes: (3, k) int64 offsets of probe voxels from the rounded centre.
        probe_need: (k,) free distance each probe needs around it (depth + gap - 1).
    """

    occupancy: np.ndarray
    mu: np.ndarray
    mask: np.ndarray
    centre: np.ndarray
    dilated: np.ndarray
    pad: int
    surface: np.ndarray
    radius: float
    probes: np.ndarray
    probe_need: np.ndarray


def _ball_offsets(radius: float) -> np.ndarray:
    """(3, k) integer offsets with Euclidean length <= radius."""
    r = int(np.floor(radius))
    g = np.indices((2 * r + 1,) * 3).reshape(3, -1) - r
    return g[:, (g * g).sum(axis=0) <= radius * radius + 1e-9]


def surface_voxels(mask: np.ndarray) -> np.ndarray:
    """(3, n) coordinates of mask voxels with a 6-neighbour outside (or on the box edge)."""
    return np.stack(np.nonzero(mask & ~ndi.binary_erosion(mask, CROSS, border_value=0)))


def make_piece(
    occupancy: np.ndarray,
    mu: np.ndarray,
    mask: np.ndarray,
    centre: np.ndarray,
    gap: float,
    rng: np.random.Generator,
) -> Piece:
    """Precompute what placement needs about an object (see :class:`Piece`)."""
    pad = int(np.ceil(gap))
    surface = surface_voxels(mask).astype(np.int64)
    dilated = np.pad(mask, pad)
    ball = _ball_offsets(gap)
    grown = (surface + pad)[:, :, None] + ball[:, None, :]
    dilated[tuple(grown.reshape(3, -1))] = True
    coords = np.stack(np.nonzero(mask))
    radius = float(np.sqrt(((coords - centre[:, None]) ** 2).sum(axis=0)).max()) + 0.5
    c = np.round(centre).astype(np.int64)
    pick = rng.choice(coords.shape[1], min(_N_PROBES, coords.shape[1]), replace=False)
    probes = coords[:, pick]
    if mask[tuple(np.clip(c, 0, np.array(mask.shape) - 1))]:
        probes = np.concatenate([c[:, None], probes], axis=1)
    d2 = ((probes[:, :, None] - surface[:, None, :]) ** 2).sum(axis=0).min(axis=1)
    return Piece(
        occupancy=occupancy,
        mu=mu,
        mask=mask,
        centre=np.asarray(centre, np.float64),
        dilated=dilated,
        pad=pad,
        surface=surface,
        radius=radius,
        probes=probes - c[:, None],
        probe_need=np.sqrt(d2) + 0.5 + gap - 1.0,
    )

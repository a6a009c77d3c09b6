"""Phase maps of synthetic samples: which material fills each voxel (uint8 codes).

A phase map is what appearance randomization (:mod:`particleseg.transforms.appearance`) renders
from: every voxel carries one code (:mod:`particleseg.io.phase_codes`, part of the dataset
format), and a random intensity is drawn per code.

A voxel shared by several phases (partial volume) gets the one that fills most of it.
"""

from __future__ import annotations

import numpy as np

from particleseg.io.phase_codes import (  # noqa: F401 - re-exported for the generator
    AIR,
    MATERIAL0,
    MATRIX,
    MAX_MATERIALS,
    PHASE_CODES,
    PORE,
    VOID,
)


def material_codes(mus: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Phase codes for attenuations: distinct values ranked, or log-binned past 252 of them.

    Args:
        mus: (n,) float attenuations (> 0).

    Returns:
        ``(codes uint8 (n,), phase_mu float64 (m,))``: the code of each attenuation, and the
        attenuation of each material code ``MATERIAL0 + j`` (the bin's mean when binned).
    """
    mus = np.asarray(mus, np.float64)
    if mus.size == 0:
        return np.zeros(0, np.uint8), np.zeros(0)
    distinct, inverse = np.unique(mus, return_inverse=True)
    if len(distinct) > MAX_MATERIALS:
        edges = np.geomspace(distinct[0], distinct[-1] * (1 + 1e-9), MAX_MATERIALS + 1)
        bins = np.clip(np.searchsorted(edges, mus, side="right") - 1, 0, MAX_MATERIALS - 1)
        used, inverse = np.unique(bins, return_inverse=True)
        distinct = np.array([mus[bins == b].mean() for b in used])
    return (MATERIAL0 + inverse).astype(np.uint8), distinct


def particle_phases(
    labels: np.ndarray,
    content: np.ndarray,
    occupancy: np.ndarray,
    host_mu: np.ndarray,
    inclusion_mu: np.ndarray,
    out: np.ndarray,
) -> np.ndarray:
    """Write the phase of every labelled voxel into ``out`` (in place).

    Each voxel of particle ``k`` gets the phase whose attenuation is nearest to the mean
    attenuation of the particle's part of the voxel (``content / occupancy``): the host, the
    inclusion (when the particle has one), or :data:`PORE` for empty pores and cracks.

    Args:
        labels: (Z, Y, X) uint32 particle ids 1..N, 0 elsewhere.
        content: (Z, Y, X) float32 particle attenuation content (sum of fraction x mu).
        occupancy: (Z, Y, X) float32 particle envelope occupancy.
        host_mu: (N,) host attenuation per particle, in id order.
        inclusion_mu: (N,) inclusion attenuation per particle, NaN where there is none.
        out: (Z, Y, X) uint8 phase map to fill.

    Returns:
        The attenuation of each material code (see :func:`material_codes`).
    """
    host_mu = np.asarray(host_mu, np.float64)
    inclusion_mu = np.asarray(inclusion_mu, np.float64)
    has_inc = np.isfinite(inclusion_mu)
    codes, phase_mu = material_codes(np.concatenate([host_mu, inclusion_mu[has_inc]]))
    host_code = np.concatenate([[PORE], codes[: len(host_mu)]]).astype(np.uint8)
    inc_code = host_code.copy()
    inc_code[1:][has_inc] = codes[len(host_mu) :]
    inc_value = np.concatenate([[np.nan], np.where(has_inc, inclusion_mu, np.nan)])
    host_value = np.concatenate([[0.0], host_mu])
    where = labels > 0
    ids = labels[where]
    mean = content[where] / np.maximum(occupancy[where], 1e-6)
    d_host = np.abs(mean - host_value[ids])
    d_inc = np.abs(mean - inc_value[ids])  # NaN (never nearer) without an inclusion
    code = np.where(d_inc < d_host, inc_code[ids], host_code[ids])
    code[(mean < np.minimum(d_host, np.nan_to_num(d_inc, nan=np.inf)))] = PORE
    out[where] = code
    return phase_mu

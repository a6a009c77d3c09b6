"""One sample's scores (the instance metrics and the size-distribution errors) and which scans.

:func:`scans_digest` names the exact scans a test set was scored on. The synthetic generators
are seeded, but their grey values and particle placements depend on the code paths numpy,
OpenBLAS and numba pick per CPU (``benchmarks/scan_reproducibility.py``), so the same seed can
give another scan on another machine; scores are comparable only between reports whose digests
agree.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence

import numpy as np


def score_sample(
    prediction: np.ndarray,
    reference: np.ndarray,
    spacing: Sequence[float] | None,
    metrics: Mapping | None = None,
) -> dict:
    """Every score of one prediction against its reference.

    Args:
        prediction: (Z, Y, X) integer instance labels, 0 = background.
        reference: (Z, Y, X) integer instance labels of the same shape.
        spacing: Voxel size (z, y, x) for the size distribution; None = 1 voxel.
        metrics: Keyword arguments of :func:`particleseg.metrics.evaluate_instances`
            (the ``metrics`` config group).

    Returns:
        :func:`~particleseg.metrics.evaluate_instances`'s scores and counts, then
        :func:`~particleseg.metrics.distribution.size_distribution_errors`' relative errors.
    """
    from particleseg.metrics import evaluate_instances
    from particleseg.metrics.distribution import size_distribution_errors

    scores = evaluate_instances(prediction, reference, **(metrics or {}))
    sizes = size_distribution_errors(prediction, reference, spacing or (1, 1, 1))
    return {**scores, **sizes}


def sample_digest(image: np.ndarray, reference: np.ndarray) -> str:
    """SHA-256 of one test sample's content: the scan and its reference labels.

    Args:
        image: (Z, Y, X) scan, any dtype.
        reference: (Z, Y, X) integer instance labels.

    Returns:
        Hex digest of both arrays' shapes, dtypes and bytes (file formats do not matter).
    """
    h = hashlib.sha256()
    for array in (image, reference):
        a = np.ascontiguousarray(array)
        h.update(f"{a.dtype.str}{a.shape}\n".encode())
        h.update(memoryview(a).cast("B"))
    return h.hexdigest()


def scans_digest(samples: Iterable[tuple[str, str]]) -> str:
    """SHA-256 naming a test set's scans: its ``(sample name, sample_digest)`` pairs, any order."""
    h = hashlib.sha256()
    for name, digest in sorted(samples):
        h.update(f"{name}\0{digest}\n".encode())
    return h.hexdigest()

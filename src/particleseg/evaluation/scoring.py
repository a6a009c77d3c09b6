"""One sample's scores: the instance metrics and the size-distribution errors."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

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

"""Evaluation stage: find predictions, build the baselines, score samples against references.

Used by both ``evaluate`` (one method on a dataset) and the report (the model and every baseline
on every test set); :mod:`particleseg.metrics` holds the metrics themselves.
"""

from particleseg.evaluation.baselines import baseline_segmenter
from particleseg.evaluation.predictions import find_prediction
from particleseg.evaluation.scoring import sample_digest, scans_digest, score_sample

__all__ = [
    "baseline_segmenter",
    "find_prediction",
    "sample_digest",
    "scans_digest",
    "score_sample",
]

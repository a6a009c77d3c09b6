"""Instance segmentation metrics (numpy only; never imports torch).

``evaluate_instances(pred, ref)`` returns F1, F1_match, F1_instance, MergerRatio, SplitterRatio
and panoptic quality, all computed from one sparse :class:`OverlapTable`.
"""

from particleseg.metrics.instance import (
    METRIC_KEYS,
    SCORE_KEYS,
    SUM_KEYS,
    evaluate_instances,
    evaluate_table,
    greedy_match,
    pair_dice,
    pair_iou,
    pooled_scores,
)
from particleseg.metrics.overlap import OverlapTable, overlap_table, validate_label_pair

__all__ = [
    "METRIC_KEYS",
    "SCORE_KEYS",
    "SUM_KEYS",
    "OverlapTable",
    "evaluate_instances",
    "evaluate_table",
    "greedy_match",
    "overlap_table",
    "pair_dice",
    "pair_iou",
    "pooled_scores",
    "validate_label_pair",
]

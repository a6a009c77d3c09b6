"""Instance segmentation metrics: F1, F1_match, F1_instance, Merger/SplitterRatio, PQ.

The paper (section 4.1) names these metrics but its authors published no code for them; the
definitions below are this project's exact definitions (see REFERENCE.md, "Metrics").

All metrics are computed from one :class:`~particleseg.metrics.overlap.OverlapTable`: the voxels
are visited once, everything afterwards works on the sparse list of overlapping pairs.

Edge cases (decided here, identical for every caller):

* both volumes empty (no foreground in either): every score is 1.0 (``f1``, ``f1_match``,
  ``f1_instance``, ``pq``, ``sq``, ``rq``), both ratios 0.0, all counts 0;
* exactly one volume empty: every score is 0.0 (``f1`` too), both ratios 0.0;
* a ratio whose denominator is 0 is 0.0; ``sq`` is 0.0 when no pair passes the PQ threshold
  (while at least one volume is non-empty).
"""

from __future__ import annotations

import numpy as np

from particleseg.metrics.overlap import OverlapTable, overlap_table

__all__ = [
    "METRIC_KEYS",
    "SCORE_KEYS",
    "SUM_KEYS",
    "pooled_scores",
    "scores_from_sums",
    "evaluate_instances",
    "evaluate_table",
    "greedy_match",
    "pair_dice",
    "pair_iou",
]

#: Keys of the float scores returned by :func:`evaluate_instances`, all "higher is better".
SCORE_KEYS: tuple[str, ...] = ("f1", "f1_match", "f1_instance", "pq", "sq", "rq")

#: All keys returned by :func:`evaluate_instances`, in order.
METRIC_KEYS: tuple[str, ...] = (
    "f1",
    "f1_match",
    "f1_instance",
    "merger_ratio",
    "splitter_ratio",
    "pq",
    "sq",
    "rq",
    "tp",
    "fp",
    "fn",
    "n_pred",
    "n_ref",
    "n_mergers",
    "n_splitters",
    "pq_tp",
    "pq_fp",
    "pq_fn",
    "fg_intersection",
    "fg_total",
    "dice_sum",
    "iou_sum",
    "n_merged",
    "n_split",
)

#: The sums behind the scores (besides the counts), kept so that images can be pooled.
SUM_KEYS: tuple[str, ...] = METRIC_KEYS[-6:]


def pair_dice(table: OverlapTable) -> np.ndarray:
    """Dice coefficient of every overlapping pair of ``table``.

    Args:
        table: Overlap table of a prediction and a reference.

    Returns:
        ``(n_pairs,)`` float64, ``2 |p ∩ r| / (|p| + |r|)`` per pair, in ``(0, 1]``.
    """
    sizes = table.pred_sizes[table.pair_pred_index] + table.ref_sizes[table.pair_ref_index]
    return 2.0 * table.pair_count / sizes


def pair_iou(table: OverlapTable) -> np.ndarray:
    """Intersection over union of every overlapping pair of ``table``.

    Args:
        table: Overlap table of a prediction and a reference.

    Returns:
        ``(n_pairs,)`` float64, ``|p ∩ r| / |p ∪ r|`` per pair, in ``(0, 1]``.
    """
    sizes = table.pred_sizes[table.pair_pred_index] + table.ref_sizes[table.pair_ref_index]
    return table.pair_count / (sizes - table.pair_count)


def greedy_match(
    pred_index: np.ndarray,
    ref_index: np.ndarray,
    score: np.ndarray,
    threshold: float,
) -> np.ndarray:
    """One-to-one greedy matching of candidate pairs by descending score.

    Candidates with ``score >= threshold`` are visited by descending score; ties are visited in
    the order the candidates are given (for an :class:`OverlapTable` that is ``(pred id, ref id)``
    ascending, which makes the matching deterministic). A candidate is accepted when neither its
    predicted nor its reference particle has been matched yet.

    Args:
        pred_index: ``(n_pairs,)`` integer index of the predicted particle of each candidate.
        ref_index: ``(n_pairs,)`` integer index of the reference particle of each candidate.
        score: ``(n_pairs,)`` float score of each candidate (e.g. Dice).
        threshold: Candidates scoring below it are never matched.

    Returns:
        ``(n_matched,)`` int64 positions of the accepted candidates, in acceptance order.
    """
    candidates = np.flatnonzero(score >= threshold)
    order = candidates[np.argsort(-score[candidates], kind="stable")]
    used_pred: set[int] = set()
    used_ref: set[int] = set()
    accepted: list[int] = []
    for position, p, r in zip(
        order.tolist(), pred_index[order].tolist(), ref_index[order].tolist(), strict=True
    ):
        if p in used_pred or r in used_ref:
            continue
        used_pred.add(p)
        used_ref.add(r)
        accepted.append(position)
    return np.asarray(accepted, dtype=np.int64)


def _group_stats(
    owner_index: np.ndarray,
    member_fraction: np.ndarray,
    n_owners: int,
    merge_fraction: float,
) -> tuple[int, int]:
    """Count owners that hold >= 2 members each lying at least ``merge_fraction`` inside them.

    Returns:
        ``(n_groups, sum over groups of (group size - 1))``.
    """
    held = owner_index[member_fraction >= merge_fraction]
    group_size = np.bincount(held, minlength=n_owners)
    groups = group_size[group_size >= 2]
    return int(groups.size), int((groups - 1).sum())


def _check_fraction(name: str, value: float, low: float, high: float, low_open: bool) -> None:
    ok = (value > low if low_open else value >= low) and value <= high
    if not ok:
        bracket = "(" if low_open else "["
        raise ValueError(f"{name} must lie in {bracket}{low}, {high}], got {value}")


def evaluate_table(
    table: OverlapTable,
    *,
    match_threshold: float = 0.1,
    merge_fraction: float = 0.5,
    pq_iou: float = 0.5,
) -> dict[str, float | int]:
    """Compute all instance metrics from an overlap table.

    See :func:`evaluate_instances` for the definitions; this entry point lets a caller reuse
    one table for several parameter settings.

    Args:
        table: Overlap table of a prediction and a reference (:func:`overlap_table`).
        match_threshold: Minimum Dice of a pair to be matched for F1_match / F1_instance, in
            ``(0, 1]``.
        merge_fraction: Minimum fraction of a particle's voxels inside another particle for it
            to count towards a merger / splitter group, in ``(0, 1]``.
        pq_iou: A pair is a panoptic-quality true positive when its IoU is strictly above this
            value, in ``[0.5, 1)`` (which makes such pairs unique).

    Returns:
        The dictionary described in :func:`evaluate_instances`.

    Raises:
        ValueError: If a parameter lies outside its range.
    """
    _check_fraction("match_threshold", match_threshold, 0.0, 1.0, low_open=True)
    _check_fraction("merge_fraction", merge_fraction, 0.0, 1.0, low_open=True)
    if not 0.5 <= pq_iou < 1.0:
        raise ValueError(f"pq_iou must lie in [0.5, 1), got {pq_iou}")

    n_pred, n_ref = table.n_pred, table.n_ref
    dice = pair_dice(table)
    matched = greedy_match(table.pair_pred_index, table.pair_ref_index, dice, match_threshold)
    # Mergers: predicted particles holding >= 2 reference particles (each >= merge_fraction in).
    # Splitters: reference particles holding >= 2 predicted particles (roles swapped literally).
    ref_fraction = table.pair_count / table.ref_sizes[table.pair_ref_index]
    pred_fraction = table.pair_count / table.pred_sizes[table.pair_pred_index]
    n_mergers, merged = _group_stats(table.pair_pred_index, ref_fraction, n_pred, merge_fraction)
    n_splitters, split = _group_stats(table.pair_ref_index, pred_fraction, n_ref, merge_fraction)
    # Panoptic quality: pairs with IoU > pq_iou >= 0.5 are unique matches by construction.
    iou = pair_iou(table)
    iou = iou[iou > pq_iou]
    sums = {
        "tp": int(matched.size),
        "n_pred": n_pred,
        "n_ref": n_ref,
        "n_mergers": n_mergers,
        "n_splitters": n_splitters,
        "pq_tp": int(iou.size),
        "fg_intersection": int(table.fg_intersection),
        "fg_total": int(table.fg_pred + table.fg_ref),
        "dice_sum": float(dice[matched].sum()),
        "iou_sum": float(iou.sum()),
        "n_merged": merged,
        "n_split": split,
    }
    return scores_from_sums(sums)


def scores_from_sums(sums: dict) -> dict[str, float | int]:
    """Every metric from the counts and sums it is made of (one image, or several pooled).

    Args:
        sums: ``tp``, ``n_pred``, ``n_ref``, ``n_mergers``, ``n_splitters``, ``pq_tp``,
            ``fg_intersection``, ``fg_total``, ``dice_sum`` (Dice of the matched pairs),
            ``iou_sum`` (IoU of the PQ pairs), ``n_merged`` and ``n_split`` (the extra particles
            of the merger and splitter groups).

    Returns:
        The dictionary of :func:`evaluate_instances` (keys in :data:`METRIC_KEYS` order).
    """
    n_pred, n_ref, tp, pq_tp = sums["n_pred"], sums["n_ref"], sums["tp"], sums["pq_tp"]
    fg_total = sums["fg_total"]
    both_empty = n_pred == 0 and n_ref == 0
    f1 = 1.0 if fg_total == 0 else 2.0 * sums["fg_intersection"] / fg_total
    fp, fn = n_pred - tp, n_ref - tp
    pq_fp, pq_fn = n_pred - pq_tp, n_ref - pq_tp
    if both_empty:
        f1_match = f1_instance = sq = rq = pq = 1.0
    else:
        f1_match = 2.0 * tp / (2 * tp + fp + fn)
        f1_instance = sums["dice_sum"] / (tp + fp + fn)
        sq = sums["iou_sum"] / pq_tp if pq_tp else 0.0
        rq = pq_tp / (pq_tp + 0.5 * pq_fp + 0.5 * pq_fn)
        pq = sq * rq
    merger_ratio = sums["n_merged"] / n_ref if n_ref else 0.0
    splitter_ratio = sums["n_split"] / n_ref if n_ref else 0.0  # P is the reference's (eq. 6)
    return {
        "f1": float(f1),
        "f1_match": float(f1_match),
        "f1_instance": float(f1_instance),
        "merger_ratio": float(merger_ratio),
        "splitter_ratio": float(splitter_ratio),
        "pq": float(pq),
        "sq": float(sq),
        "rq": float(rq),
        "tp": int(tp),
        "fp": int(fp),
        "fn": int(fn),
        "n_pred": int(n_pred),
        "n_ref": int(n_ref),
        "n_mergers": int(sums["n_mergers"]),
        "n_splitters": int(sums["n_splitters"]),
        "pq_tp": int(pq_tp),
        "pq_fp": int(pq_fp),
        "pq_fn": int(pq_fn),
        **{k: sums[k] for k in SUM_KEYS},
    }


def pooled_scores(rows) -> dict[str, float | int]:
    """The metrics of several images pooled as one (stardist's ``by_image=False``).

    Counts and sums are added over the images before the scores are formed, so a scan with many
    particles weighs more than one with few; the mean of the per-image scores is the other view.
    Pooling equals scoring the images placed side by side in one volume.

    Args:
        rows: results of :func:`evaluate_instances` (any mapping with the :data:`SUM_KEYS` and
            ``tp``, ``n_pred``, ``n_ref``, ``n_mergers``, ``n_splitters``, ``pq_tp``).

    Raises:
        ValueError: for no rows.
    """
    rows = list(rows)
    if not rows:
        raise ValueError("pooled_scores: no images to pool")
    keys = ("tp", "n_pred", "n_ref", "n_mergers", "n_splitters", "pq_tp", *SUM_KEYS)
    return scores_from_sums({k: sum(r[k] for r in rows) for k in keys})


def evaluate_instances(
    pred: np.ndarray,
    ref: np.ndarray,
    *,
    match_threshold: float = 0.1,
    merge_fraction: float = 0.5,
    pq_iou: float = 0.5,
) -> dict[str, float | int]:
    """Score a predicted instance segmentation against a reference one.

    Definitions (``P``/``R``: foreground of prediction/reference; ``p``/``r``: one predicted /
    reference particle; Dice and IoU of a pair computed from voxel counts):

    * ``f1``: voxel-wise Dice of the foregrounds, ``2 |P ∩ R| / (|P| + |R|)``.
    * ``f1_match``: predicted and reference particles are matched one-to-one, greedily by
      descending Dice (ties broken by ``(pred id, ref id)`` ascending), among pairs with
      ``Dice >= match_threshold``; ``tp`` = matched pairs, ``fp`` = unmatched predictions,
      ``fn`` = unmatched references; ``f1_match = 2 tp / (2 tp + fp + fn)``.
    * ``f1_instance``: mean Dice over all instances, ``sum of matched pairs' Dice / (tp + fp +
      fn)`` (every matched pair counts its Dice once, every unmatched particle counts 0).
    * ``merger_ratio``: a predicted particle is a merger when two or more reference particles
      each have at least ``merge_fraction`` of their voxels inside it; its group is those
      reference particles. ``merger_ratio = sum over groups of (group size - 1) / n_ref``;
      ``n_mergers`` = number of merger predicted particles.
    * ``splitter_ratio``: the same with the roles of prediction and reference swapped
      literally: a reference particle is split when two or more predicted particles each have at
      least ``merge_fraction`` of their voxels inside it, and ``splitter_ratio = sum over groups
      of (group size - 1) / n_ref``: both ratios divide by the number of *reference* particles
      (the paper's P, eq. 5-6; versions before December 2026 divided this one by ``n_pred``);
      ``n_splitters`` = number of split reference particles.
    * ``pq``: panoptic quality. ``pq_tp`` = pairs with ``IoU > pq_iou`` (unique for
      ``pq_iou >= 0.5``), ``pq_fp = n_pred - pq_tp``, ``pq_fn = n_ref - pq_tp``;
      ``sq`` = mean IoU of those pairs, ``rq = pq_tp / (pq_tp + pq_fp / 2 + pq_fn / 2)``,
      ``pq = sq * rq``.

    Edge cases: both volumes empty gives 1.0 for every score and 0.0 for both ratios; exactly
    one empty gives 0.0 for every score (``f1`` included) and 0.0 for both ratios; a ratio
    with a zero denominator is 0.0; ``sq`` is 0.0 when ``pq_tp == 0`` and a volume is non-empty.

    Args:
        pred: Predicted instance labels, e.g. ``(Z, Y, X)``, any integer dtype; 0 is
            background, ids arbitrary non-negative integers (not necessarily consecutive).
        ref: Reference instance labels, same shape and conventions as ``pred``.
        match_threshold: Minimum Dice of a matched pair, in ``(0, 1]``.
        merge_fraction: Minimum fraction of a particle inside another for merger/splitter
            groups, in ``(0, 1]``.
        pq_iou: IoU threshold (strict) of a panoptic true positive, in ``[0.5, 1)``.

    Returns:
        A dict with the float scores ``f1``, ``f1_match``, ``f1_instance``, ``merger_ratio``,
        ``splitter_ratio``, ``pq``, ``sq``, ``rq`` and the int counts ``tp``, ``fp``, ``fn``,
        ``n_pred``, ``n_ref``, ``n_mergers``, ``n_splitters``, ``pq_tp``, ``pq_fp``, ``pq_fn``,
        then the sums the scores are made of (:data:`SUM_KEYS`: ``fg_intersection``,
        ``fg_total``, ``dice_sum``, ``iou_sum``, ``n_merged``, ``n_split``), which
        :func:`pooled_scores` adds over images (keys in the order of :data:`METRIC_KEYS`).

    Raises:
        ValueError: If the shapes differ (both are named), a dtype is not integer, an id is
            negative, or a parameter lies outside its range.

    Example:
        >>> import numpy as np
        >>> ref = np.array([[1, 1, 0, 2, 2]])
        >>> pred = np.array([[7, 7, 0, 7, 7]])
        >>> m = evaluate_instances(pred, ref)
        >>> m["f1"], m["n_mergers"], m["merger_ratio"]
        (1.0, 1, 0.5)
    """
    return evaluate_table(
        overlap_table(pred, ref),
        match_threshold=match_threshold,
        merge_fraction=merge_fraction,
        pq_iou=pq_iou,
    )

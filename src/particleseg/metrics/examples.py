"""Find typical successes and failures of a prediction: mergers, splits, missed particles.

For the qualitative part of an evaluation (the paper's figures of merged, split and missed
particles), from the same sparse overlap table as the scores (no torch).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from particleseg.metrics.instance import greedy_match, pair_dice
from particleseg.metrics.overlap import overlap_table

KINDS = ("success", "merger", "splitter", "missed")


def find_examples(
    pred: np.ndarray,
    ref: np.ndarray,
    *,
    per_kind: int = 1,
    match_threshold: float = 0.1,
    merge_fraction: float = 0.5,
    success_dice: float = 0.9,
) -> list[dict]:
    """Particles that show each kind of outcome, with where they are.

    * ``merger``: a predicted particle holding at least ``merge_fraction`` of two or more
      reference particles (as in MergerRatio); the largest groups first.
    * ``splitter``: a reference particle holding at least ``merge_fraction`` of two or more
      predicted particles (as in SplitterRatio); the largest groups first.
    * ``missed``: a reference particle left unmatched by F1_match's matching; smallest first
      (the small particles a model tends to lose).
    * ``success``: a matched pair with Dice >= ``success_dice`` whose reference particle
      touches another reference particle (separating touching particles is the hard part);
      the largest first.

    Args:
        pred: (Z, Y, X) predicted labels, any non-negative integer dtype.
        ref: (Z, Y, X) reference labels.
        per_kind: at most this many examples of each kind.
        match_threshold: as in :func:`particleseg.metrics.evaluate_instances`.
        merge_fraction: as in :func:`particleseg.metrics.evaluate_instances`.
        success_dice: Dice of a pair shown as a success.

    Returns:
        One dict per example: ``kind``, ``pred_ids`` and ``ref_ids`` (lists of int), ``center``
        (z, y, x) int voxel of the particle shown, ``size`` (its voxel count) and ``dice``
        (the pair's Dice for success, else None).
    """
    table = overlap_table(pred, ref)
    found: list[dict] = []
    ref_frac = table.pair_count / table.ref_sizes[table.pair_ref_index]
    pred_frac = table.pair_count / table.pred_sizes[table.pair_pred_index]
    for kind, owner, member, frac, sizes in (
        ("merger", table.pair_pred_index, table.pair_ref_index, ref_frac, table.pred_sizes),
        ("splitter", table.pair_ref_index, table.pair_pred_index, pred_frac, table.ref_sizes),
    ):
        keep = frac >= merge_fraction
        groups = np.bincount(owner[keep], minlength=len(sizes))
        owners = np.flatnonzero(groups >= 2)
        owners = owners[np.lexsort((-sizes[owners], -groups[owners]))][:per_kind]
        for o in owners.tolist():
            members = member[keep & (owner == o)].tolist()
            if kind == "merger":
                pred_ids, ref_ids = (
                    [int(table.pred_ids[o])],
                    [int(table.ref_ids[m]) for m in members],
                )
            else:
                ref_ids, pred_ids = (
                    [int(table.ref_ids[o])],
                    [int(table.pred_ids[m]) for m in members],
                )
            found.append(
                {
                    "kind": kind,
                    "pred_ids": pred_ids,
                    "ref_ids": ref_ids,
                    "size": int(sizes[o]),
                    "dice": None,
                }
            )

    dice = pair_dice(table)
    matched = greedy_match(table.pair_pred_index, table.pair_ref_index, dice, match_threshold)
    unmatched = np.ones(table.n_ref, bool)
    unmatched[table.pair_ref_index[matched]] = False
    missed = np.flatnonzero(unmatched)
    for r in missed[np.argsort(table.ref_sizes[missed], kind="stable")][:per_kind].tolist():
        found.append(
            {
                "kind": "missed",
                "pred_ids": [],
                "ref_ids": [int(table.ref_ids[r])],
                "size": int(table.ref_sizes[r]),
                "dice": None,
            }
        )

    good = matched[dice[matched] >= success_dice]
    touching = _touching_ref_ids(ref)
    good = good[np.isin(table.pair_ref[good], touching)]
    good = good[np.argsort(-table.ref_sizes[table.pair_ref_index[good]], kind="stable")]
    for g in good[:per_kind].tolist():
        found.append(
            {
                "kind": "success",
                "pred_ids": [int(table.pair_pred[g])],
                "ref_ids": [int(table.pair_ref[g])],
                "size": int(table.ref_sizes[table.pair_ref_index[g]]),
                "dice": float(dice[g]),
            }
        )
    for example in found:
        shown = pred if example["kind"] == "merger" else ref
        ids = example["pred_ids"] if example["kind"] == "merger" else example["ref_ids"]
        example["center"] = _center(shown, ids[0])
    return found


def _touching_ref_ids(ref: np.ndarray) -> np.ndarray:
    """Ids of reference particles that share a face with another particle."""
    ids = []
    for axis in range(ref.ndim):
        a = np.moveaxis(ref, axis, 0)
        lo, hi = a[:-1], a[1:]
        contact = (lo != hi) & (lo > 0) & (hi > 0)
        ids += [lo[contact], hi[contact]]
    return np.unique(np.concatenate(ids)) if ids else np.zeros(0, ref.dtype)


def _center(labels: np.ndarray, particle: int) -> tuple[int, int, int]:
    """The particle's voxel nearest its centroid (a centroid may lie outside a concave one)."""
    box = ndi.find_objects((labels == particle).astype(np.uint8))[0]
    mask = labels[box] == particle
    points = np.argwhere(mask)
    centroid = points.mean(axis=0)
    nearest = points[np.argmin(((points - centroid) ** 2).sum(axis=1))]
    return tuple(int(n + s.start) for n, s in zip(nearest, box, strict=True))

"""Cross-validation folds that never split a sample group.

Patches cut from one physical sample are not independent: if one lands in training and another in
validation, the validation score is optimistic. Folds are therefore built over *groups* (the
``group`` of each ``dataset.json`` entry; by default the sample name), balanced by sample count.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def group_kfold(groups: Sequence[str], n_folds: int = 5, seed: int = 0) -> list[np.ndarray]:
    """Assign samples to ``n_folds`` folds, keeping every group inside one fold.

    Groups are shuffled with ``seed``, then taken largest first and each put into the fold with
    the fewest samples so far (ties to the lowest fold index), so fold sizes differ by at most the
    size of the largest group.

    Args:
        groups: Group name per sample, length N.
        n_folds: Number of folds (>= 2).
        seed: Seed of the shuffle that breaks ties between equally large groups.

    Returns:
        ``n_folds`` sorted int64 index arrays (validation indices of each fold); together they
        hold every index ``0..N-1`` exactly once.

    Raises:
        ValueError: If ``n_folds < 2`` or there are fewer groups than folds.
    """
    if int(n_folds) != n_folds or n_folds < 2:
        raise ValueError(f"n_folds must be an integer >= 2, got {n_folds!r}")
    names, inverse, counts = np.unique(
        np.asarray(groups, dtype=str), return_inverse=True, return_counts=True
    )
    if len(names) < n_folds:
        raise ValueError(
            f"cannot make {n_folds} folds from {len(names)} sample group(s) "
            f"({', '.join(names[:5])}{'...' if len(names) > 5 else ''}): "
            f"use n_folds <= {len(names)} or fold=all"
        )
    order = np.random.default_rng(seed).permutation(len(names))
    order = order[np.argsort(-counts[order], kind="stable")]
    fold_of_group = np.empty(len(names), np.int64)
    sizes = np.zeros(n_folds, np.int64)
    for g in order:  # loop over groups (tens), not voxels
        f = int(np.argmin(sizes))
        fold_of_group[g] = f
        sizes[f] += counts[g]
    fold_of_sample = fold_of_group[inverse]
    return [np.flatnonzero(fold_of_sample == f) for f in range(n_folds)]


def split_fold(
    groups: Sequence[str], fold: int | str, n_folds: int = 5, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Training and validation indices of one fold.

    Args:
        groups: Group name per sample, length N.
        fold: ``0..n_folds-1``, or ``"all"`` to train on every sample and validate on the same
            samples (nnU-Net's "all" fold: no held-out estimate, every sample used for training).
        n_folds: Number of folds.
        seed: See :func:`group_kfold`.

    Returns:
        ``(train_indices, val_indices)``, sorted int64 arrays.

    Raises:
        ValueError: If ``fold`` is out of range.
    """
    n = len(groups)
    if isinstance(fold, str):
        if fold != "all":
            raise ValueError(f'fold must be an integer in 0..{n_folds - 1} or "all", got {fold!r}')
        everything = np.arange(n, dtype=np.int64)
        return everything, everything
    if not 0 <= int(fold) < n_folds:
        raise ValueError(f'fold must be in 0..{n_folds - 1} or "all", got {fold!r}')
    folds = group_kfold(groups, n_folds, seed)
    val = folds[int(fold)]
    train = np.setdiff1d(np.arange(n, dtype=np.int64), val)
    return train, val

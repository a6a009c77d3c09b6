"""Sparse overlap table between two instance label volumes.

Every instance metric in :mod:`particleseg.metrics.instance` is computed from one pass over the
voxels: :func:`overlap_table` counts the particle sizes of both volumes and the number of voxels
shared by every overlapping (predicted, reference) pair. Nothing afterwards touches the voxels, so
the metrics cost a few vectorized passes over the volume plus work proportional to the number of
overlapping pairs (a few per particle), never one full-volume mask per particle.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import fastremap
import numpy as np

__all__ = ["OverlapTable", "overlap_table", "validate_label_pair"]

#: Largest ``(n_pred + 1) * (n_ref + 1)`` for which pairs are counted with a dense
#: ``np.bincount`` (a 2**25 int64 histogram is 256 MiB); beyond it a sparse ``np.unique`` is used.
DENSE_PAIR_LIMIT = 2**25

#: Voxels per flat slab when counting pairs (bounds the temporaries to a few tens of MiB).
CHUNK_VOXELS = 2**21

#: Largest label id for which ids are mapped to a dense range by a lookup table
#: (``8 * 2**22`` bytes = 32 MiB); beyond it ``np.searchsorted`` is used.
_LUT_LIMIT = 2**22


@dataclass(frozen=True)
class OverlapTable:
    """Sizes of, and overlaps between, the particles of two label volumes.

    Attributes:
        pred_ids: ``(n_pred,)`` int64, the non-zero ids present in the prediction, ascending.
        ref_ids: ``(n_ref,)`` int64, the non-zero ids present in the reference, ascending.
        pred_sizes: ``(n_pred,)`` int64 voxel count of each predicted particle.
        ref_sizes: ``(n_ref,)`` int64 voxel count of each reference particle.
        pair_pred: ``(n_pairs,)`` int64 predicted id of each overlapping pair.
        pair_ref: ``(n_pairs,)`` int64 reference id of each overlapping pair.
        pair_count: ``(n_pairs,)`` int64 number of voxels the pair shares (always > 0). Pairs
            are sorted by ``(pair_pred, pair_ref)`` ascending and unique.
        pair_pred_index: ``(n_pairs,)`` int64 position of ``pair_pred`` in ``pred_ids``.
        pair_ref_index: ``(n_pairs,)`` int64 position of ``pair_ref`` in ``ref_ids``.
        fg_intersection: number of voxels that are foreground (> 0) in both volumes.
        fg_union: number of voxels that are foreground in at least one volume.
    """

    pred_ids: np.ndarray
    ref_ids: np.ndarray
    pred_sizes: np.ndarray
    ref_sizes: np.ndarray
    pair_pred: np.ndarray
    pair_ref: np.ndarray
    pair_count: np.ndarray
    pair_pred_index: np.ndarray
    pair_ref_index: np.ndarray
    fg_intersection: int
    fg_union: int

    @property
    def n_pred(self) -> int:
        """Number of predicted particles."""
        return int(self.pred_ids.size)

    @property
    def n_ref(self) -> int:
        """Number of reference particles."""
        return int(self.ref_ids.size)

    @property
    def n_pairs(self) -> int:
        """Number of overlapping (predicted, reference) pairs."""
        return int(self.pair_count.size)

    @property
    def fg_pred(self) -> int:
        """Number of foreground voxels in the prediction."""
        return int(self.pred_sizes.sum())

    @property
    def fg_ref(self) -> int:
        """Number of foreground voxels in the reference."""
        return int(self.ref_sizes.sum())


def _check_labels(name: str, labels: np.ndarray) -> None:
    """Raise ValueError unless ``labels`` is an integer array without negative values."""
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"{name} must be an integer label volume, got dtype {labels.dtype} "
            f"(shape {labels.shape})"
        )
    if labels.size == 0:
        return
    lowest, highest = (int(v) for v in fastremap.minmax(labels.reshape(-1)))
    if lowest < 0:
        raise ValueError(
            f"{name} contains negative ids (min {lowest}); ids must be >= 0 with 0 = background"
        )
    if highest > np.iinfo(np.int64).max:
        raise ValueError(f"{name} contains ids above the int64 range (max {highest})")


def validate_label_pair(pred: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Check that two label volumes can be compared.

    Args:
        pred: Predicted instance labels, any shape, integer dtype, ids >= 0.
        ref: Reference instance labels, same shape as ``pred``, integer dtype, ids >= 0.

    Returns:
        ``(pred, ref)`` as numpy arrays (not copied when they already are).

    Raises:
        ValueError: If the shapes differ (the message names both), a dtype is not an integer
            type (bool and float are rejected), or an array contains negative ids.
    """
    pred = np.asarray(pred)
    ref = np.asarray(ref)
    if pred.shape != ref.shape:
        raise ValueError(
            f"prediction and reference shapes differ: pred shape {pred.shape}, "
            f"ref shape {ref.shape}"
        )
    _check_labels("pred", pred)
    _check_labels("ref", ref)
    return pred, ref


def _ids_and_sizes(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Non-zero ids of ``labels`` (ascending, int64) and their voxel counts (int64)."""
    if labels.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    ids, counts = fastremap.unique(labels, return_counts=True)
    ids = np.asarray(ids).astype(np.int64, copy=False)
    counts = np.asarray(counts).astype(np.int64, copy=False)
    keep = ids != 0
    return ids[keep], counts[keep]


def _key_lut(ids: np.ndarray, scale: int) -> Callable[[np.ndarray], np.ndarray]:
    """Map label values to ``(position in ids + 1) * scale``, and 0 (background) to 0.

    Args:
        ids: ``(n,)`` int64 sorted non-zero ids; every non-zero value mapped must be one of them.
        scale: Multiplier folded into the mapping so that two mapped volumes add up to a key.

    Returns:
        A function from an integer array to an int64 array of the same shape.
    """
    codes = np.arange(1, ids.size + 1, dtype=np.int64) * np.int64(scale)
    if ids.size == 0 or int(ids[-1]) < _LUT_LIMIT:
        lut = np.zeros(int(ids[-1]) + 1 if ids.size else 1, dtype=np.int64)
        lut[ids] = codes
        return lambda values: np.take(lut, values)
    with_zero = np.concatenate([np.zeros(1, np.int64), ids])
    codes = np.concatenate([np.zeros(1, np.int64), codes])
    return lambda values: codes[np.searchsorted(with_zero, values.astype(np.int64, copy=False))]


def _pair_counts(
    pred: np.ndarray,
    ref: np.ndarray,
    pred_ids: np.ndarray,
    ref_ids: np.ndarray,
    chunk_voxels: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Count the shared voxels of every overlapping (pred, ref) particle pair.

    Each voxel gets the combined key ``(i_pred + 1) * (n_ref + 1) + (i_ref + 1)`` (0 for
    background), computed slab by slab so that temporaries stay small, and the keys are counted
    with ``np.bincount`` (dense, when the key space is at most :data:`DENSE_PAIR_LIMIT`) or
    ``np.unique`` on the voxels foreground in both volumes (sparse, otherwise).

    Args:
        pred: Predicted labels, any shape, integer dtype.
        ref: Reference labels, same shape as ``pred``.
        pred_ids: ``(n_pred,)`` int64 sorted non-zero ids of ``pred``.
        ref_ids: ``(n_ref,)`` int64 sorted non-zero ids of ``ref``.
        chunk_voxels: Voxels per slab, :data:`CHUNK_VOXELS` when None (raised to the dense key
            space, so that accumulating the histograms costs no more than filling them).

    Returns:
        ``(pred_index, ref_index, count)``: int64 positions in ``pred_ids`` / ``ref_ids`` and
        shared voxel counts (> 0) of the overlapping pairs, sorted by pred then ref position.
    """
    n_pred, n_ref = pred_ids.size, ref_ids.size
    stride = n_ref + 1
    n_keys = (n_pred + 1) * stride
    pred_key = _key_lut(pred_ids, stride)
    ref_key = _key_lut(ref_ids, 1)
    pred_flat = pred.reshape(-1)
    ref_flat = ref.reshape(-1)
    dense = n_keys <= DENSE_PAIR_LIMIT
    chunk_voxels = CHUNK_VOXELS if chunk_voxels is None else chunk_voxels
    step = max(chunk_voxels, n_keys) if dense else chunk_voxels

    histogram = np.zeros(n_keys if dense else 0, dtype=np.int64)
    sparse_keys: list[np.ndarray] = []
    sparse_counts: list[np.ndarray] = []
    for start in range(0, pred_flat.size, step):
        pred_chunk = pred_flat[start : start + step]
        ref_chunk = ref_flat[start : start + step]
        if dense:
            key = pred_key(pred_chunk)
            key += ref_key(ref_chunk)
            histogram += np.bincount(key, minlength=n_keys)
        else:
            both = (pred_chunk != 0) & (ref_chunk != 0)
            key = pred_key(pred_chunk[both])
            key += ref_key(ref_chunk[both])
            keys, counts = np.unique(key, return_counts=True)
            sparse_keys.append(keys)
            sparse_counts.append(counts.astype(np.int64, copy=False))

    if dense:
        table = histogram.reshape(n_pred + 1, stride)[1:, 1:]
        pred_index, ref_index = np.nonzero(table)
        counts = table[pred_index, ref_index]
        return pred_index.astype(np.int64), ref_index.astype(np.int64), counts
    if not sparse_keys:
        empty = np.zeros(0, np.int64)
        return empty, empty.copy(), empty.copy()
    keys, inverse = np.unique(np.concatenate(sparse_keys), return_inverse=True)
    counts = np.zeros(keys.size, np.int64)
    np.add.at(counts, inverse, np.concatenate(sparse_counts))
    return keys // stride - 1, keys % stride - 1, counts


def overlap_table(pred: np.ndarray, ref: np.ndarray) -> OverlapTable:
    """Build the sparse overlap table of two instance label volumes.

    Ids are mapped to a dense range and each voxel to one combined (pred, ref) key, counted with
    ``np.bincount`` (or, when ``(n_pred + 1) * (n_ref + 1)`` exceeds :data:`DENSE_PAIR_LIMIT`,
    with ``np.unique`` on the voxels foreground in both volumes). The volume is processed in flat
    slabs of a few million voxels, so the extra memory is a few slabs plus the histogram.

    Args:
        pred: Predicted instance labels, e.g. ``(Z, Y, X)``, any integer dtype; 0 is background,
            ids are arbitrary non-negative integers (not necessarily consecutive).
        ref: Reference instance labels, same shape and conventions as ``pred``.

    Returns:
        The :class:`OverlapTable` of the two volumes.

    Raises:
        ValueError: If the shapes differ, a dtype is not integer, or an id is negative.

    Example:
        >>> import numpy as np
        >>> t = overlap_table(np.array([[0, 5, 5]]), np.array([[2, 2, 0]]))
        >>> t.pair_pred.tolist(), t.pair_ref.tolist(), t.pair_count.tolist()
        ([5], [2], [1])
    """
    pred, ref = validate_label_pair(pred, ref)
    pred_ids, pred_sizes = _ids_and_sizes(pred)
    ref_ids, ref_sizes = _ids_and_sizes(ref)

    pred_index, ref_index, pair_count = _pair_counts(pred, ref, pred_ids, ref_ids)
    fg_intersection = int(pair_count.sum())
    fg_union = int(pred_sizes.sum() + ref_sizes.sum()) - fg_intersection
    return OverlapTable(
        pred_ids=pred_ids,
        ref_ids=ref_ids,
        pred_sizes=pred_sizes,
        ref_sizes=ref_sizes,
        pair_pred=pred_ids[pred_index],
        pair_ref=ref_ids[ref_index],
        pair_count=pair_count,
        pair_pred_index=pred_index,
        pair_ref_index=ref_index,
        fg_intersection=fg_intersection,
        fg_union=fg_union,
    )

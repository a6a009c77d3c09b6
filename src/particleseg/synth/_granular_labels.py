"""Label clean-up and contact statistics of granular scenes (internal).

A grain's voxels are normally one 6-connected piece; discretisation, a volume face, the gap
field or a thin neighbour can leave stray pieces. :func:`one_piece_per_label` keeps each label's
largest piece, gives every other piece to the label it shares most faces with, drops a piece
that touches no other grain when it is smaller than ``min_voxels``, and makes a larger one a
particle of its own (a grain cut in two by a face of the volume).
"""

from __future__ import annotations

import cc3d
import numpy as np


def adjacent_pairs(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Face-adjacent pairs of different non-zero labels and how many voxel faces they share.

    Args:
        labels: (Z, Y, X) integer labels, 0 background.

    Returns:
        ``pairs`` (m, 2) int64 with ``a < b`` per row, sorted, and ``faces`` (m,) int64.
    """
    keys = []
    n = int(labels.max()) + 1
    for axis in range(3):
        a = np.moveaxis(labels, axis, 0)
        x, y = a[:-1], a[1:]
        m = (x != y) & (x > 0) & (y > 0)
        lo = np.minimum(x[m], y[m]).astype(np.int64)
        hi = np.maximum(x[m], y[m]).astype(np.int64)
        keys.append(lo * n + hi)
    if not keys or sum(len(k) for k in keys) == 0:
        return np.zeros((0, 2), np.int64), np.zeros(0, np.int64)
    unique, faces = np.unique(np.concatenate(keys), return_counts=True)
    return np.stack([unique // n, unique % n], axis=1), faces


def one_piece_per_label(
    labels: np.ndarray, min_voxels: int = 8
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Make every label one 6-connected piece (see the module docstring).

    Args:
        labels: (Z, Y, X) uint32 labels, 0 background, ids 1..N (gaps allowed).
        min_voxels: isolated stray pieces smaller than this are dropped (set to 0).

    Returns:
        ``new`` (Z, Y, X) uint32 with ids 1..M consecutive in order of the original id
        (pieces that became particles of their own come after all others), ``source`` (M + 1,)
        int64 original id of each new id (``source[0] = 0``), ``moved`` (Z, Y, X) bool, the
        voxels of pieces that joined another label, and ``dropped`` (Z, Y, X) bool, the voxels
        of dropped pieces.
    """
    pieces, n_pieces = cc3d.connected_components(labels, connectivity=6, return_N=True)
    pieces = pieces.astype(np.int64, copy=False)
    owner = np.zeros(n_pieces + 1, np.int64)
    owner[pieces.ravel()] = labels.ravel()
    sizes = np.bincount(pieces.ravel(), minlength=n_pieces + 1)
    order = np.lexsort((-sizes[1:], owner[1:])) + 1  # by original id, largest piece first
    main = np.zeros(n_pieces + 1, bool)
    first = np.ones(len(order), bool)
    first[1:] = owner[order[1:]] != owner[order[:-1]]
    main[order[first]] = True
    final = owner.copy()  # original id of each piece's label
    is_new = np.zeros(n_pieces + 1, bool)
    drop = np.zeros(n_pieces + 1, bool)
    stray = np.flatnonzero(~main[1:]) + 1
    if len(stray):
        pairs, faces = adjacent_pairs(pieces)
        both = np.concatenate([pairs, pairs[:, ::-1]])
        counts = np.concatenate([faces, faces])
        keep = ~main[both[:, 0]] & main[both[:, 1]]
        both, counts = both[keep], counts[keep]
        best = np.zeros(n_pieces + 1, np.int64)
        most = np.zeros(n_pieces + 1, np.int64)
        for (a, b), c in zip(both.tolist(), counts.tolist(), strict=True):
            if c > most[a]:
                most[a], best[a] = c, b
        for a in stray.tolist():
            if best[a]:
                final[a] = owner[best[a]]
            elif sizes[a] < min_voxels:
                drop[a] = True
            else:
                is_new[a] = True
    originals = np.unique(final[1:][~is_new[1:] & ~drop[1:]])
    new_id = np.zeros(n_pieces + 1, np.int64)
    new_id[1:] = np.searchsorted(originals, final[1:]) + 1
    extra = np.flatnonzero(is_new)
    new_id[extra] = len(originals) + 1 + np.arange(len(extra))
    source = np.concatenate([[0], originals, owner[extra]]).astype(np.int64)
    new_id[drop] = 0
    moved_piece = ~main & ~is_new & ~drop
    moved_piece[0] = False
    return new_id[pieces].astype(np.uint32), source, moved_piece[pieces], drop[pieces]


def contact_counts(labels: np.ndarray, n: int) -> np.ndarray:
    """Number of distinct grains each grain shares a face with.

    Args:
        labels: (Z, Y, X) integer labels 0..n.
        n: number of grains.

    Returns:
        (n + 1,) int64, entry ``k`` the contacts of grain ``k`` (entry 0 is 0).
    """
    pairs, _ = adjacent_pairs(labels)
    return np.bincount(pairs.ravel(), minlength=n + 1)[: n + 1].astype(np.int64)

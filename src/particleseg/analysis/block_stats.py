"""Additive per-particle statistics of blocks of a label volume, and their merge by id.

The in-memory and chunked particle tables (:mod:`particleseg.analysis.properties`,
:mod:`particleseg.analysis.chunked`) both sum these over blocks, so a particle cut by block edges
gets the statistics it has whole:

- :class:`HistSpec`, :func:`hist_spec`: the grey-value histogram bins shared by all particles;
- :func:`block_stats`: voxel count, first and second moments, bounding box and, with an image,
  grey-value sums, extremes and histogram per particle of one block;
- :func:`merge_stats`: the statistics of the union of blocks; :func:`empty_stats`: of none.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

__all__ = ["MOMENTS", "PAIRS", "HistSpec", "block_stats", "empty_stats", "hist_spec", "merge_stats"]

#: Moment sums: count, first moments (z, y, x), second moments (zz, yy, xx, zy, zx, yx).
MOMENTS = ("n", "z", "y", "x", "zz", "yy", "xx", "zy", "zx", "yx")
#: The second moments' axis pairs.
PAIRS = {"zz": (0, 0), "yy": (1, 1), "xx": (2, 2), "zy": (0, 1), "zx": (0, 2), "yx": (1, 2)}


@dataclass(frozen=True)
class HistSpec:
    """Histogram bins shared by all particles.

    Attributes:
        bins: Number of equal bins (>= 1).
        lo: Lower edge of the first bin.
        hi: Upper edge of the last bin (included), > lo.
    """

    bins: int
    lo: float
    hi: float


def hist_spec(bins: int, hist_range: Sequence[float] | None, lo: float, hi: float) -> HistSpec:
    """Build the histogram bins from ``hist_range`` or, if None, the image's (min, max).

    Raises:
        ValueError: If bins < 1 or hist_range is not an increasing finite pair.
    """
    if int(bins) != bins or bins < 1:
        raise ValueError(f"hist_bins must be a positive integer, got {bins}")
    if hist_range is not None:
        lo, hi = (float(v) for v in hist_range)
        if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
            raise ValueError(f"hist_range must be finite (lo, hi) with hi > lo, got {hist_range}")
    elif not hi > lo:
        hi = lo + 1.0
    return HistSpec(int(bins), float(lo), float(hi))


def _compact(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique ids (int64) and each element's index into them (intp).

    A lookup table over ``[min, max]`` when the id span is small, else ``np.unique``.
    """
    lo, hi = int(ids.min()), int(ids.max())
    span = hi - lo + 1
    if span <= 4 * ids.size + 4096:
        shifted = (ids - ids.dtype.type(lo)).astype(np.intp, copy=False)
        present = np.bincount(shifted, minlength=span)
        where = np.flatnonzero(present)
        lut = np.zeros(span, np.intp)
        lut[where] = np.arange(len(where))
        return where.astype(np.int64) + lo, lut[shifted]
    uniq, inv = np.unique(ids, return_inverse=True)
    return uniq.astype(np.int64), inv.astype(np.intp, copy=False)


def empty_stats(bins: int | None) -> dict[str, np.ndarray]:
    """Statistics of a block without particles (all arrays of length 0)."""
    out: dict[str, np.ndarray] = {"id": np.zeros(0, np.int64)}
    for name in MOMENTS:
        out[name] = np.zeros(0, np.int64)
    out["lo"] = np.zeros((0, 3), np.int64)
    out["hi"] = np.zeros((0, 3), np.int64)
    if bins is not None:
        for name in ("isum", "isq", "imin", "imax"):
            out[name] = np.zeros(0, np.float64)
        out["hist"] = np.zeros((0, bins), np.int64)
    return out


def block_stats(
    lab: np.ndarray,
    img: np.ndarray | None,
    origin: Sequence[int],
    hist: HistSpec | None,
) -> dict[str, np.ndarray]:
    """Additive per-particle statistics of one block of the volume.

    Args:
        lab: (z, y, x) integer labels of the block (0 = background).
        img: (z, y, x) image of the block, or None.
        origin: Global voxel index of the block's first voxel.
        hist: Histogram bins (required with ``img``).

    Returns:
        Dict of arrays over the K ids present (sorted): ``id`` (K,) int64; moment sums
        ``n, z, y, x, zz, yy, xx, zy, zx, yx`` (K,) int64 in global voxel indices; ``lo``, ``hi``
        (K, 3) int64 half-open global bounding boxes; with an image ``isum``, ``isq``, ``imin``,
        ``imax`` (K,) float64 and ``hist`` (K, B) int64 counts.

    Raises:
        ValueError: If a label is negative.
    """
    bins = hist.bins if img is not None and hist is not None else None
    fg = lab != 0
    ids = lab[fg]
    if ids.size == 0:
        return empty_stats(bins)
    if ids.min() < 0:
        raise ValueError(f"labels must be >= 0, found {ids.min()} in the block at {tuple(origin)}")
    uniq, inv = _compact(ids)
    k = len(uniq)
    coords = np.nonzero(fg)
    out: dict[str, np.ndarray] = {"id": uniq}
    n = np.bincount(inv, minlength=k).astype(np.int64)
    first = [np.bincount(inv, weights=c, minlength=k).astype(np.int64) for c in coords]
    second = {
        name: np.bincount(inv, weights=coords[a] * coords[b], minlength=k).astype(np.int64)
        for name, (a, b) in PAIRS.items()
    }
    # Shift local sums to global indices exactly (int64): sum(c + o) = s + n o, etc.
    o = [int(v) for v in origin]
    out["n"] = n
    for axis, name in enumerate(("z", "y", "x")):
        out[name] = first[axis] + n * o[axis]
    for name, (a, b) in PAIRS.items():
        out[name] = second[name] + o[a] * first[b] + o[b] * first[a] + n * (o[a] * o[b])

    compact = np.zeros(lab.shape, np.int32 if k < 2**31 - 1 else np.int64)
    compact[fg] = inv + 1
    boxes = ndi.find_objects(compact, max_label=k)
    lo = np.array([[s.start for s in box] for box in boxes], np.int64).reshape(k, 3)
    hi = np.array([[s.stop for s in box] for box in boxes], np.int64).reshape(k, 3)
    out["lo"] = lo + np.asarray(o, np.int64)
    out["hi"] = hi + np.asarray(o, np.int64)

    if bins is not None:
        assert img is not None and hist is not None
        values = img[fg].astype(np.float64)
        out["isum"] = np.bincount(inv, weights=values, minlength=k)
        out["isq"] = np.bincount(inv, weights=values * values, minlength=k)
        out["imin"] = np.full(k, np.inf)
        out["imax"] = np.full(k, -np.inf)
        np.minimum.at(out["imin"], inv, values)
        np.maximum.at(out["imax"], inv, values)
        out["hist"] = _hist_counts(values, inv, k, hist)
    return out


def _hist_counts(values: np.ndarray, inv: np.ndarray, k: int, hist: HistSpec) -> np.ndarray:
    """Per-particle counts of values in the bins of ``hist``: (k, bins) int64.

    Bins are assigned exactly as ``np.histogram(values, bins, range=(lo, hi))`` does.
    """
    inside = (values >= hist.lo) & (values <= hist.hi)
    v = values[inside]
    edges = np.linspace(hist.lo, hist.hi, hist.bins + 1)
    index = ((v - hist.lo) * (hist.bins / (hist.hi - hist.lo))).astype(np.intp)
    index = np.clip(index, 0, hist.bins - 1)
    index[v < edges[index]] -= 1  # numpy's corrections for rounding near the edges
    index[(v >= edges[index + 1]) & (index != hist.bins - 1)] += 1
    flat = np.bincount(inv[inside] * hist.bins + index, minlength=k * hist.bins)
    return flat.astype(np.int64).reshape(k, hist.bins)


def merge_stats(parts: Sequence[dict[str, np.ndarray]], bins: int | None) -> dict[str, np.ndarray]:
    """Combine block statistics by id (sums added, boxes and extremes combined).

    Args:
        parts: Outputs of :func:`block_stats`.
        bins: Histogram bins, or None without an image.

    Returns:
        The statistics of the union of the blocks, same layout as :func:`block_stats`.
    """
    parts = [p for p in parts if len(p["id"])]
    if not parts:
        return empty_stats(bins)
    if len(parts) == 1:
        return parts[0]
    ids = np.concatenate([p["id"] for p in parts])
    uniq, inv = np.unique(ids, return_inverse=True)
    k = len(uniq)
    out: dict[str, np.ndarray] = {"id": uniq}
    for name in MOMENTS:
        acc = np.zeros(k, np.int64)
        np.add.at(acc, inv, np.concatenate([p[name] for p in parts]))
        out[name] = acc
    out["lo"] = np.full((k, 3), np.iinfo(np.int64).max, np.int64)
    out["hi"] = np.full((k, 3), np.iinfo(np.int64).min, np.int64)
    np.minimum.at(out["lo"], inv, np.concatenate([p["lo"] for p in parts]))
    np.maximum.at(out["hi"], inv, np.concatenate([p["hi"] for p in parts]))
    if bins is not None:
        for name, init, op in (
            ("isum", 0.0, np.add),
            ("isq", 0.0, np.add),
            ("imin", np.inf, np.minimum),
            ("imax", -np.inf, np.maximum),
        ):
            acc = np.full(k, init)
            op.at(acc, inv, np.concatenate([p[name] for p in parts]))
            out[name] = acc
        hist = np.zeros((k, bins), np.int64)
        np.add.at(hist, inv, np.concatenate([p["hist"] for p in parts]))
        out["hist"] = hist
    return out

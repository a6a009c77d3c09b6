"""How far a scan's grey values are from those a model was checked on: its input histogram.

A model file may store an *input reference*: the histograms of its normalized reference scans
(the scans of its training pool, normalized by the model's own scheme, so what the network saw
before augmentation). A new scan is normalized the same way, its bounded sample
(:func:`particleseg.transforms.normalization.sample_voxels`) is binned on the same edges, and
its distance to the nearest reference histogram is compared with a threshold stored beside them.
A scan beyond it gets a warning, never a refusal: the histogram cannot tell whether the model
copes, only that nothing like this scan was checked.

The distance is the 1-Wasserstein (earth mover's) distance between the two histograms, in units
of the network input: how far, on average, grey values must move to turn one histogram into the
other. It is 0 for identical histograms, does not depend on bin counts far apart being
zero (unlike a bin-by-bin distance), and is bounded by the width of the bin range.

The threshold is ``factor`` times the largest leave-one-out nearest-neighbour distance among the
reference scans (at least ``floor``): a scan is *far* when it is further from every reference
than the references are from each other, with margin.

- :func:`input_histogram`: a sample's normalized histogram on fixed edges;
- :func:`wasserstein_1d`: the distance between two histograms on the same edges;
- :func:`build_reference`: the reference from normalized samples of several scans;
- :func:`compare_to_reference`: a scan's distance, nearest reference and verdict;
- :func:`normalized_sample`: a scan's bounded sample, normalized by a scheme config.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from particleseg.transforms.normalization import (
    SAMPLE_BLOCK,
    SAMPLE_BLOCKS,
    fit_normalization,
    resolve_config,
    sample_voxels,
)

#: Bins of a reference histogram.
N_BINS = 64
#: Threshold = FACTOR x the largest leave-one-out nearest-neighbour distance of the references.
FACTOR = 3.0
#: Smallest threshold, in network-input units (references that are near copies of each other).
FLOOR = 0.02


def input_histogram(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """The fraction of finite ``values`` in each bin; values beyond the edges go to the end bins.

    Args:
        values: (n,) normalized voxel values, float; NaN and inf are left out.
        edges: (k + 1,) increasing bin edges.

    Returns:
        (k,) float64 fractions summing to 1.

    Raises:
        ValueError: no finite value, or edges not increasing.
    """
    edges = np.asarray(edges, dtype=np.float64)
    if edges.ndim != 1 or edges.size < 2 or not np.all(np.diff(edges) > 0):
        raise ValueError(f"histogram edges must be 1D and increasing, got {edges.size} edges")
    values = np.asarray(values, dtype=np.float64).ravel()
    values = values[np.isfinite(values)]
    if values.size == 0:
        raise ValueError("no finite value to build a histogram from")
    clipped = np.clip(values, edges[0], edges[-1])
    counts, _ = np.histogram(clipped, bins=edges)
    return counts / counts.sum()


def wasserstein_1d(p: np.ndarray, q: np.ndarray, edges: np.ndarray) -> float:
    """1-Wasserstein distance between two histograms on the same edges (mass at bin centres).

    Args:
        p: (k,) non-negative weights summing to 1.
        q: (k,) the same, for the other histogram.
        edges: (k + 1,) the bins' edges.

    Returns:
        ``sum |CDF_p - CDF_q| * bin spacing``, in the edges' units.

    Raises:
        ValueError: shapes that do not match the edges.
    """
    p, q, edges = (np.asarray(a, dtype=np.float64) for a in (p, q, edges))
    if p.shape != q.shape or p.ndim != 1 or edges.shape != (p.size + 1,):
        raise ValueError(
            f"histograms {p.shape} and {q.shape} need the same shape and {p.size + 1} edges, "
            f"got {edges.shape}"
        )
    centres = (edges[:-1] + edges[1:]) / 2
    gaps = np.diff(centres)
    return float(np.sum(np.abs(np.cumsum(p - q))[:-1] * gaps))


def build_reference(
    samples: Sequence[np.ndarray],
    names: Sequence[str],
    n_bins: int = N_BINS,
    factor: float = FACTOR,
    floor: float = FLOOR,
) -> dict[str, Any]:
    """The input reference of a model from normalized samples of its reference scans.

    The edges span the pooled 0.5-99.5% range of the samples, widened by half its width on each
    side, so a scan a little darker or brighter than all references still falls in distinct bins.

    Args:
        samples: one (n_i,) array of normalized voxel values per reference scan.
        names: a name per scan (stored, and named in the warning).
        n_bins: number of bins.
        factor: threshold = ``factor`` x the largest leave-one-out nearest-neighbour distance.
        floor: the smallest threshold.

    Returns:
        JSON-ready ``{"edges", "histograms", "names", "threshold", "loo_distances", "rule"}``.

    Raises:
        ValueError: no sample, names that do not match, a sample without finite values.
    """
    if not samples or len(samples) != len(names):
        raise ValueError(
            f"need one name per sample, got {len(samples)} samples, {len(names)} names"
        )
    finite = [np.asarray(s, dtype=np.float64)[np.isfinite(s)] for s in samples]
    if any(s.size == 0 for s in finite):
        raise ValueError("a reference sample has no finite value")
    lo = min(float(np.quantile(s, 0.005)) for s in finite)
    hi = max(float(np.quantile(s, 0.995)) for s in finite)
    width = max(hi - lo, 1e-6)
    edges = np.linspace(lo - width / 2, hi + width / 2, n_bins + 1)
    hists = [input_histogram(s, edges) for s in finite]
    loo = []
    for i, h in enumerate(hists):
        others = [wasserstein_1d(h, g, edges) for j, g in enumerate(hists) if j != i]
        loo.append(min(others) if others else 0.0)
    threshold = max(floor, factor * max(loo))
    return {
        "edges": [float(e) for e in edges],
        "histograms": [[float(v) for v in h] for h in hists],
        "names": [str(n) for n in names],
        "threshold": float(threshold),
        "loo_distances": [float(d) for d in loo],
        "rule": {"factor": float(factor), "floor": float(floor)},
    }


def check_reference(reference: Mapping[str, Any]) -> dict[str, Any]:
    """A stored reference, validated (shapes, a positive threshold).

    Raises:
        ValueError: a missing key or inconsistent shapes; the message names them.
    """
    try:
        edges = np.asarray(reference["edges"], dtype=np.float64)
        hists = np.asarray(reference["histograms"], dtype=np.float64)
        names = list(reference["names"])
        threshold = float(reference["threshold"])
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"input reference: missing or invalid key ({err})") from err
    if hists.ndim != 2 or edges.shape != (hists.shape[1] + 1,) or len(names) != len(hists):
        raise ValueError(
            f"input reference: {len(hists)} histograms of shape {hists.shape[1:]}, "
            f"{edges.size} edges and {len(names)} names do not match"
        )
    if not threshold > 0:
        raise ValueError(f"input reference: threshold must be > 0, got {threshold}")
    return dict(reference)


def compare_to_reference(values: np.ndarray, reference: Mapping[str, Any]) -> dict[str, Any]:
    """A scan's normalized sample against a model's input reference.

    Args:
        values: (n,) the scan's sampled voxel values, normalized by the model's scheme.
        reference: from :func:`build_reference`.

    Returns:
        ``{"distance", "nearest", "threshold", "far"}``: the distance to the nearest reference
        histogram, that reference's name, the stored threshold, and whether it is exceeded.
    """
    ref = check_reference(reference)
    edges = np.asarray(ref["edges"])
    hist = input_histogram(values, edges)
    dists = [wasserstein_1d(hist, np.asarray(h), edges) for h in ref["histograms"]]
    i = int(np.argmin(dists))
    return {
        "distance": float(dists[i]),
        "nearest": ref["names"][i],
        "threshold": float(ref["threshold"]),
        "far": bool(dists[i] > ref["threshold"]),
    }


def normalized_sample(scan: Any, config: Mapping[str, Any]) -> np.ndarray:
    """A scan's bounded voxel sample normalized by a scheme, as predict normalizes it.

    Args:
        scan: (Z, Y, X) array-like (numpy, memmap, zarr).
        config: a normalization scheme config (see
            :func:`particleseg.transforms.normalization.resolve_config`).

    Returns:
        (n,) float32 normalized values of :func:`sample_voxels`'s sample.
    """
    cfg = resolve_config(config)
    values = sample_voxels(scan, cfg.get("n_blocks", SAMPLE_BLOCKS), cfg.get("block", SAMPLE_BLOCK))
    finite = values[np.isfinite(values)] if values.dtype.kind == "f" else values
    return fit_normalization(finite, cfg)(finite)


__all__ = [
    "build_reference",
    "check_reference",
    "compare_to_reference",
    "input_histogram",
    "normalized_sample",
    "wasserstein_1d",
]

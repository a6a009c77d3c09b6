"""Tune the post-processing thresholds of a trained model on validation data (in memory).

predict turns the network's border-core map into particles with a few thresholds: the small-core
rule of :func:`~particleseg.targets.demote_small_cores` (``small_core_distance``,
``small_core_fraction``) and the small-particle filter (``min_relative_size``). This grid search
picks the combination that maximizes a metric (F1_instance by default) over labelled validation
scans, from border-core maps that predict kept (``outputs.border_core=true``).

The instances are made exactly as predict makes them (on the network grid, then nearest back to
the scan's grid, then the filter), but in memory: validation scans are small.
"""

from __future__ import annotations

import itertools

import numpy as np

from particleseg.metrics import evaluate_instances
from particleseg.nearest_index import nearest_source_index
from particleseg.targets import MIN_RELATIVE_SIZE, border_core_to_instance, filter_small_particles

CORE_KEYS = ("small_core_distance", "small_core_fraction")

DEFAULT_GRID = {
    "small_core_distance": [1.0, 2.0],
    "small_core_fraction": [0.9, 0.95],
    "min_relative_size": [0.005, 0.01, 0.02, 0.05, 0.1, 0.2],
}


def instances_on_scan_grid(
    border_core: np.ndarray,
    scan_shape: tuple[int, int, int],
    *,
    min_relative_size: float = MIN_RELATIVE_SIZE,
    **core_rule,
) -> np.ndarray:
    """Predict's post-processing in memory: instances, nearest back to the scan, filter.

    Args:
        border_core: (z, y, x) uint8 border-core map on the network grid.
        scan_shape: the scan's shape (Z, Y, X).
        min_relative_size: small-particle filter, see :func:`filter_small_particles`.
        **core_rule: keyword arguments of :func:`border_core_to_instance`.

    Returns:
        (Z, Y, X) uint32 labels, ids 1..N.
    """
    labels = border_core_to_instance(np.asarray(border_core), **core_rule)
    return filter_small_particles(_to_scan_grid(labels, scan_shape), min_relative_size)


def _to_scan_grid(labels: np.ndarray, scan_shape) -> np.ndarray:
    if len(scan_shape) != 3:
        raise ValueError(f"scan_shape must have 3 axes, got {tuple(scan_shape)}")
    index = [nearest_source_index(n, s) for n, s in zip(labels.shape, scan_shape, strict=True)]
    return labels[np.ix_(*index)]


def tune_postprocess(
    border_cores: list[np.ndarray],
    references: list[np.ndarray],
    grid: dict[str, list] | None = None,
    metric: str = "f1_instance",
    fixed: dict | None = None,
) -> dict:
    """Grid search of the post-processing thresholds over labelled scans.

    Each combination of the small-core rule is run once per scan; the filter thresholds are then
    tried on its labels (the filter does not change the instances it keeps).

    Args:
        border_cores: per scan, the (z, y, x) uint8 border-core map on the network grid.
        references: per scan, the (Z, Y, X) reference labels on the scan's grid.
        grid: values to try per key (``small_core_distance``, ``small_core_fraction``,
            ``min_relative_size``); default :data:`DEFAULT_GRID`. Missing keys keep the
            defaults of :func:`border_core_to_instance`.
        metric: key of :func:`~particleseg.metrics.evaluate_instances` to maximize (its mean
            over the scans).
        fixed: other keyword arguments of :func:`border_core_to_instance` (e.g.
            ``small_core_max_distance``, ``connectivity``).

    Returns:
        ``{"params": best thresholds, "score": its mean metric, "metric": metric,
        "n_scans": ..., "table": one row per combination with the mean of every score}``;
        ties keep the first combination in grid order.

    Raises:
        ValueError: no scans, unequal list lengths, or an unknown grid key.
    """
    if not border_cores or len(border_cores) != len(references):
        raise ValueError(
            f"need one reference per border-core map, got {len(border_cores)} maps and "
            f"{len(references)} references"
        )
    grid = dict(DEFAULT_GRID if grid is None else grid)
    unknown = set(grid) - {*CORE_KEYS, "min_relative_size"}
    if unknown:
        raise ValueError(
            f"unknown grid keys {sorted(unknown)}; tunable: {[*CORE_KEYS, 'min_relative_size']}"
        )
    core_keys = [k for k in CORE_KEYS if k in grid]
    sizes = list(grid.get("min_relative_size", [0.005]))
    scores: dict[tuple, list[dict]] = {}
    for core_values in itertools.product(*(grid[k] for k in core_keys)):
        rule = {**(fixed or {}), **dict(zip(core_keys, core_values, strict=True))}
        for border_core, reference in zip(border_cores, references, strict=True):
            reference = np.asarray(reference)
            labels = _to_scan_grid(
                border_core_to_instance(np.asarray(border_core), **rule), reference.shape
            )
            for size in sizes:
                pred = filter_small_particles(labels, size)
                scores.setdefault((*core_values, size), []).append(
                    evaluate_instances(pred, reference)
                )
    table = []
    for key, rows in scores.items():
        params = {**dict(zip([*core_keys, "min_relative_size"], key, strict=True))}
        means = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
        table.append({**params, **means})
    best = max(table, key=lambda row: row[metric])  # first of equal maxima
    params = {k: best[k] for k in [*core_keys, "min_relative_size"]}
    return {
        "params": params,
        "score": best[metric],
        "metric": metric,
        "n_scans": len(border_cores),
        "table": table,
    }

"""Grid search of ThreshWater's parameters on labelled volumes, and JSON persistence.

The paper tunes ThreshWater's erosion amounts on the training set; here the threshold offset
(a fraction of each image's robust intensity range, added to its Otsu threshold) is tuned
together with them.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from particleseg.baselines.threshwater import (
    _check_connectivity,
    distance_to_background,
    intensity_stats,
    open_mask,
    resolve_threshold,
    seeded_watershed,
    validate_image,
)
from particleseg.io._atomic import write_json_atomic
from particleseg.metrics import SCORE_KEYS, evaluate_instances

__all__ = ["PARAM_KEYS", "load_params", "save_params", "tune_threshwater"]

#: Keys of the ``"params"`` dict returned by :func:`tune_threshwater` (keyword arguments of
#: :func:`~particleseg.baselines.threshwater.threshwater`).
PARAM_KEYS: tuple[str, ...] = ("threshold_offset", "noise_erosion", "seed_erosion", "connectivity")


def _plain(value: Any) -> Any:
    """Numpy scalars to Python scalars (for JSON), other values unchanged."""
    return value.item() if isinstance(value, np.generic) else value


def tune_threshwater(
    images: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    *,
    threshold_offsets: Sequence[float] = (-0.1, -0.05, 0.0, 0.05, 0.1),
    noise_erosions: Sequence[float] = (0, 1, 2),
    seed_erosions: Sequence[float] = (1, 2, 3, 4, 5, 6),
    metric: str = "f1_instance",
    connectivity: int = 1,
    progress: bool = True,
) -> dict[str, Any]:
    """Grid search of ThreshWater's parameters maximizing a mean instance metric.

    Every combination of ``threshold_offsets x noise_erosions x seed_erosions`` is scored by the
    mean over the volumes of ``evaluate_instances(threshwater(image, ...), label)[metric]``
    (the threshold itself is Otsu's, per image). Work is shared across the grid: each image's
    Otsu threshold and robust range are computed once, the thresholded and opened mask and its
    distance transform once per (offset, noise erosion), and only the seeded watershed runs per
    seed erosion. One image's intermediate volumes are held in memory at a time.

    Args:
        images: Greyscale volumes ``(Z, Y, X)``, real dtype, finite.
        labels: Reference instance labels, one per image, same shapes, integer dtype.
        threshold_offsets: Candidate ``threshold_offset`` values (fractions of the robust range).
        noise_erosions: Candidate ``noise_erosion`` radii (voxels, >= 0).
        seed_erosions: Candidate ``seed_erosion`` distances (voxels, >= 0).
        metric: Key of :func:`~particleseg.metrics.evaluate_instances` to maximize; one of the
            higher-is-better scores ``f1``, ``f1_match``, ``f1_instance``, ``pq``, ``sq``,
            ``rq``.
        connectivity: Passed to ThreshWater unchanged (not tuned).
        progress: Show a progress bar.

    Returns:
        ``{"params": {...}, "score": float, "metric": str, "grid": [...]}``: ``params`` holds
        the best ``threshold_offset``, ``noise_erosion``, ``seed_erosion`` and
        ``connectivity`` (ready for ``threshwater(image, **result["params"])``), ``score`` its
        mean metric, and ``grid`` one dict per combination (in grid order) with the three tuned
        parameters, ``score`` (the mean) and ``scores`` (one per image). Ties go to the first
        combination in grid order.

    Raises:
        ValueError: If there are no images, images and labels differ in number or shape, the
            metric is unknown or not a score, a candidate list is empty or negative, or an image
            is invalid (see :func:`~particleseg.baselines.threshwater.threshwater`).
    """
    if metric not in SCORE_KEYS:
        raise ValueError(f"metric must be one of {SCORE_KEYS} (higher is better), got {metric!r}")
    if len(images) != len(labels):
        raise ValueError(f"got {len(images)} images but {len(labels)} label volumes")
    if len(images) == 0:
        raise ValueError("tune_threshwater needs at least one labelled volume")
    candidates = {
        "threshold_offset": [float(_plain(v)) for v in threshold_offsets],
        "noise_erosion": [_plain(v) for v in noise_erosions],
        "seed_erosion": [_plain(v) for v in seed_erosions],
    }
    for name, values in candidates.items():
        if not values:
            raise ValueError(f"no candidate values for {name}")
        if name != "threshold_offset" and min(values) < 0:
            raise ValueError(f"{name} candidates must be >= 0, got {values}")
    _check_connectivity(connectivity)

    combos = list(itertools.product(*candidates.values()))
    scores = np.zeros((len(combos), len(images)))
    index = {combo: i for i, combo in enumerate(combos)}
    with tqdm(
        total=len(combos) * len(images), desc="ThreshWater grid", disable=not progress
    ) as bar:
        for k, (image, label) in enumerate(zip(images, labels, strict=True)):
            image = validate_image(image)
            label = np.asarray(label)
            if label.shape != image.shape:
                raise ValueError(
                    f"volume {k}: image shape {image.shape} and label shape {label.shape} differ"
                )
            stats = intensity_stats(image)
            for offset in candidates["threshold_offset"]:
                thresholded = image > resolve_threshold(stats, None, offset)
                for noise in candidates["noise_erosion"]:
                    mask = open_mask(thresholded, noise)
                    distance = distance_to_background(mask)
                    for seed in candidates["seed_erosion"]:
                        pred = seeded_watershed(mask, distance, seed, connectivity)
                        scores[index[offset, noise, seed], k] = evaluate_instances(pred, label)[
                            metric
                        ]
                        bar.update()

    means = scores.mean(axis=1)
    best = int(np.argmax(means))
    grid = [
        {
            **dict(zip(candidates, combo, strict=True)),
            "score": float(means[i]),
            "scores": [float(s) for s in scores[i]],
        }
        for i, combo in enumerate(combos)
    ]
    params = {**dict(zip(candidates, combos[best], strict=True)), "connectivity": connectivity}
    return {"params": params, "score": float(means[best]), "metric": metric, "grid": grid}


def save_params(path: str | os.PathLike[str], result: dict[str, Any]) -> Path:
    """Write a tuning result (or any dict with a ``"params"`` dict) to a JSON file atomically.

    The JSON is written to a temporary file in the destination folder and renamed over
    ``path``, so an interrupted write never leaves a truncated file behind.

    Args:
        path: Destination ``.json`` file; its folder is created if missing.
        result: The dict returned by :func:`tune_threshwater`.

    Returns:
        The path written.

    Raises:
        ValueError: If ``result`` has no ``"params"`` dict.
    """
    if not isinstance(result, dict) or not isinstance(result.get("params"), dict):
        raise ValueError("result must be a dict with a 'params' dict (see tune_threshwater)")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_json_atomic(path, result)


def load_params(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a tuning result written by :func:`save_params`.

    Args:
        path: A JSON file written by :func:`save_params`.

    Returns:
        The saved dict; ``result["params"]`` can be passed to
        :func:`~particleseg.baselines.threshwater.threshwater` as keyword arguments.

    Raises:
        ValueError: If the file cannot be read, is not valid JSON, or has no ``"params"`` dict
            (the message names the file).
    """
    path = Path(path)
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"cannot read ThreshWater parameters from {path}: {error}") from error
    if not isinstance(result, dict) or not isinstance(result.get("params"), dict):
        raise ValueError(f"{path} holds no 'params' dict; not a ThreshWater parameter file")
    unknown = set(result["params"]) - set(PARAM_KEYS) - {"threshold"}
    if unknown:
        raise ValueError(f"{path}: unknown ThreshWater parameters {sorted(unknown)}")
    return result

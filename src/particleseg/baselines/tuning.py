"""Grid search of a classical baseline's parameters on labelled volumes.

The paper tunes ThreshWater's erosion amounts on the training set; here the threshold offset
(a fraction of each image's robust intensity range, added to its Otsu threshold) is tuned
together with them. SNOW is tuned the same way, over threshold offset, ``sigma`` and ``r_max``.

One tuner serves both: a :class:`Baseline` describes a segmenter as a chain of stages, one per
tuned parameter, each turning the previous stage's intermediate result into the next (threshold
-> opened mask -> labels for ThreshWater). :func:`tune_grid` walks the grid depth first, so
every intermediate result is computed once per prefix of the parameter combination and only the
last stage runs per combination. The results are saved and read back by
:mod:`particleseg.baselines.params`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from particleseg.baselines import snow as _snow
from particleseg.baselines.threshwater import (
    _check_connectivity,
    distance_to_background,
    intensity_stats,
    open_mask,
    resolve_threshold,
    seeded_watershed,
    threshwater,
    validate_image,
)
from particleseg.metrics import SCORE_KEYS, evaluate_instances

__all__ = [
    "BASELINES",
    "PARAM_KEYS",
    "SNOW",
    "SNOW_PARAM_KEYS",
    "THRESHWATER",
    "Baseline",
    "GridStage",
    "tune_grid",
    "tune_snow",
    "tune_threshwater",
]


def _plain(value: Any) -> Any:
    """Numpy scalars to Python scalars (for JSON), other values unchanged."""
    return value.item() if isinstance(value, np.generic) else value


@dataclass(frozen=True)
class GridStage:
    """One tuned parameter of a :class:`Baseline` and the pipeline step it controls.

    Attributes:
        param: Keyword argument of the segmenter (``"seed_erosion"``).
        option: Keyword of the candidate list in the tuner and the config (``"seed_erosions"``).
        apply: ``apply(state, value, fixed) -> state``: the previous stage's result (for the
            first stage, what :attr:`Baseline.prepare` returned), this parameter's value and the
            untuned parameters; the last stage returns ``(Z, Y, X)`` integer labels.
        minimum: Candidates must be >= this (None: any value).
        cast: ``float`` or ``int`` to store the candidates as that type (``int`` also requires
            integer values); None keeps them as given.
    """

    param: str
    option: str
    apply: Callable[[Any, Any, Mapping[str, Any]], Any]
    minimum: float | None = None
    cast: type | None = None

    def candidates(self, values: Sequence[Any]) -> list[Any]:
        """Check the candidate values and convert them to plain Python numbers.

        Raises:
            ValueError: If there are none, or one is below :attr:`minimum` or not an integer
                where :attr:`cast` is ``int`` (the message names the parameter).
        """
        values = [_plain(v) for v in values]
        if not values:
            raise ValueError(f"no candidate values for {self.param} ({self.option}=[])")
        if self.minimum is not None and min(values) < self.minimum:
            raise ValueError(f"{self.param} candidates must be >= {self.minimum}, got {values}")
        if self.cast is int and not all(float(v).is_integer() for v in values):
            raise ValueError(f"{self.param} candidates must be integers, got {values}")
        return values if self.cast is None else [self.cast(v) for v in values]


@dataclass(frozen=True)
class Baseline:
    """A classical segmenter described for grid search.

    Attributes:
        key: Short name used in configs and file names (``"threshwater"``, ``"snow"``).
        name: Display name (``"ThreshWater"``).
        segment: The segmenter, ``segment(image, **params) -> labels``.
        prepare: ``prepare(image, fixed) -> state``: per image, the work shared by the whole
            grid (validation, intensity statistics); raises ValueError on bad input.
        stages: The tuned parameters, in pipeline order.
        fixed: Untuned keyword arguments and their defaults, stored with the tuned ones.
    """

    key: str
    name: str
    segment: Callable[..., np.ndarray]
    prepare: Callable[[np.ndarray, Mapping[str, Any]], Any]
    stages: tuple[GridStage, ...]
    fixed: Mapping[str, Any]

    @property
    def param_keys(self) -> tuple[str, ...]:
        """Keys of a tuning result's ``"params"``: the tuned ones, then the fixed ones."""
        return tuple(s.param for s in self.stages) + tuple(self.fixed)

    def tune(
        self,
        images: Sequence[np.ndarray],
        labels: Sequence[np.ndarray],
        *,
        metric: str = "f1_instance",
        progress: bool = True,
        **options: Any,
    ) -> dict[str, Any]:
        """:func:`tune_grid` with the candidates and fixed parameters as keyword arguments.

        Args:
            images: Greyscale volumes ``(Z, Y, X)``, real dtype, finite.
            labels: Reference instance labels, one per image.
            metric: Score to maximize.
            progress: Show a progress bar.
            **options: A candidate list per stage, by :attr:`GridStage.option`
                (``seed_erosions=[1, 2]``), and values of fixed parameters (``connectivity=1``);
                what a baseline config's ``tune`` section holds.

        Returns:
            The :func:`tune_grid` result.
        """
        fixed = {k: options.pop(k) for k in list(options) if k in self.fixed}
        return tune_grid(
            self, images, labels, options, fixed=fixed, metric=metric, progress=progress
        )


def tune_grid(
    baseline: Baseline,
    images: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    candidates: Mapping[str, Sequence[Any]],
    *,
    fixed: Mapping[str, Any] | None = None,
    metric: str = "f1_instance",
    progress: bool = True,
) -> dict[str, Any]:
    """Grid search of a baseline's parameters maximizing a mean instance metric.

    Every combination of the candidates (the product in stage order) is scored by the mean over
    the volumes of ``evaluate_instances(baseline.segment(image, **params), label)[metric]``.
    Each image's shared state is prepared once and each stage's result once per prefix of the
    combination; one image's intermediate volumes are held in memory at a time.

    Args:
        baseline: What to tune (:data:`THRESHWATER`, :data:`SNOW`).
        images: Greyscale volumes ``(Z, Y, X)``, real dtype, finite.
        labels: Reference instance labels, one per image, same shapes, integer dtype.
        candidates: Candidate values per stage, keyed by :attr:`GridStage.option`
            (``{"seed_erosions": [1, 2, 3], ...}``); every stage needs a list.
        fixed: Values of the untuned parameters (missing ones take ``baseline.fixed``).
        metric: Key of :func:`~particleseg.metrics.evaluate_instances` to maximize; one of the
            higher-is-better scores ``f1``, ``f1_match``, ``f1_instance``, ``pq``, ``sq``,
            ``rq``.
        progress: Show a progress bar.

    Returns:
        ``{"params": {...}, "score": float, "metric": str, "grid": [...]}``: ``params`` holds
        the best value of every tuned parameter and the fixed ones (ready for
        ``baseline.segment(image, **result["params"])``), ``score`` its mean metric, and
        ``grid`` one dict per combination (in grid order) with the tuned parameters, ``score``
        (the mean) and ``scores`` (one per image). Ties go to the first combination in grid
        order.

    Raises:
        ValueError: If there are no images, images and labels differ in number or shape, the
            metric is unknown or not a score, a candidate list is missing, empty or out of
            range, an option or fixed parameter is unknown, or an image is invalid.
    """
    if metric not in SCORE_KEYS:
        raise ValueError(f"metric must be one of {SCORE_KEYS} (higher is better), got {metric!r}")
    if len(images) != len(labels):
        raise ValueError(f"got {len(images)} images but {len(labels)} label volumes")
    if len(images) == 0:
        raise ValueError(f"tuning {baseline.name} needs at least one labelled volume")
    options = {s.option for s in baseline.stages}
    unknown = set(candidates) - options
    if unknown:
        raise ValueError(
            f"unknown {baseline.name} grid options {sorted(unknown)}: it takes candidate lists "
            f"{sorted(options)} and fixed parameters {sorted(baseline.fixed)}"
        )
    fixed = {**baseline.fixed, **(fixed or {})}
    if set(fixed) != set(baseline.fixed):
        raise ValueError(
            f"unknown {baseline.name} parameters {sorted(set(fixed) - set(baseline.fixed))}"
        )
    grid = {s.param: s.candidates(candidates.get(s.option, ())) for s in baseline.stages}

    def walk(state: Any, depth: int, prefix: tuple) -> Any:
        if depth == len(baseline.stages):
            yield prefix, state
            return
        stage = baseline.stages[depth]
        for value in grid[stage.param]:
            yield from walk(stage.apply(state, value, fixed), depth + 1, (*prefix, value))

    combos = list(itertools.product(*grid.values()))
    index = {combo: i for i, combo in enumerate(combos)}
    scores = np.zeros((len(combos), len(images)))
    total = len(combos) * len(images)
    with tqdm(total=total, desc=f"{baseline.name} grid", disable=not progress) as bar:
        for k, (image, label) in enumerate(zip(images, labels, strict=True)):
            image = validate_image(image)
            label = np.asarray(label)
            if label.shape != image.shape:
                raise ValueError(
                    f"volume {k}: image shape {image.shape} and label shape {label.shape} differ"
                )
            for combo, pred in walk(baseline.prepare(image, fixed), 0, ()):
                scores[index[combo], k] = evaluate_instances(pred, label)[metric]
                bar.update()

    means = scores.mean(axis=1)
    best = int(np.argmax(means))
    rows = [
        {
            **dict(zip(grid, combo, strict=True)),
            "score": float(means[i]),
            "scores": [float(s) for s in scores[i]],
        }
        for i, combo in enumerate(combos)
    ]
    params = {**dict(zip(grid, combos[best], strict=True)), **fixed}
    return {"params": params, "score": float(means[best]), "metric": metric, "grid": rows}


# ThreshWater: stats -> thresholded -> (opened mask, distance) -> seeded watershed


def _tw_prepare(image: np.ndarray, fixed: Mapping[str, Any]) -> tuple:
    _check_connectivity(fixed["connectivity"])
    return image, intensity_stats(image)


def _tw_threshold(state: tuple, offset: float, fixed: Mapping[str, Any]) -> np.ndarray:
    image, stats = state
    return image > resolve_threshold(stats, None, offset)


def _tw_open(thresholded: np.ndarray, noise: float, fixed: Mapping[str, Any]) -> tuple:
    mask = open_mask(thresholded, noise)
    return mask, distance_to_background(mask)


def _tw_watershed(state: tuple, seed: float, fixed: Mapping[str, Any]) -> np.ndarray:
    mask, distance = state
    return seeded_watershed(mask, distance, seed, fixed["connectivity"])


THRESHWATER = Baseline(
    key="threshwater",
    name="ThreshWater",
    segment=threshwater,
    prepare=_tw_prepare,
    stages=(
        GridStage("threshold_offset", "threshold_offsets", _tw_threshold, cast=float),
        GridStage("noise_erosion", "noise_erosions", _tw_open, minimum=0),
        GridStage("seed_erosion", "seed_erosions", _tw_watershed, minimum=0),
    ),
    fixed={"connectivity": 1},
)

# SNOW: stats -> (mask, distance) -> + sigma -> SNOW partitioning and clean-up


def _snow_prepare(image: np.ndarray, fixed: Mapping[str, Any]) -> tuple:
    _snow.check_snow_params(min_size=fixed["min_size"])
    _snow.import_porespy()  # fail before any work when porespy is missing
    return image, intensity_stats(image)


def _snow_threshold(state: tuple, offset: float, fixed: Mapping[str, Any]) -> tuple:
    image, stats = state
    return _snow.snow_mask(image, stats, None, offset)


def _snow_sigma(state: tuple, sigma: float, fixed: Mapping[str, Any]) -> tuple:
    return (*state, sigma)


def _snow_partition(state: tuple, r_max: int, fixed: Mapping[str, Any]) -> np.ndarray:
    mask, distance, sigma = state
    return _snow.snow_partition(
        mask, distance, sigma=sigma, r_max=r_max, min_size=fixed["min_size"]
    )


SNOW = Baseline(
    key="snow",
    name="SNOW",
    segment=_snow.snow_segment,
    prepare=_snow_prepare,
    stages=(
        GridStage("threshold_offset", "threshold_offsets", _snow_threshold, cast=float),
        GridStage("sigma", "sigmas", _snow_sigma, minimum=0),
        GridStage("r_max", "r_maxes", _snow_partition, minimum=1, cast=int),
    ),
    fixed={"min_size": 8},
)

#: The baselines by :attr:`Baseline.key`.
BASELINES: dict[str, Baseline] = {b.key: b for b in (THRESHWATER, SNOW)}

#: Keys of the ``"params"`` dict returned by :func:`tune_threshwater` (keyword arguments of
#: :func:`~particleseg.baselines.threshwater.threshwater`).
PARAM_KEYS: tuple[str, ...] = THRESHWATER.param_keys

#: Keys of the ``"params"`` dict returned by :func:`tune_snow` (keyword arguments of
#: :func:`~particleseg.baselines.snow.snow_segment`).
SNOW_PARAM_KEYS: tuple[str, ...] = SNOW.param_keys


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
    mean over the volumes of ``evaluate_instances(threshwater(image, ...), label)[metric]`` (the
    threshold itself is Otsu's, per image). Each image's Otsu threshold and robust range are
    computed once, the thresholded mask once per offset, the opened mask and its distance
    transform once per (offset, noise erosion), and only the seeded watershed runs per seed
    erosion (see :func:`tune_grid`).

    Args:
        images: Greyscale volumes ``(Z, Y, X)``, real dtype, finite.
        labels: Reference instance labels, one per image, same shapes, integer dtype.
        threshold_offsets: Candidate ``threshold_offset`` values (fractions of the robust range).
        noise_erosions: Candidate ``noise_erosion`` radii (voxels, >= 0).
        seed_erosions: Candidate ``seed_erosion`` distances (voxels, >= 0).
        metric: Score to maximize (see :func:`tune_grid`).
        connectivity: Passed to ThreshWater unchanged (not tuned).
        progress: Show a progress bar.

    Returns:
        The :func:`tune_grid` result; ``params`` holds ``threshold_offset``, ``noise_erosion``,
        ``seed_erosion`` and ``connectivity``.

    Raises:
        ValueError: See :func:`tune_grid`.
    """
    grid = {
        "threshold_offsets": threshold_offsets,
        "noise_erosions": noise_erosions,
        "seed_erosions": seed_erosions,
    }
    return tune_grid(
        THRESHWATER,
        images,
        labels,
        grid,
        fixed={"connectivity": connectivity},
        metric=metric,
        progress=progress,
    )


def tune_snow(
    images: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    *,
    threshold_offsets: Sequence[float] = (-0.15, -0.1, -0.05),
    sigmas: Sequence[float] = (0.3, 0.5),
    r_maxes: Sequence[int] = (5, 7),
    metric: str = "f1_instance",
    min_size: int = 8,
    progress: bool = True,
) -> dict[str, Any]:
    """Grid search of SNOW's parameters maximizing a mean instance metric.

    Every combination of ``threshold_offsets x sigmas x r_maxes`` is scored by the mean over the
    volumes of ``evaluate_instances(snow_segment(image, ...), label)[metric]`` (Otsu's threshold
    per image). Each image's statistics are computed once and the mask and its distance
    transform once per offset; SNOW runs per (sigma, r_max).

    Args:
        images: Greyscale volumes ``(Z, Y, X)``, real dtype, finite.
        labels: Reference instance labels, one per image, same shapes, integer dtype.
        threshold_offsets: Candidate ``threshold_offset`` values (fractions of the robust range).
        sigmas: Candidate ``sigma`` values (voxels, >= 0).
        r_maxes: Candidate ``r_max`` radii (integer voxels, >= 1).
        metric: Score to maximize (see :func:`tune_grid`).
        min_size: Passed to SNOW unchanged (not tuned).
        progress: Show a progress bar.

    Returns:
        The :func:`tune_grid` result; ``params`` holds ``threshold_offset``, ``sigma``,
        ``r_max`` and ``min_size``.

    Raises:
        ValueError: See :func:`tune_grid`.
        ImportError: If porespy is not installed.
    """
    grid = {"threshold_offsets": threshold_offsets, "sigmas": sigmas, "r_maxes": r_maxes}
    return tune_grid(
        SNOW, images, labels, grid, fixed={"min_size": min_size}, metric=metric, progress=progress
    )

"""Classical baselines (numpy/scikit-image, optionally porespy; never imports torch).

``threshwater(image)`` is the paper's ThreshWater baseline and ``snow_segment(image)`` porespy's
SNOW partitioning of the thresholded scan (porespy is optional: ``pip install -e .[eval]``).
``tune_threshwater`` / ``tune_snow`` grid-search their parameters on labelled volumes (both
through ``tune_grid`` and a :class:`Baseline` description, ``BASELINES`` by key);
``save_params`` / ``load_params`` persist the result as JSON.
"""

from particleseg.baselines.params import load_params, save_params
from particleseg.baselines.snow import check_snow_params, import_porespy, snow_segment
from particleseg.baselines.threshwater import (
    ThresholdStats,
    distance_to_background,
    intensity_stats,
    open_mask,
    resolve_threshold,
    seeded_watershed,
    threshwater,
    validate_image,
)
from particleseg.baselines.tuning import (
    BASELINES,
    PARAM_KEYS,
    SNOW,
    SNOW_PARAM_KEYS,
    THRESHWATER,
    Baseline,
    GridStage,
    tune_grid,
    tune_snow,
    tune_threshwater,
)

__all__ = [
    "BASELINES",
    "PARAM_KEYS",
    "SNOW",
    "SNOW_PARAM_KEYS",
    "THRESHWATER",
    "Baseline",
    "GridStage",
    "ThresholdStats",
    "check_snow_params",
    "distance_to_background",
    "import_porespy",
    "intensity_stats",
    "load_params",
    "open_mask",
    "resolve_threshold",
    "save_params",
    "seeded_watershed",
    "snow_segment",
    "threshwater",
    "tune_grid",
    "tune_snow",
    "tune_threshwater",
    "validate_image",
]

"""Classical baselines (numpy/scikit-image only; never imports torch).

``threshwater(image)`` is the paper's ThreshWater baseline; ``tune_threshwater`` grid-searches its
parameters on labelled volumes, ``save_params`` / ``load_params`` persist the result as JSON.
"""

from particleseg.baselines.threshwater import (
    IntensityStats,
    distance_to_background,
    intensity_stats,
    open_mask,
    resolve_threshold,
    seeded_watershed,
    threshwater,
    validate_image,
)
from particleseg.baselines.tuning import PARAM_KEYS, load_params, save_params, tune_threshwater

__all__ = [
    "PARAM_KEYS",
    "IntensityStats",
    "distance_to_background",
    "intensity_stats",
    "load_params",
    "open_mask",
    "resolve_threshold",
    "save_params",
    "seeded_watershed",
    "threshwater",
    "tune_threshwater",
    "validate_image",
]

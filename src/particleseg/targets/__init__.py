"""Instance labels <-> border-core maps (numpy, fastremap and numba kernels; no torch)."""

from particleseg.targets.border_core import (
    BACKGROUND,
    BORDER,
    CORE,
    MIN_RELATIVE_SIZE,
    SMALL_CORE_DISTANCE,
    SMALL_CORE_FRACTION,
    SMALL_CORE_MAX_DISTANCE,
    border_core_to_instance,
    demote_small_cores,
    filter_small_particles,
    instance_to_border_core,
)

__all__ = [
    "BACKGROUND",
    "BORDER",
    "CORE",
    "MIN_RELATIVE_SIZE",
    "SMALL_CORE_DISTANCE",
    "SMALL_CORE_FRACTION",
    "SMALL_CORE_MAX_DISTANCE",
    "border_core_to_instance",
    "demote_small_cores",
    "filter_small_particles",
    "instance_to_border_core",
]

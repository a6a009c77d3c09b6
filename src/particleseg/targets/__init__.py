"""Instance labels <-> border-core maps (numpy/scipy/cc3d/edt and a numba kernel; no torch)."""

from particleseg.targets.border_core import (
    BACKGROUND,
    BORDER,
    CORE,
    border_core_to_instance,
    demote_small_cores,
    filter_small_particles,
    instance_to_border_core,
)

__all__ = [
    "BACKGROUND",
    "BORDER",
    "CORE",
    "border_core_to_instance",
    "demote_small_cores",
    "filter_small_particles",
    "instance_to_border_core",
]

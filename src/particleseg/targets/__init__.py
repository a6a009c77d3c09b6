"""Instance labels <-> border-core maps (numpy, fastremap and numba kernels; no torch).

``ball_offsets`` and the numba kernel ``other_label_within`` are the small-core rule's building
blocks, shared with the out-of-core conversion in :mod:`particleseg.postprocess`.
"""

from particleseg.targets._distance import ball_offsets, other_label_within
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
    "ball_offsets",
    "border_core_to_instance",
    "demote_small_cores",
    "filter_small_particles",
    "instance_to_border_core",
    "other_label_within",
]

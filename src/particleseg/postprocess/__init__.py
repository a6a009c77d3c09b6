"""Out-of-core post-processing: border-core maps to instance labels, label resampling (no torch)."""

from particleseg.postprocess._blocks import StageBar
from particleseg.postprocess.chunked import (
    HALO,
    border_core_to_instance_chunked,
    filter_small_particles_chunked,
)
from particleseg.postprocess.resample import resample_labels_chunked

__all__ = [
    "HALO",
    "StageBar",
    "border_core_to_instance_chunked",
    "filter_small_particles_chunked",
    "resample_labels_chunked",
]

"""Image analysis without a network (numpy/scipy/scikit-image only; never imports torch).

``estimate_particle_size(image)`` estimates the mean particle diameter of a scan in voxels from
the image alone, for ``particle_size=auto``.

Per-particle characterisation of a label volume: ``particle_properties`` (in memory) and
``particle_properties_chunked`` (zarr/dask, block by block, same table) give a column table of
size, shape and intensity properties; ``size_distribution`` the cumulative passing curves and
D10/D50/D90; ``write_particles_csv`` / ``read_particles_csv`` the table as CSV with units;
``write_report`` a folder with the CSVs, figures and a self-contained HTML report (imported on
first use, as it loads matplotlib).
"""

from typing import Any

from particleseg.analysis.chunked import particle_properties_chunked
from particleseg.analysis.distribution import (
    SizeDistribution,
    read_particles_csv,
    size_distribution,
    write_particles_csv,
)
from particleseg.analysis.particle_size import ParticleSizeEstimate, estimate_particle_size
from particleseg.analysis.properties import particle_properties

__all__ = [
    "ParticleSizeEstimate",
    "SizeDistribution",
    "estimate_particle_size",
    "particle_properties",
    "particle_properties_chunked",
    "read_particles_csv",
    "size_distribution",
    "write_particles_csv",
    "write_report",
]


def __getattr__(name: str) -> Any:
    if name == "write_report":
        from particleseg.analysis.report import write_report

        return write_report
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

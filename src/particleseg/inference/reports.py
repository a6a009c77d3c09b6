"""What predict writes for people beside the labels: an overlay PNG and the particle analysis.

``overlay.png``: the middle Z and Y slices of the scan with every particle outlined (read slice
by slice, never the whole scan). The per-particle table and the report (``particles.csv``,
``report.html`` and the size-distribution figures) come from :mod:`particleseg.analysis`.
"""

from __future__ import annotations

from pathlib import Path

import zarr

from particleseg.analysis.report import REPORT_FILES
from particleseg.inference.inputs import ScanInput
from particleseg.viz.slices import save_slices_png

OVERLAY = "overlay.png"
#: Everything this module writes into a scan's output folder.
OUTPUT_FILES = (OVERLAY, *REPORT_FILES)


def write_overlay(out: Path, scan: ScanInput, n_particles: int | None) -> Path:
    """``out/overlay.png``: middle Z and Y slices with the particles of ``instances.zarr``."""
    labels = zarr.open_array(str(out / "instances.zarr"), mode="r")
    path = out / OVERLAY
    save_slices_png(path, scan.open(), labels, f"{scan.name}: {n_particles} particles")
    return path


def write_analysis(
    out: Path, scan: ScanInput, summary: dict, warnings: list[str] | None = None
) -> tuple[dict[str, Path], dict]:
    """Per-particle properties and the report of ``out/instances.zarr`` (predict's analysis).

    Physical units when the scan has a spacing (its unit), voxels otherwise. The labels and the
    scan are read block by block (:func:`particleseg.analysis.particle_properties_chunked`).
    What the result's reader should know (particles measured on a subsample) is appended to
    ``warnings``.

    Returns:
        The files written, by name (see :func:`particleseg.analysis.write_report`), and the size
        distribution's summary: particle count, D10/D50/D90 number and volume weighted, unit.
    """
    from particleseg.analysis import particle_properties_chunked, size_distribution, write_report

    labels = zarr.open_array(str(out / "instances.zarr"), mode="r")
    image = scan.open()
    spacing = tuple(scan.spacing) if scan.spacing else (1.0, 1.0, 1.0)
    unit = (scan.unit or "unit") if scan.spacing else "voxel"
    # threads: the scan may be opened through a reader that cannot be pickled into processes
    # (a tifffile store holds a lock), which the processes scheduler needs
    table = particle_properties_chunked(
        labels, image, spacing=spacing, scheduler="threads", warnings=warnings
    )
    paths = write_report(
        out, table, labels, image, spacing, unit, summary, title=f"particleseg: {scan.name}"
    )
    dist = size_distribution(table["equivalent_diameter"], table["volume"])
    return paths, {"unit": unit, **{k: float(v) for k, v in dist.summary().items()}}

"""What predict writes for people beside the labels: an overlay PNG and the particle analysis.

``overlay.png``: the middle Z and Y slices of the scan with every particle outlined (read slice
by slice, never the whole scan). The per-particle table and the report (``particles.csv``,
``report.html`` and the size-distribution figures) come from :mod:`particleseg.analysis`.
"""

from __future__ import annotations

from pathlib import Path

import zarr

from particleseg.inference.inputs import ScanInput
from particleseg.synth.preview import save_slices_png


def write_overlay(out: Path, scan: ScanInput, n_particles: int | None) -> Path:
    """``out/overlay.png``: middle Z and Y slices with the particles of ``instances.zarr``."""
    labels = zarr.open_array(str(out / "instances.zarr"), mode="r")
    path = out / "overlay.png"
    save_slices_png(path, scan.open(), labels, f"{scan.name}: {n_particles} particles")
    return path

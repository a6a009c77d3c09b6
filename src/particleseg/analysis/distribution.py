"""Particle size distributions (cumulative passing curves, D10/D50/D90) and the CSV table format.

**Cumulative passing curve.** For sizes sorted ascending ``x_1 <= ... <= x_n`` with weights
``w_i`` (1 for number-weighted, the particle volume for volume-weighted), the fraction passing
``x_i`` is ``F_i = (w_1 + ... + w_i) / W``, ``W`` the total: the share of the particles (or of
their volume) at most ``x_i`` in size, ending at 1.

**D-values.** ``D_p`` is read off the curve drawn through the middle of each step: the points
``(x_i, (w_1 + ... + w_{i-1} + w_i / 2) / W)`` joined by straight lines (Hazen plotting
positions), ``D_p`` the size where that line reaches ``p / 100``, and the smallest (largest) size
below the first (above the last) point; particles of zero weight are left out. Unweighted this
is ``np.percentile(x, p, method="hazen")``: D50 is the median. The returned curves list each
distinct size once (the passing fraction after all particles of that size).

**CSV.** :func:`write_particles_csv` writes a column table with the unit of each column in its
header (``volume [mm^3]``, dimensionless columns without brackets), comma separated, floats
with ``repr`` precision (exact round trip), booleans as ``true``/``false``;
:func:`read_particles_csv` reads it back (ints, floats and bools restored).
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from particleseg.io.atomic import write_bytes_atomic as write_atomic

__all__ = [
    "SizeDistribution",
    "column_unit",
    "read_particles_csv",
    "size_distribution",
    "write_particles_csv",
]

#: Percentiles reported by default.
DEFAULT_PERCENTILES = (10.0, 50.0, 90.0)


@dataclass(frozen=True)
class SizeDistribution:
    """Cumulative passing curves and characteristic sizes of a set of particles.

    Attributes:
        size: (M,) float64 distinct sizes, ascending.
        passing_number: (M,) fraction of the particles with size <= ``size`` (number-weighted).
        passing_volume: (M,) fraction of the total volume in those particles (volume-weighted).
        d_number: ``{p: D_p}`` number-weighted, for each requested percentile p.
        d_volume: ``{p: D_p}`` volume-weighted.
        count: Number of particles.
    """

    size: np.ndarray
    passing_number: np.ndarray
    passing_volume: np.ndarray
    d_number: dict[float, float] = field(default_factory=dict)
    d_volume: dict[float, float] = field(default_factory=dict)
    count: int = 0

    def as_table(self) -> dict[str, np.ndarray]:
        """The curves as a column table (``size``, ``passing_number``, ``passing_volume``)."""
        return {
            "size": self.size,
            "passing_number": self.passing_number,
            "passing_volume": self.passing_volume,
        }

    def summary(self) -> dict[str, float]:
        """``{"D10_number": ..., "D50_volume": ..., ...}`` and ``count``."""
        out: dict[str, float] = {"count": self.count}
        for weighting, values in (("number", self.d_number), ("volume", self.d_volume)):
            for p, value in values.items():
                out[f"D{_pct(p)}_{weighting}"] = value
        return out


def _pct(p: float) -> str:
    return str(int(p)) if float(p).is_integer() else str(p)


def _hazen(size: np.ndarray, weight: np.ndarray, percentiles: Sequence[float]) -> dict:
    """D_p by linear interpolation through the step midpoints (see the module docstring).

    Args:
        size: (N,) sizes, ascending.
        weight: (N,) weights >= 0.
        percentiles: p values in [0, 100].
    """
    keep = weight > 0
    size, weight = size[keep], weight[keep]
    total = weight.sum()
    if len(size) == 0 or not total > 0:
        return {float(p): float("nan") for p in percentiles}
    mid = (np.cumsum(weight) - weight / 2.0) / total
    return {float(p): float(np.interp(p / 100.0, mid, size)) for p in percentiles}


def size_distribution(
    diameters: Sequence[float] | np.ndarray,
    volumes: Sequence[float] | np.ndarray | None = None,
    *,
    percentiles: Sequence[float] = DEFAULT_PERCENTILES,
) -> SizeDistribution:
    """Number- and volume-weighted cumulative passing curves and D-values.

    Args:
        diameters: (N,) particle sizes (e.g. ``equivalent_diameter``), finite and >= 0.
        volumes: (N,) particle volumes for the volume weighting; default ``pi d^3 / 6``.
        percentiles: Percentiles p (0..100) for which D_p is reported.

    Returns:
        The :class:`SizeDistribution` (NaN D-values and empty curves for no particles).

    Raises:
        ValueError: If the arrays are not 1D of equal length, hold non-finite or negative values,
            or a percentile is outside [0, 100].
    """
    d = np.asarray(diameters, np.float64)
    if d.ndim != 1:
        raise ValueError(f"diameters must be 1D, got shape {d.shape}")
    v = np.pi * d**3 / 6.0 if volumes is None else np.asarray(volumes, np.float64)
    if v.shape != d.shape:
        raise ValueError(f"volumes shape {v.shape} does not match diameters shape {d.shape}")
    if not (np.isfinite(d).all() and np.isfinite(v).all()) or (d < 0).any() or (v < 0).any():
        raise ValueError("diameters and volumes must be finite and >= 0")
    if any(not 0 <= p <= 100 for p in percentiles):
        raise ValueError(f"percentiles must lie in [0, 100], got {list(percentiles)}")
    order = np.argsort(d, kind="stable")
    d_sorted, v_sorted = d[order], v[order]
    size, inverse = np.unique(d_sorted, return_inverse=True)
    number = np.bincount(inverse, minlength=len(size)).astype(np.float64)
    volume = np.bincount(inverse, weights=v_sorted, minlength=len(size))
    return SizeDistribution(
        size=size,
        passing_number=_cumulative(number),
        passing_volume=_cumulative(volume),
        d_number=_hazen(d_sorted, np.ones_like(d_sorted), percentiles),
        d_volume=_hazen(d_sorted, v_sorted, percentiles),
        count=len(d),
    )


def _cumulative(weight: np.ndarray) -> np.ndarray:
    total = weight.sum()
    if not total > 0:
        return np.zeros_like(weight)
    out = np.cumsum(weight) / total
    out[-1] = 1.0
    return out


# ----------------------------------------------------------------------------- CSV

_LENGTH = {
    "equivalent_diameter",
    "feret_max",
    "feret_min",
    "axis_major",
    "axis_intermediate",
    "axis_minor",
    "centroid_z",
    "centroid_y",
    "centroid_x",
    "size",
}
_AREA = {"surface_area"}
_VOLUME = {"volume", "convex_volume"}
_VOXEL = {"bbox_z0", "bbox_y0", "bbox_x0", "bbox_z1", "bbox_y1", "bbox_x1"}
_INTENSITY = {"intensity_min", "intensity_mean", "intensity_max", "intensity_std"}
_HEADER = re.compile(r"^(?P<name>.*?)(?: \[(?P<unit>[^\]]*)\])?$")


def column_unit(name: str, unit: str) -> str | None:
    """Unit of a table column given the length unit (None for dimensionless columns).

    Args:
        name: Column name.
        unit: Length unit, e.g. ``"mm"`` or ``"voxel"``.

    Returns:
        ``unit``, ``unit^2``, ``unit^3``, ``"voxel"`` (bounding boxes), ``"grey value"``
        (intensities) or None.
    """
    if name in _LENGTH:
        return unit
    if name in _AREA:
        return f"{unit}^2"
    if name in _VOLUME:
        return f"{unit}^3"
    if name in _VOXEL:
        return "voxel"
    if name in _INTENSITY:
        return "grey value"
    return None


def _format(values: np.ndarray) -> list[str]:
    if values.dtype == np.bool_:
        return ["true" if v else "false" for v in values.tolist()]
    if np.issubdtype(values.dtype, np.integer):
        return [str(v) for v in values.tolist()]
    return [repr(float(v)) for v in values.tolist()]


def write_particles_csv(
    path: str | os.PathLike[str], table: Mapping[str, np.ndarray], units: str
) -> Path:
    """Write a column table as CSV, units in the header, atomically.

    Written to ``path.with_suffix('.csv.tmp')`` (for a ``.csv`` path) first and moved into place
    with ``os.replace``, so readers never see a partial file.

    Args:
        path: Destination ``.csv`` file (its folder must exist).
        table: Equal-length 1D arrays by column name.
        units: Length unit of the table (e.g. ``"mm"``), see :func:`column_unit`.

    Returns:
        The destination path.

    Raises:
        ValueError: If columns are not 1D or differ in length.
    """
    path = Path(path)
    columns = {name: np.asarray(values) for name, values in table.items()}
    lengths = {v.shape for v in columns.values()}
    if any(len(s) != 1 for s in lengths) or len(lengths) > 1:
        raise ValueError(f"table columns must be 1D of equal length, got shapes {lengths}")
    header = []
    for name in columns:
        unit = column_unit(name, units)
        header.append(name if unit is None else f"{name} [{unit}]")
    cells = [_format(v) for v in columns.values()]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(zip(*cells, strict=True))
    return write_atomic(path, buffer.getvalue().encode("utf-8"))


def _parse(cells: list[str]) -> np.ndarray:
    if cells and all(c in ("true", "false") for c in cells):
        return np.array([c == "true" for c in cells], np.bool_)
    try:
        return np.array([int(c) for c in cells], np.int64)
    except ValueError:
        return np.array([float(c) for c in cells], np.float64)


def read_particles_csv(
    path: str | os.PathLike[str], *, with_units: bool = False
) -> dict[str, np.ndarray] | tuple[dict[str, np.ndarray], dict[str, str | None]]:
    """Read a table written by :func:`write_particles_csv`.

    Args:
        path: The CSV file.
        with_units: Also return the unit of each column.

    Returns:
        The column table (names without units; int64, float64 or bool arrays), and with
        ``with_units`` a dict of units by column name (None where there is none).
    """
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        raise ValueError(f"{path} is empty (no header row)")
    names, units = [], {}
    for cell in rows[0]:
        match = _HEADER.match(cell)
        assert match is not None
        names.append(match["name"])
        units[match["name"]] = match["unit"]
    columns = list(zip(*rows[1:], strict=True)) if len(rows) > 1 else [()] * len(names)
    table = {name: _parse(list(col)) for name, col in zip(names, columns, strict=True)}
    return (table, units) if with_units else table

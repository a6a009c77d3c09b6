"""A report folder for a particle table: CSVs, figures and one self-contained HTML page.

:func:`write_report` writes into ``out_dir``:

* ``particles.csv``: the particle table, units in the header;
* ``size_distribution.csv``: the cumulative passing curves (``size``, ``passing_number``,
  ``passing_volume``) of the equivalent diameter;
* ``size_distribution.png``, ``shape_factors.png``, ``shape_vs_size.png``, ``slices.png``
  (:mod:`particleseg.analysis.plots`);
* ``report.html``: a summary table (particle count, D10/D50/D90 number- and volume-weighted,
  medians of the shape factors, and the caller's ``summary`` entries) and all figures embedded
  as base64 PNG data URIs, so the page is one file. A small inline script sets
  ``data-images-loaded`` / ``data-images-total`` on ``<body>`` once the page has loaded (how many
  images decoded), for automated checks.

Every file is written atomically (``<name>.tmp``, then ``os.replace``). Only the three mid
slices are read from the label and image arrays.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from particleseg.analysis.distribution import size_distribution, write_particles_csv
from particleseg.analysis.plots import (
    SHAPE_FACTORS,
    plot_shape_factors,
    plot_shape_vs_size,
    plot_size_distribution,
    plot_slices,
)
from particleseg.io.atomic import write_bytes_atomic as write_atomic

__all__ = ["REPORT_FILES", "write_report"]

_FIGURES = (
    ("size_distribution", "Cumulative size distribution"),
    ("shape_factors", "Shape factors"),
    ("shape_vs_size", "Shape against size"),
    ("slices", "Orthogonal mid slices with particle outlines"),
)
#: The files :func:`write_report` writes into its folder (a caller that clears a folder before
#: writing it again removes these).
REPORT_FILES = (
    "particles.csv",
    "size_distribution.csv",
    *(f"{name}.png" for name, _ in _FIGURES),
    "report.html",
)

_STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; max-width: 1600px; }
table { border-collapse: collapse; margin-bottom: 2em; }
th, td { border: 1px solid #ccc; padding: 4px 10px; text-align: left; }
th { background: #f2f2f2; }
figure { margin: 0 0 2em 0; }
img { max-width: 100%; height: auto; border: 1px solid #ddd; }
"""

_SCRIPT = """
window.addEventListener("load", function () {
  var images = document.images, loaded = 0;
  for (var i = 0; i < images.length; i++) {
    if (images[i].complete && images[i].naturalWidth > 0) { loaded++; }
  }
  document.body.dataset.imagesLoaded = String(loaded);
  document.body.dataset.imagesTotal = String(images.length);
});
"""


def _fmt(value: Any) -> str:
    if isinstance(value, float | np.floating):
        return f"{float(value):.6g}"
    return str(value)


def _summary_rows(
    table: Mapping[str, np.ndarray], dist: Any, unit: str, summary: Mapping[str, Any]
) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = [("particles", str(dist.count))]
    if "touches_edge" in table:
        rows.append(("particles touching the volume edge", str(int(np.sum(table["touches_edge"])))))
    for weighting, values in (("number", dist.d_number), ("volume", dist.d_volume)):
        for p, d in values.items():
            rows.append((f"D{p:g} ({weighting}-weighted) [{unit}]", _fmt(d)))
    for name in SHAPE_FACTORS:
        if name in table and len(table[name]):
            rows.append((f"median {name}", _fmt(float(np.median(table[name])))))
    rows.extend((str(key), _fmt(value)) for key, value in summary.items())
    return rows


def _html(rows: Sequence[tuple[str, str]], figures: Mapping[str, bytes], title: str) -> str:
    lines = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{_STYLE}</style>",
        f"<script>{_SCRIPT}</script>",
        "</head>",
        "<body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p>Generated {dt.datetime.now().isoformat(timespec='seconds')}.</p>",
        "<h2>Summary</h2>",
        "<table>",
        "<tr><th>quantity</th><th>value</th></tr>",
    ]
    for key, value in rows:
        lines.append(f"<tr><td>{html.escape(key)}</td><td>{html.escape(value)}</td></tr>")
    lines.append("</table>")
    for name, caption in _FIGURES:
        data = base64.b64encode(figures[name]).decode("ascii")
        lines += [
            f"<h2>{html.escape(caption)}</h2>",
            "<figure>",
            f'<img src="data:image/png;base64,{data}" alt="{html.escape(caption)}" id="{name}">',
            "</figure>",
        ]
    lines += ["</body>", "</html>", ""]
    return "\n".join(lines)


def write_report(
    out_dir: str | os.PathLike[str],
    table: Mapping[str, np.ndarray],
    labels: Any,
    image: Any | None,
    spacing: Sequence[float],
    unit: str,
    summary: Mapping[str, Any] | None = None,
    *,
    title: str = "Particle characterisation report",
) -> dict[str, Path]:
    """Write the particle CSVs, figures and a self-contained HTML report.

    Args:
        out_dir: Output folder (created if needed).
        table: Particle table (:func:`particleseg.analysis.particle_properties`).
        labels: (Z, Y, X) label array (numpy, zarr or dask); only three slices are read.
        image: (Z, Y, X) image of the same shape, or None.
        spacing: (sz, sy, sx) voxel size in ``unit``.
        unit: Length unit of the table (e.g. ``"mm"`` or ``"voxel"``).
        summary: Extra key/value pairs shown in the summary table (e.g. scan name, model).
        title: Page title.

    Returns:
        Paths written, by name: ``particles_csv``, ``size_distribution_csv``,
        ``size_distribution_png``, ``shape_factors_png``, ``shape_vs_size_png``, ``slices_png``,
        ``report_html``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dist = size_distribution(table["equivalent_diameter"], table["volume"])
    paths = {
        "particles_csv": write_particles_csv(out / "particles.csv", table, unit),
        "size_distribution_csv": write_particles_csv(
            out / "size_distribution.csv", dist.as_table(), unit
        ),
    }
    figures = {
        "size_distribution": plot_size_distribution(dist, unit=unit),
        "shape_factors": plot_shape_factors(table),
        "shape_vs_size": plot_shape_vs_size(table, unit=unit),
        "slices": plot_slices(labels, image, spacing),
    }
    for name, data in figures.items():
        paths[f"{name}_png"] = write_atomic(out / f"{name}.png", data)
    rows = _summary_rows(table, dist, unit, summary or {})
    page = _html(rows, figures, title)
    paths["report_html"] = write_atomic(out / "report.html", page.encode("utf-8"))
    return paths

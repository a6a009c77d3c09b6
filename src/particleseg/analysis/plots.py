"""Figures of a particle table (matplotlib, Agg canvas; no pyplot, no global backend change).

Each function returns the PNG bytes and, given ``path``, also writes them there atomically:

* :func:`plot_size_distribution`: cumulative passing curves (number- and volume-weighted) with
  D10/D50/D90 marked;
* :func:`plot_shape_factors`: histograms of sphericity, elongation, flatness, solidity and Feret
  ratio;
* :func:`plot_shape_vs_size`: each shape factor against the equivalent diameter;
* :func:`plot_slices`: three orthogonal mid slices of the image (or the labels) with particle
  outlines (``skimage.segmentation.find_boundaries`` on each label slice), reading only those
  slices from zarr or other lazily indexed arrays.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter

from particleseg.analysis.distribution import SizeDistribution
from particleseg.io import read_box
from particleseg.io.atomic import write_bytes_atomic as write_atomic

__all__ = [
    "SHAPE_FACTORS",
    "plot_shape_factors",
    "plot_shape_vs_size",
    "plot_size_distribution",
    "plot_slices",
]

#: Dimensionless shape factors plotted, with their axis labels.
SHAPE_FACTORS = {
    "sphericity": "sphericity",
    "elongation": "elongation (intermediate / major)",
    "flatness": "flatness (minor / intermediate)",
    "solidity": "solidity (volume / convex volume)",
    "feret_ratio": "Feret ratio (min / max)",
}
#: Longest side, in pixels, of a slice drawn by :func:`plot_slices` (larger ones are reduced).
MAX_SLICE_PIXELS = 1024
_NUMBER, _VOLUME = "tab:blue", "tab:orange"


def _log_x(ax: Any) -> None:
    """Logarithmic x axis with plain numbers on the major ticks only."""
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _png(fig: Figure, path: str | os.PathLike[str] | None) -> bytes:
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    data = buffer.getvalue()
    if path is not None:
        write_atomic(path, data)
    return data


def plot_size_distribution(
    dist: SizeDistribution, path: str | os.PathLike[str] | None = None, *, unit: str = "voxel"
) -> bytes:
    """Cumulative passing curves (number and volume weighted) with the D-values marked.

    Args:
        dist: The size distribution.
        path: Where to write the PNG, or None.
        unit: Length unit for the axis label.

    Returns:
        The PNG bytes.
    """
    fig = Figure(figsize=(7.0, 4.5))
    ax = fig.add_subplot()
    if dist.count:
        for values, d_values, color, label in (
            (dist.passing_number, dist.d_number, _NUMBER, "number-weighted"),
            (dist.passing_volume, dist.d_volume, _VOLUME, "volume-weighted"),
        ):
            x = np.concatenate([[dist.size[0]], dist.size])
            y = np.concatenate([[0.0], values]) * 100
            ax.step(x, y, where="post", color=color, label=label)
            for p, d in d_values.items():
                ax.plot([d], [p], "o", color=color, markersize=5)
                ax.annotate(
                    f"D{p:g} = {d:.3g}",
                    (d, p),
                    textcoords="offset points",
                    xytext=(6, -10 if color == _NUMBER else 4),
                    fontsize=8,
                    color=color,
                )
        if dist.size[0] > 0 and dist.size[-1] > dist.size[0]:
            _log_x(ax)
        ax.legend(loc="lower right")
    else:
        ax.text(0.5, 0.5, "no particles", ha="center", va="center", transform=ax.transAxes)
    for p in (10, 50, 90):
        ax.axhline(p, color="0.85", linewidth=0.8, zorder=0)
    ax.set_ylim(0, 100)
    ax.set_xlabel(f"equivalent diameter [{unit}]")
    ax.set_ylabel("cumulative passing [%]")
    ax.set_title(f"Particle size distribution ({dist.count} particles)")
    fig.tight_layout()
    return _png(fig, path)


def _factors(table: Mapping[str, np.ndarray]) -> list[str]:
    return [name for name in SHAPE_FACTORS if name in table]


def plot_shape_factors(
    table: Mapping[str, np.ndarray], path: str | os.PathLike[str] | None = None, *, bins: int = 20
) -> bytes:
    """Histograms of the shape factors (share of particles per bin).

    Args:
        table: Particle table with some of the :data:`SHAPE_FACTORS` columns.
        path: Where to write the PNG, or None.
        bins: Bins over [0, 1] (extended to the largest value where one exceeds 1).

    Returns:
        The PNG bytes.
    """
    names = _factors(table)
    fig = Figure(figsize=(3.2 * max(len(names), 1), 3.2))
    for k, name in enumerate(names, start=1):
        ax = fig.add_subplot(1, len(names), k)
        values = np.asarray(table[name], np.float64)
        values = values[np.isfinite(values)]
        top = max(1.0, float(values.max())) if len(values) else 1.0
        weights = np.full(len(values), 100.0 / len(values)) if len(values) else None
        ax.hist(values, bins=bins, range=(0.0, top), weights=weights, color=_NUMBER)
        ax.set_xlabel(SHAPE_FACTORS[name], fontsize=8)
        ax.set_ylabel("particles [%]" if k == 1 else "")
        if len(values):
            ax.axvline(np.median(values), color="k", linestyle=":", linewidth=1)
            ax.set_title(f"median {np.median(values):.3f}", fontsize=9)
    fig.tight_layout()
    return _png(fig, path)


def plot_shape_vs_size(
    table: Mapping[str, np.ndarray],
    path: str | os.PathLike[str] | None = None,
    *,
    unit: str = "voxel",
    size_column: str = "equivalent_diameter",
) -> bytes:
    """Each shape factor against the particle size (one point per particle).

    Args:
        table: Particle table with ``size_column`` and shape-factor columns.
        path: Where to write the PNG, or None.
        unit: Length unit for the axis label.
        size_column: The size on the horizontal axis.

    Returns:
        The PNG bytes.
    """
    names = _factors(table)
    size = np.asarray(table[size_column], np.float64)
    fig = Figure(figsize=(3.2 * max(len(names), 1), 3.2))
    alpha = float(np.clip(200.0 / max(len(size), 1), 0.05, 0.8))
    for k, name in enumerate(names, start=1):
        ax = fig.add_subplot(1, len(names), k)
        ax.scatter(size, np.asarray(table[name]), s=4, alpha=alpha, color=_NUMBER, linewidths=0)
        if len(size) and size.min() > 0 and size.max() > size.min():
            _log_x(ax)
        ax.set_xlabel(f"{size_column.replace('_', ' ')} [{unit}]", fontsize=8)
        ax.set_ylabel(SHAPE_FACTORS[name], fontsize=8)
    fig.tight_layout()
    return _png(fig, path)


def _reduce(slice2d: np.ndarray, factor: int, op: str) -> np.ndarray:
    """Shrink a 2D array by an integer factor: striding (``"take"``) or block-any (``"any"``)."""
    if factor <= 1:
        return slice2d
    if op == "take":
        return slice2d[::factor, ::factor]
    h, w = (-(-n // factor) * factor for n in slice2d.shape)
    padded = np.zeros((h, w), bool)
    padded[: slice2d.shape[0], : slice2d.shape[1]] = slice2d
    return padded.reshape(h // factor, factor, w // factor, factor).any(axis=(1, 3))


def _grey(slice2d: np.ndarray) -> np.ndarray:
    """Image slice scaled to [0, 1] between its 0.5th and 99.5th percentiles."""
    values = slice2d.astype(np.float64)
    lo, hi = np.percentile(values, [0.5, 99.5]) if values.size else (0.0, 1.0)
    return np.clip((values - lo) / (hi - lo), 0.0, 1.0) if hi > lo else np.zeros_like(values)


def _label_colours(labels2d: np.ndarray) -> np.ndarray:
    """Pseudo-random grey level per label (background black): (h, w) float in [0, 1]."""
    ids = labels2d.astype(np.uint64)
    hashed = (ids * np.uint64(2654435761)) % np.uint64(997)
    return np.where(ids > 0, 0.3 + 0.7 * hashed / 996.0, 0.0)


def plot_slices(
    labels: Any,
    image: Any | None = None,
    spacing: Sequence[float] = (1.0, 1.0, 1.0),
    path: str | os.PathLike[str] | None = None,
) -> bytes:
    """Three orthogonal mid slices with particle outlines (red).

    Only the three slices are read (zarr and dask arrays are indexed lazily). Slices longer than
    :data:`MAX_SLICE_PIXELS` are reduced for drawing (outlines by block-any, so none vanish).

    Args:
        labels: (Z, Y, X) label array (numpy, zarr or dask).
        image: (Z, Y, X) image of the same shape, or None to show the labels in grey levels.
        spacing: (sz, sy, sx) voxel size, for the aspect ratio of each slice.
        path: Where to write the PNG, or None.

    Returns:
        The PNG bytes.
    """
    from skimage.segmentation import find_boundaries

    shape = tuple(int(n) for n in labels.shape)
    mid = [n // 2 for n in shape]
    sz, sy, sx = (float(s) for s in spacing)
    views = [
        (f"z = {mid[0]} (YX)", (mid[0], slice(None), slice(None)), sy / sx),
        (f"y = {mid[1]} (ZX)", (slice(None), mid[1], slice(None)), sz / sx),
        (f"x = {mid[2]} (ZY)", (slice(None), slice(None), mid[2]), sz / sy),
    ]
    fig = Figure(figsize=(15.0, 5.4))
    for k, (title, index, aspect) in enumerate(views, start=1):
        lab = read_box(labels, index)
        grey = _grey(read_box(image, index)) if image is not None else _label_colours(lab)
        edges = find_boundaries(lab, mode="inner") & (lab > 0)
        factor = int(np.ceil(max(lab.shape) / MAX_SLICE_PIXELS))
        grey, edges = _reduce(grey, factor, "take"), _reduce(edges, factor, "any")
        rgb = np.repeat(grey[..., None], 3, axis=2)
        rgb[edges] = (1.0, 0.15, 0.1)
        ax = fig.add_subplot(1, 3, k)
        ax.imshow(rgb, interpolation="nearest", aspect=aspect)
        ax.set_title(title)
        ax.set_axis_off()
    fig.tight_layout()
    return _png(fig, path)

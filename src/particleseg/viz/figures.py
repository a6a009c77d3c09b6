"""Figures of the evaluation and of training: scores per method and split, examples, curves.

matplotlib's object API only (``Figure``, no pyplot state), imported when a figure is drawn;
PNGs are written atomically.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from particleseg.evaluation.tables import REPORT_SCORES
from particleseg.io.atomic import write_bytes_atomic

LOWER_IS_BETTER = ("merger_ratio", "splitter_ratio")


def _savefig(fig, path: Path) -> None:

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    write_bytes_atomic(path, buf.getvalue())


def plot_scores(path: Path, rows: Sequence[dict], methods: Sequence[str]) -> None:
    """One panel per score: per split, a bar per method (its mean) and a dot per sample.

    Args:
        path: the PNG to write.
        rows: one dict per (method, sample) with ``method``, ``split`` and every score.
        methods: the methods in the order to show them.
    """
    from matplotlib.figure import Figure

    splits = list(dict.fromkeys(r["split"] for r in rows))
    fig = Figure(figsize=(13, 7))
    axes = fig.subplots(2, 3)
    width = 0.8 / len(methods)
    for ax, metric in zip(axes.ravel(), REPORT_SCORES, strict=True):
        for m, method in enumerate(methods):
            for s, split in enumerate(splits):
                values = [r[metric] for r in rows if r["method"] == method and r["split"] == split]
                x = s + (m - (len(methods) - 1) / 2) * width
                ax.bar(x, np.mean(values), width, color=f"C{m}", label=method if s == 0 else None)
                ax.plot([x] * len(values), values, "k.", markersize=4)
        ax.set_xticks(range(len(splits)), splits)
        better = "lower" if metric in LOWER_IS_BETTER else "higher"
        ax.set_title(f"{metric} ({better} is better)", fontsize=10)
        if metric not in LOWER_IS_BETTER:
            ax.set_ylim(0, 1)
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    _savefig(fig, path)


def plot_example(
    path: Path,
    image: np.ndarray,
    reference: np.ndarray,
    predictions: dict[str, np.ndarray],
    example: dict,
    title: str,
    crop: int = 64,
) -> None:
    """A Z slice through an example's particle: image, reference and each prediction outlined.

    Args:
        path: the PNG to write.
        image: (Z, Y, X) scan.
        reference: (Z, Y, X) reference labels.
        predictions: method name -> (Z, Y, X) labels.
        example: from :func:`particleseg.metrics.examples.find_examples`.
        title: figure title.
        crop: side of the square shown around the particle (clipped to the scan).
    """
    from matplotlib.figure import Figure

    from particleseg.viz.slices import outline_overlay

    z, y, x = example["center"]
    half = crop // 2
    y0 = int(np.clip(y - half, 0, max(image.shape[1] - crop, 0)))
    x0 = int(np.clip(x - half, 0, max(image.shape[2] - crop, 0)))
    window = (z, slice(y0, y0 + crop), slice(x0, x0 + crop))
    panels = [("image", None), ("reference", reference)] + list(predictions.items())
    fig = Figure(figsize=(3 * len(panels), 3.3))
    axes = fig.subplots(1, len(panels))
    for ax, (name, labels) in zip(axes, panels, strict=True):
        lab = None if labels is None else np.asarray(labels[window])
        ax.imshow(outline_overlay(np.asarray(image[window]), lab), interpolation="nearest")
        ax.set_title(name, fontsize=9)
        ax.axis("off")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    _savefig(fig, path)


def plot_metric_bars(path: Path, rows: Sequence[dict], metric: str, title: str = "") -> None:
    """One bar per sample, coloured by split, with the per-split mean as a dashed line."""
    from matplotlib.figure import Figure

    splits = list(dict.fromkeys(r["split"] for r in rows))
    colours = {s: f"C{i}" for i, s in enumerate(splits)}
    fig = Figure(figsize=(max(4.0, 0.5 * len(rows) + 2), 3.2), dpi=100)
    ax = fig.subplots()
    ax.bar(range(len(rows)), [r[metric] for r in rows], color=[colours[r["split"]] for r in rows])
    for s in splits:
        idx = [i for i, r in enumerate(rows) if r["split"] == s]
        mean = sum(rows[i][metric] for i in idx) / len(idx)
        ax.hlines(
            mean,
            min(idx) - 0.4,
            max(idx) + 0.4,
            colors=colours[s],
            linestyles="--",
            label=f"{s} mean {mean:.3f}",
        )
    ax.set_xticks(
        range(len(rows)), [r["sample"] for r in rows], rotation=60, ha="right", fontsize=7
    )
    ax.set_ylabel(metric)
    top = max([r[metric] for r in rows] + [1e-9])
    ax.set_ylim(
        0,
        1.05
        if metric not in ("merger_ratio", "splitter_ratio")
        else max(0.05, math.ceil(top * 120) / 100),
    )
    ax.set_title(title or metric)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    write_bytes_atomic(Path(path), buf.getvalue())


def plot_training_curves(
    path: Path,
    history: dict[str, list[tuple[int, float]]],
    metrics: Sequence[str] = ("val/f1_instance", "val/f1_match", "val/f1", "val/pq"),
    title: str = "",
) -> None:
    """Validation metrics against epoch (left) and the training loss (right), as a PNG."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.4), dpi=100)
    ax, ax_loss = fig.subplots(1, 2)
    for m in metrics:
        if history.get(m):
            e, v = zip(*history[m], strict=True)
            ax.plot(e, v, marker="o", ms=3, label=m.split("/")[-1])
    ax.set_xlabel("epoch")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(title or "validation")
    if history.get("train/loss"):
        e, v = zip(*history["train/loss"], strict=True)
        ax_loss.plot(e, v, color="C3")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_title("train/loss (Dice + CE, deep supervision)")
    ax_loss.grid(alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    write_bytes_atomic(Path(path), buf.getvalue())

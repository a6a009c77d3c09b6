"""The evaluation report's figures and Markdown: methods side by side per split (no torch)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from particleseg.io.atomic import write_bytes_atomic
from particleseg.metrics.report import REPORT_SCORES

BEGIN, END = "<!-- report:begin -->", "<!-- report:end -->"
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

    from particleseg.synth.preview import outline_overlay

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


def _fmt(value) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def markdown_table(header: Sequence[str], lines: Sequence[Sequence]) -> str:
    """A GitHub Markdown table."""
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(_fmt(v) for v in line) + " |" for line in lines]
    return "\n".join(out)


def replace_between_markers(path: Path, generated: str, heading: str, name: str = "report") -> None:
    """Write ``generated`` between the markers ``<!-- NAME:begin/end -->`` of ``path``.

    The rest of the file is kept. A missing file is created with ``heading`` and the markers; a
    file without them gets them appended.
    """
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    block = f"{begin}\n{generated.rstrip()}\n{end}"
    text = path.read_text() if path.exists() else f"# {heading}\n\n{begin}\n{end}\n"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        tail = rest.split(end, 1)[1]
        text = head + block + tail
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    write_bytes_atomic(path, text.encode())

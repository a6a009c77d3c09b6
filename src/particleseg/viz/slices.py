"""Slices of a volume as pictures: a grey slice with the particles' outlines drawn on it."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np


def outline_overlay(image: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
    """An RGB uint8 picture of a 2D slice with label outlines.

    Args:
        image: (H, W) greyscale slice, any dtype; shown between its 0.5 and 99.5 percentiles.
        labels: optional (H, W) instance labels; their boundaries are drawn in colours that
            differ between neighbouring particles.

    Returns:
        (H, W, 3) uint8.
    """
    from skimage.segmentation import find_boundaries

    image = np.asarray(image, np.float64)
    lo, hi = np.percentile(image, (0.5, 99.5))
    grey = np.clip((image - lo) / max(hi - lo, 1e-12), 0, 1)
    rgb = np.repeat((grey * 255).astype(np.uint8)[..., None], 3, axis=-1)
    if labels is not None:
        edges = find_boundaries(labels, mode="inner") & (labels > 0)
        hues = np.array(
            [
                [255, 60, 60],
                [60, 220, 60],
                [70, 140, 255],
                [255, 200, 0],
                [230, 70, 230],
                [0, 220, 220],
            ],
            np.uint8,
        )
        rgb[edges] = hues[labels[edges] % len(hues)]
    return rgb


def save_slices_png(path: Path, image, labels=None, title: str = "") -> None:
    """Save the middle Z slice and the middle Y slice side by side as one PNG (atomically)."""
    from matplotlib.figure import Figure

    from particleseg.io.atomic import write_bytes_atomic

    z, y = image.shape[0] // 2, image.shape[1] // 2
    views = [
        ("Z slice", np.asarray(image[z]), None if labels is None else np.asarray(labels[z])),
        ("Y slice", np.asarray(image[:, y]), None if labels is None else np.asarray(labels[:, y])),
    ]
    fig = Figure(figsize=(10, 5), dpi=100)
    axes = fig.subplots(1, 2)
    for ax, (name, img, lab) in zip(axes, views, strict=True):
        ax.imshow(outline_overlay(img, lab), interpolation="nearest")
        ax.set_title(f"{name}", fontsize=9)
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    write_bytes_atomic(path, buf.getvalue())

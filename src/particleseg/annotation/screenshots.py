"""Screenshots of the annotation tools: a PNG of the viewer's canvas with a tool's panel beside it.

:func:`save_screenshot` uses ``viewer.screenshot`` where OpenGL works (:func:`opengl_available`),
else :func:`render_slice`, a software picture of the current slice drawn from the layer data
(headless machines, CI). Qt and matplotlib are imported only when a function is called.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

PathLike = str | os.PathLike[str]


def opengl_available() -> bool:
    """Whether Qt can create an OpenGL context here (napari's canvas needs one).

    False on headless machines without a display or GL driver (e.g. ``QT_QPA_PLATFORM=
    offscreen``): use a ``napari.components.ViewerModel`` and :func:`render_slice` there.
    """
    from qtpy.QtGui import QOpenGLContext
    from qtpy.QtWidgets import QApplication

    _app = QApplication.instance() or QApplication([])
    return bool(QOpenGLContext().create())


def grab_widget(widget: Any) -> np.ndarray:
    """(H, W, 3) uint8 picture of a magicgui or Qt widget (rendered offscreen)."""
    native = getattr(widget, "native", widget)
    import io

    from matplotlib.image import imread
    from qtpy.QtCore import QBuffer, QByteArray, QIODevice

    native.adjustSize()
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.WriteOnly)
    native.grab().save(buffer, "PNG")
    buffer.close()
    rgb = imread(io.BytesIO(bytes(data)), format="png")[..., :3]
    return (np.asarray(rgb) * 255).round().astype(np.uint8)


def render_slice(viewer: Any, zoom: int | None = None) -> np.ndarray:
    """Software picture of the current 2D slice: the visible layers drawn from their data.

    Used for screenshots where there is no OpenGL (headless machines, CI): Image layers with
    their colormap and contrast limits, Labels layers with their colours and opacity, and the
    Points and Shapes of the slice.

    Args:
        viewer: A napari viewer showing (Z, Y, X) layers in 2D.
        zoom: Integer magnification (nearest neighbour); default: up to 400 x 720 pixels.

    Returns:
        (H, W, 3) uint8 image.
    """
    from skimage.draw import disk, line

    layers = [layer for layer in viewer.layers if layer.visible]
    shape = max(
        (
            layer.data.shape
            for layer in layers
            if hasattr(layer.data, "shape") and np.ndim(layer.data) == 3
        ),
        default=(1, 64, 64),
    )
    z = int(round(viewer.dims.point[0]))
    zoom = zoom or max(1, min(400 // shape[1], 720 // shape[2]))
    canvas = np.zeros((*shape[1:], 3), dtype=np.float64)
    for layer in layers:
        kind = type(layer).__name__
        if kind == "Image":
            lo, hi = layer.contrast_limits
            v = np.clip((np.asarray(layer.data[z], np.float64) - lo) / max(hi - lo, 1e-12), 0, 1)
            rgba = layer.colormap.map(v.ravel()).reshape(*v.shape, 4)
            alpha = layer.opacity * rgba[..., 3:]
            canvas = canvas * (1 - alpha) + rgba[..., :3] * alpha
        elif kind == "Labels":
            ids = np.asarray(layer.data[z])
            values, inverse = np.unique(ids, return_inverse=True)
            lut = np.array([layer.get_color(v) if v else (0, 0, 0, 0) for v in values], float)
            rgba = lut[inverse.reshape(ids.shape)]
            alpha = layer.opacity * rgba[..., 3:]
            canvas = canvas * (1 - alpha) + rgba[..., :3] * alpha
    out = np.repeat(np.repeat(canvas, zoom, axis=0), zoom, axis=1)
    for layer in layers:
        kind = type(layer).__name__
        if kind == "Points":
            for p, color in zip(np.asarray(layer.data), layer.face_color, strict=False):
                if abs(p[0] - z) < 0.5:
                    rr, cc = disk(
                        ((p[1] + 0.5) * zoom, (p[2] + 0.5) * zoom), 2 * zoom, shape=out.shape[:2]
                    )
                    out[rr, cc] = color[:3]
        elif kind == "Shapes":
            for verts, color in zip(layer.data, layer.edge_color, strict=False):
                verts = np.asarray(verts)
                if len(verts) and abs(verts[0, 0] - z) < 0.5:
                    pts = np.rint((verts[:, 1:] + 0.5) * zoom).astype(int)
                    for (r0, c0), (r1, c1) in zip(pts, pts[1:], strict=False):
                        rr, cc = line(r0, c0, r1, c1)
                        for dr, dc in ((0, 0), (-1, 0), (1, 0), (0, -1), (0, 1)):
                            r, c = rr + dr, cc + dc
                            ok = (r >= 0) & (r < out.shape[0]) & (c >= 0) & (c < out.shape[1])
                            out[r[ok], c[ok]] = color[:3]
    return (np.clip(out, 0, 1) * 255).astype(np.uint8)


def save_screenshot(
    viewer: Any, path: PathLike, widget: Any = None, *, zoom: int | None = None
) -> Path:
    """Save a PNG of the viewer's canvas, with a tool's panel beside it.

    Uses ``viewer.screenshot`` where OpenGL works, else :func:`render_slice`.

    Args:
        viewer: The napari viewer.
        path: Destination ``.png``.
        widget: A tool's ``widget`` (or any Qt widget) to put on the right, or None.
        zoom: Magnification of the software rendering (default: up to 400 x 720 pixels).

    Returns:
        ``Path(path)``.
    """
    from matplotlib.image import imsave

    try:
        canvas = np.asarray(viewer.screenshot(canvas_only=True))[..., :3]
    except Exception:  # no OpenGL context (headless): draw the layers ourselves
        canvas = render_slice(viewer, zoom)
    parts = [canvas]
    if widget is not None:
        parts.append(grab_widget(widget))
    height = max(p.shape[0] for p in parts)
    padded = [
        np.pad(p, ((0, height - p.shape[0]), (0, 0), (0, 0)), constant_values=38) for p in parts
    ]
    gap = np.full((height, 8, 3), 38, dtype=np.uint8)
    picture = np.concatenate(_interleave(padded, gap), axis=1)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    imsave(path, picture)
    return path


def _interleave(parts: Sequence[np.ndarray], gap: np.ndarray) -> list[np.ndarray]:
    out: list[np.ndarray] = []
    for i, p in enumerate(parts):
        if i:
            out.append(gap)
        out.append(p)
    return out

"""Small helpers of the napari annotation widgets (:mod:`particleseg.annotation.widgets`).

napari and magicgui are imported only when a widget is built (:func:`_napari`, :func:`_widgets`),
so that importing :mod:`particleseg.annotation` needs neither.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

INSTALL_HINT = "the annotation widgets need napari: pip install 'particleseg[napari]'"


def _napari() -> Any:
    try:
        import napari
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(INSTALL_HINT) from exc
    return napari


def _widgets() -> Any:
    try:
        from magicgui import widgets
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(INSTALL_HINT) from exc
    return widgets


def _layer_choices(viewer: Any, kinds: tuple[str, ...]) -> Callable[[Any], list[tuple[str, Any]]]:
    """A magicgui ``choices`` callable: the viewer's layers of the given kinds (class names)."""

    def choices(_widget: Any) -> list[tuple[str, Any]]:
        return [(layer.name, layer) for layer in viewer.layers if type(layer).__name__ in kinds]

    return choices


def _layer_combo(viewer: Any, label: str, kinds: tuple[str, ...]) -> Any:
    w = _widgets()
    combo = w.ComboBox(label=label, choices=_layer_choices(viewer, kinds), nullable=True)

    def on_inserted(event: Any) -> None:
        combo.reset_choices()
        if combo.value is None and type(event.value).__name__ in kinds:
            combo.value = event.value  # the first layer of its kind is picked for the user

    viewer.layers.events.inserted.connect(on_inserted)
    viewer.layers.events.removed.connect(lambda _e: combo.reset_choices())
    if combo.value is None and len(combo.choices) > 1:
        combo.value = combo.choices[1]
    return combo


def _floats(text: str, n: int | None, what: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.replace(",", " ").split())
    except ValueError as exc:
        raise ValueError(f"{what}: expected numbers separated by commas, got {text!r}") from exc
    if not values or (n is not None and len(values) != n):
        raise ValueError(f"{what}: expected {n or 'some'} numbers, got {text!r}")
    return values


def _set_layer(viewer: Any, name: str, data: np.ndarray, **kwargs: Any) -> Any:
    """Update the data of the Labels layer ``name``, or add it."""
    if name in viewer.layers:
        layer = viewer.layers[name]
        layer.data = data
        return layer
    return viewer.add_labels(data, name=name, **kwargs)


def _to_labels_coords(layer: Any, target: Any, points: np.ndarray) -> np.ndarray:
    """(N, 3) data coordinates of ``layer`` -> data coordinates of ``target`` (via world)."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    return np.array([target.world_to_data(layer.data_to_world(p)) for p in pts]).reshape(-1, 3)


def _points_of(layer: Any) -> list[np.ndarray]:
    """Polylines of a Points layer (one, in point order) or a Shapes layer (one per shape)."""
    if type(layer).__name__ == "Shapes":
        return [np.asarray(d, dtype=np.float64) for d in layer.data if len(d)]
    data = np.asarray(layer.data, dtype=np.float64)
    return [data] if len(data) else []


def _report(status: Any, method: Callable[[], Any]) -> Callable[..., None]:
    """A button callback: run ``method``, show a ValueError in the status line, not a traceback."""

    def callback(*_args: Any) -> None:
        try:
            method()
        except ValueError as exc:
            status.value = f"error: {exc}"

    return callback

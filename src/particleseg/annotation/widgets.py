"""napari widgets for labelling a scan: scribble classifier, particle splitting, saving a sample.

Start them with ``python -m particleseg.annotation gui IMAGE`` (see ``docs/annotation.md``) or,
from Python, :func:`launch` / :func:`add_annotation_tools`. napari and magicgui are imported only
when a tool is built (``pip install 'particleseg[napari]'``); every button calls a plain method
(:meth:`ScribbleTool.train`, :meth:`SplitTool.split`, ...) that tests can drive headless.

Layers are assumed to share one voxel grid (the image's); points and shapes are converted from
world to the labels layer's data coordinates, so a scale set on all layers alike is fine.

Screenshots of the viewer and of a tool's panel: :mod:`particleseg.annotation.screenshots`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from particleseg.annotation._widget_helpers import (
    _floats,
    _layer_combo,
    _napari,
    _points_of,
    _report,
    _set_layer,
    _to_labels_coords,
    _widgets,
)
from particleseg.annotation.instances import label_instances
from particleseg.annotation.sample import estimate_particle_size_px, save_sample
from particleseg.annotation.scribbles import (
    ScribbleClassifier,
    predict_semantic,
    train_scribble_classifier,
    update_scribble_classifier,
)
from particleseg.annotation.split import split_particle

PathLike = str | os.PathLike[str]

PREVIEW_NAME = "semantic preview"
INSTANCES_NAME = "instances"
SCRIBBLES_NAME = "scribbles"
MARKERS_NAME = "split markers"
BORDER_NAME = "split border"


class ScribbleTool:
    """Scribble -> "Train / update" -> preview of the classes -> "Accept" -> instance labels.

    Attributes:
        viewer: The napari viewer.
        widget: The magicgui container to dock.
        model: The current classifier (None before the first training).
    """

    def __init__(self, viewer: Any) -> None:
        w = _widgets()
        self.viewer = viewer
        self.model: ScribbleClassifier | None = None
        self._trained_on: tuple[int, tuple[float, ...], int] | None = None
        self.image = _layer_combo(viewer, "image", ("Image",))
        self.scribbles = _layer_combo(viewer, "scribbles", ("Labels",))
        self.sigmas = w.LineEdit(label="sigmas (voxels)", value="1, 2, 4, 8")
        self.n_estimators = w.SpinBox(label="trees", value=50, min=1, max=1000)
        self.foreground = w.SpinBox(label="particle class", value=1, min=1, max=255)
        self.split_touching = w.CheckBox(label="split touching (watershed)", value=False)
        self.h = w.FloatSpinBox(label="split depth h", value=2.0, min=0.1, max=100.0, step=0.5)
        self.min_size = w.SpinBox(label="min size (voxels)", value=0, min=0, max=10**9)
        self.status = w.Label(value="paint class 1 = particle, 2 = background")
        buttons = {
            "New scribble layer": self.new_scribble_layer,
            "Train / update": self.train,
            "Accept": self.accept,
            "Reset classifier": self.reset,
        }
        self.buttons = {}
        for text, method in buttons.items():
            button = w.PushButton(text=text)
            button.changed.connect(_report(self.status, method))
            self.buttons[text] = button
        self.widget = w.Container(
            widgets=[
                self.image,
                self.scribbles,
                self.buttons["New scribble layer"],
                self.sigmas,
                self.n_estimators,
                self.buttons["Train / update"],
                self.foreground,
                self.split_touching,
                self.h,
                self.min_size,
                self.buttons["Accept"],
                self.buttons["Reset classifier"],
                self.status,
            ]
        )

    def _image_layer(self) -> Any:
        if self.image.value is None:
            raise ValueError("choose an image layer")
        return self.image.value

    def new_scribble_layer(self) -> Any:
        """Add an empty uint8 ``scribbles`` Labels layer over the image, in paint mode (class 1).

        Returns:
            The new layer.
        """
        image = self._image_layer()
        layer = self.viewer.add_labels(
            np.zeros(image.data.shape, dtype=np.uint8), name=SCRIBBLES_NAME, scale=image.scale
        )
        layer.brush_size = 3
        layer.selected_label = 1
        layer.mode = "paint"
        self.scribbles.value = layer
        return layer

    def train(self) -> Any:
        """Train (or refine) the classifier on the scribbles and show its prediction.

        The first call trains; later calls on the same image and sigmas add the new scribbles
        (:func:`update_scribble_classifier`), other calls start over.

        Returns:
            The ``semantic preview`` Labels layer ((Z, Y, X) uint8 classes).
        """
        image_layer = self._image_layer()
        if self.scribbles.value is None:
            raise ValueError("choose a scribble Labels layer (or add one)")
        image = np.asarray(image_layer.data)
        scribbles = np.asarray(self.scribbles.value.data)
        sigmas = _floats(self.sigmas.value, None, "sigmas")
        key = (id(image_layer), sigmas, int(self.n_estimators.value))
        if self.model is not None and self._trained_on == key:
            self.model = update_scribble_classifier(self.model, image, scribbles)
        else:
            self.model = train_scribble_classifier(
                image, scribbles, sigmas=sigmas, n_estimators=int(self.n_estimators.value)
            )
            self._trained_on = key
        preview = predict_semantic(self.model, image)
        layer = _set_layer(self.viewer, PREVIEW_NAME, preview, opacity=0.4, scale=image_layer.scale)
        self.status.value = f"trained on {self.model.n_scribbled} scribbled voxels"
        return layer

    def accept(self) -> Any:
        """Turn the preview into instance labels (connected components, optional split).

        Returns:
            The ``instances`` Labels layer ((Z, Y, X) uint32).
        """
        if PREVIEW_NAME not in self.viewer.layers:
            raise ValueError("train first: there is no semantic preview to accept")
        preview = self.viewer.layers[PREVIEW_NAME]
        labels = label_instances(
            np.asarray(preview.data),
            int(self.foreground.value),
            split_touching=bool(self.split_touching.value),
            h=float(self.h.value),
            min_size=int(self.min_size.value),
        )
        layer = _set_layer(self.viewer, INSTANCES_NAME, labels, scale=preview.scale)
        preview.visible = False
        self.status.value = f"{int(labels.max())} particles"
        return layer

    def reset(self) -> None:
        """Forget the classifier (e.g. after erasing scribbles)."""
        self.model = None
        self._trained_on = None
        self.status.value = "classifier reset"


class SplitTool:
    """Put a marker in each part, draw the border on the contact, "Split".

    Attributes:
        viewer: The napari viewer.
        widget: The magicgui container to dock.
    """

    def __init__(self, viewer: Any) -> None:
        w = _widgets()
        self.viewer = viewer
        self._undo: tuple[Any, tuple[slice, ...], np.ndarray] | None = None
        self.labels = _layer_combo(viewer, "labels", ("Labels",))
        self.particle_id = w.SpinBox(
            label="particle id (0: under 1st marker)", value=0, min=0, max=2**31 - 1
        )
        self.markers = _layer_combo(viewer, "markers", ("Points",))
        self.border = _layer_combo(viewer, "border", ("Points", "Shapes"))
        self.status = w.Label(value="one marker per part, a border on the contact")
        self.buttons = {}
        for text, method in {
            "New marker + border layers": self.new_layers,
            "Split": self.split,
            "Undo last split": self.undo,
        }.items():
            button = w.PushButton(text=text)
            button.changed.connect(_report(self.status, method))
            self.buttons[text] = button
        self.widget = w.Container(
            widgets=[
                self.labels,
                self.buttons["New marker + border layers"],
                self.markers,
                self.border,
                self.particle_id,
                self.buttons["Split"],
                self.buttons["Undo last split"],
                self.status,
            ]
        )

    def new_layers(self) -> tuple[Any, Any]:
        """Add an empty 3D Points layer for markers and a Shapes layer (path mode) for the border.

        Returns:
            ``(markers, border)`` layers.
        """
        scale = self.labels.value.scale if self.labels.value is not None else None
        markers = self.viewer.add_points(
            np.empty((0, 3)), name=MARKERS_NAME, ndim=3, size=4, face_color="yellow", scale=scale
        )
        border = self.viewer.add_shapes(
            name=BORDER_NAME, ndim=3, edge_color="cyan", edge_width=1, scale=scale
        )
        border.mode = "add_path"
        self.markers.value, self.border.value = markers, border
        return markers, border

    def split(self) -> int:
        """Split the particle and update the labels layer (clears the markers and border).

        Returns:
            The number of parts.
        """
        layer = self.labels.value
        if layer is None or self.markers.value is None or self.border.value is None:
            raise ValueError("choose the labels, markers and border layers")
        labels = np.asarray(layer.data)
        markers = _to_labels_coords(self.markers.value, layer, self.markers.value.data)
        border = [
            _to_labels_coords(self.border.value, layer, p) for p in _points_of(self.border.value)
        ]
        if not border:
            raise ValueError("border: empty; draw a line on the contact between the parts")
        if len(markers) < 2:
            raise ValueError("markers: put one marker in each part (>= 2)")
        pid = int(self.particle_id.value)
        if pid == 0:
            z, y, x = np.clip(np.rint(markers[0]).astype(int), 0, np.array(labels.shape) - 1)
            pid = int(labels[z, y, x])
            if pid == 0:
                raise ValueError(f"the first marker {tuple(markers[0])} lies on background")
        out = split_particle(labels, pid, markers, border)
        changed = np.argwhere(out != labels)
        if changed.size == 0:
            raise ValueError(f"particle {pid}: the split changed nothing (check the border)")
        box = tuple(
            slice(int(a), int(b) + 1) for a, b in zip(changed.min(0), changed.max(0), strict=True)
        )
        self._undo = (layer, box, labels[box].copy())
        layer.data = out
        self.markers.value.data = np.empty((0, 3))
        self.border.value.data = []
        n = len(markers)
        self.status.value = f"particle {pid} split in {n}"
        return n

    def undo(self) -> None:
        """Restore the labels as they were before the last split."""
        if self._undo is None:
            raise ValueError("nothing to undo")
        layer, box, old = self._undo
        data = np.asarray(layer.data).copy()
        data[box] = old
        layer.data = data
        self._undo = None
        self.status.value = "last split undone"


class SaveTool:
    """Save the image and the instance labels as a dataset sample (:func:`save_sample`).

    Attributes:
        viewer: The napari viewer.
        widget: The magicgui container to dock.
    """

    def __init__(self, viewer: Any) -> None:
        w = _widgets()
        from particleseg.io import SPLITS

        self.viewer = viewer
        self.root = w.FileEdit(label="dataset folder", mode="d")
        self.name = w.LineEdit(label="sample name", value="")
        self.image = _layer_combo(viewer, "image", ("Image",))
        self.labels = _layer_combo(viewer, "labels", ("Labels",))
        self.spacing = w.LineEdit(label="spacing z, y, x", value="")
        self.unit = w.LineEdit(label="unit", value="mm")
        self.particle_size = w.FloatSpinBox(
            label="particle size (unit; 0: estimate)", value=0.0, min=0.0, max=1e9, step=0.01
        )
        self.split = w.ComboBox(label="split", choices=list(SPLITS), value="train")
        self.status = w.Label(value="")
        button = w.PushButton(text="Save sample")
        button.changed.connect(_report(self.status, self.save))
        self.buttons = {"Save sample": button}
        self.widget = w.Container(
            widgets=[
                self.root,
                self.name,
                self.image,
                self.labels,
                self.spacing,
                self.unit,
                self.particle_size,
                self.split,
                button,
                self.status,
            ]
        )
        self.image.changed.connect(self._fill_from_image)
        self._fill_from_image(self.image.value)

    def _fill_from_image(self, layer: Any) -> None:
        """Pre-fill name, spacing and unit from the image layer's metadata (set by launch)."""
        if layer is None:
            return
        meta = layer.metadata
        if meta.get("spacing") and not self.spacing.value:
            self.spacing.value = ", ".join(f"{s:g}" for s in meta["spacing"])
        if meta.get("unit"):
            self.unit.value = meta["unit"]
        if not self.name.value:
            self.name.value = meta.get("name", layer.name)

    def save(self) -> Path:
        """Write the sample and its ``dataset.json`` entry.

        Returns:
            The path of the written label volume.
        """
        if self.image.value is None or self.labels.value is None:
            raise ValueError("choose the image and labels layers")
        root = str(self.root.value)
        if not root or root == ".":
            raise ValueError("choose a dataset folder")
        labels = np.asarray(self.labels.value.data)
        size = float(self.particle_size.value)
        entry = save_sample(
            root,
            str(self.name.value),
            np.asarray(self.image.value.data),
            labels,
            spacing=_floats(self.spacing.value, 3, "spacing"),
            particle_size=size if size > 0 else None,
            particle_size_px=None if size > 0 else round(estimate_particle_size_px(labels), 3),
            unit=str(self.unit.value),
            split=str(self.split.value),
        )
        self.status.value = f"saved {entry.name} in {Path(root) / 'dataset.json'}"
        return Path(entry.label) if entry.label is not None else Path(root)


@dataclass
class AnnotationTools:
    """The three tools docked in one viewer."""

    viewer: Any
    scribble: ScribbleTool
    split: SplitTool
    save: SaveTool


def add_annotation_tools(viewer: Any) -> AnnotationTools:
    """Dock the scribble, split and save tools on the right of a viewer, as tabs.

    Args:
        viewer: A ``napari.Viewer``, or a ``napari.components.ViewerModel`` (no window: the tools
            are built but not docked; their ``widget`` can be shown or grabbed on its own).

    Returns:
        The tools (their methods drive the buttons).
    """
    tools = AnnotationTools(viewer, ScribbleTool(viewer), SplitTool(viewer), SaveTool(viewer))
    window = getattr(viewer, "window", None)
    if window is None:  # a bare ViewerModel (scripts, tests without OpenGL): nothing to dock
        return tools
    docks = [
        window.add_dock_widget(tools.scribble.widget, name="Scribble classifier"),
        window.add_dock_widget(tools.split.widget, name="Split particle"),
        window.add_dock_widget(tools.save.widget, name="Save sample"),
    ]
    for dock in docks[1:]:
        window._qt_window.tabifyDockWidget(docks[0], dock)
    docks[0].raise_()
    return tools


def launch(
    image: PathLike | None = None,
    labels: PathLike | None = None,
    scribbles: PathLike | None = None,
    *,
    show: bool = True,
    viewer: Any = None,
) -> AnnotationTools:
    """Open a napari viewer with the annotation tools and, optionally, volumes from disk.

    Args:
        image: Image volume (any format of :func:`particleseg.io.read_volume`); its spacing and
            unit (sidecar or stored in the file) pre-fill the save tool.
        labels: Instance labels to correct (opened as the ``instances`` layer).
        scribbles: Scribbles saved earlier (opened as the ``scribbles`` layer).
        show: Show the window (False for tests and scripts).
        viewer: A viewer (or ``ViewerModel``) to use instead of a new ``napari.Viewer``.

    Returns:
        The tools; call ``napari.run()`` to hand control to the user.
    """
    from particleseg.io import read_metadata, read_volume, read_volume_spacing

    if viewer is None:
        viewer = _napari().Viewer(title="particleseg annotation", show=show)
    if image is not None:
        metadata: dict[str, Any] = {"name": Path(image).name.split(".")[0]}
        try:
            meta = read_metadata(image)
            metadata.update(spacing=list(meta.spacing), unit=meta.unit)
        except ValueError:
            spacing = read_volume_spacing(image)
            if spacing is not None:
                metadata["spacing"] = list(spacing)
        viewer.add_image(np.asarray(read_volume(image)), name="image", metadata=metadata)
    if labels is not None:
        viewer.add_labels(np.asarray(read_volume(labels)), name=INSTANCES_NAME)
    if scribbles is not None:
        viewer.add_labels(np.asarray(read_volume(scribbles)).astype(np.uint8), name=SCRIBBLES_NAME)
    tools = add_annotation_tools(viewer)
    if image is not None:
        tools.scribble.image.value = viewer.layers["image"]
        tools.save.image.value = viewer.layers["image"]
    if scribbles is not None:
        tools.scribble.scribbles.value = viewer.layers[SCRIBBLES_NAME]
    return tools

"""The annotation tools (:mod:`particleseg.annotation.widgets`) as npe2 widget contributions.

Each function builds one tool for the viewer napari passes and returns its panel; the panel
keeps the tool alive (its buttons hold the tool's methods).
"""

from __future__ import annotations

from typing import Any

from particleseg.annotation.widgets import SaveTool, ScribbleTool, SplitTool


def scribble_widget(napari_viewer: Any) -> Any:
    """The scribble classifier: paint a few voxels per class, train, accept as instances."""
    return ScribbleTool(napari_viewer).widget


def split_widget(napari_viewer: Any) -> Any:
    """Split a merged particle along a drawn border or between markers."""
    return SplitTool(napari_viewer).widget


def save_widget(napari_viewer: Any) -> Any:
    """Save the image and corrected labels as a training sample of a dataset."""
    return SaveTool(napari_viewer).widget

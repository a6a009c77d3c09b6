"""Annotation (paper 3.1): scribbles -> Random Forest -> instances -> splits -> dataset sample.

- :func:`train_scribble_classifier`, :func:`update_scribble_classifier`,
  :func:`predict_semantic` (:mod:`.scribbles`, features in :mod:`.features`): a voxel classifier
  trained on a few brush strokes, refined iteratively, applied block-wise;
- :func:`label_instances` (:mod:`.instances`): particles of the semantic mask;
- :func:`split_particle` (:mod:`.split`): split a merged particle along a drawn border;
- :func:`save_sample` (:mod:`.sample`): write the result into a dataset folder;
- ``python -m particleseg.annotation`` (:mod:`.cli`): the same without a GUI;
- :mod:`.widgets`: napari tools (needs the ``napari`` extra; imported only on demand).
- :mod:`.screenshots`: PNG screenshots of a viewer and a tool's panel (used with :mod:`.widgets`).

Nothing here imports torch; napari and magicgui are imported only by :mod:`.widgets`.
"""

from particleseg.annotation.features import FeatureSettings, voxel_features
from particleseg.annotation.instances import label_instances
from particleseg.annotation.sample import estimate_particle_size_px, save_sample
from particleseg.annotation.scribbles import (
    ScribbleClassifier,
    predict_semantic,
    train_scribble_classifier,
    update_scribble_classifier,
)
from particleseg.annotation.split import Plane, geodesic_distance, split_particle

__all__ = [
    "FeatureSettings",
    "Plane",
    "ScribbleClassifier",
    "estimate_particle_size_px",
    "geodesic_distance",
    "label_instances",
    "predict_semantic",
    "save_sample",
    "split_particle",
    "train_scribble_classifier",
    "update_scribble_classifier",
    "voxel_features",
]

"""Scribble Random Forest: a voxel classifier trained on a few brush strokes (paper 3.1).

The user paints a few voxels of each class (``1`` = particle, ``2`` = resin/background, ...) in a
scribble label volume; a scikit-learn Random Forest learns the classes from the multi-scale
features of :mod:`.features` at those voxels and predicts every other voxel, block by block.
Refinement keeps the features of every scribbled voxel (not the image) and retrains on the old
plus the new ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from particleseg.annotation.features import (
    FeatureSettings,
    fit_normalisation,
    iter_blocks,
    voxel_features,
)
from particleseg.io.validation import check_image, check_labels

DEFAULT_BLOCK_SHAPE = (128, 128, 128)
"""Interior block shape used when none is given: about 0.3 GB of features per block."""

MAX_CLASSES = 255


@dataclass(frozen=True)
class ScribbleClassifier:
    """A trained scribble classifier and its training set.

    Attributes:
        classifier: The fitted scikit-learn classifier (``predict`` on (N, F) float32 features).
        settings: Feature scales and intensity normalisation.
        shape: (Z, Y, X) shape of the scribbled image (the voxel indices refer to it).
        indices: (N,) int64 sorted flat indices of the scribbled voxels.
        features: (N, F) float32 features of those voxels.
        targets: (N,) uint8 class of each (1..K).
    """

    classifier: Any
    settings: FeatureSettings
    shape: tuple[int, int, int]
    indices: np.ndarray
    features: np.ndarray
    targets: np.ndarray

    @property
    def classes(self) -> np.ndarray:
        """(K,) uint8 class values the classifier predicts, ascending."""
        return np.unique(self.targets)

    @property
    def n_scribbled(self) -> int:
        """Number of scribbled voxels in the training set."""
        return int(self.indices.size)


def _check_inputs(image: Any, scribbles: Any) -> tuple[np.ndarray, np.ndarray]:
    check_image(image, "image")
    check_labels(scribbles, "scribbles", tuple(image.shape), "image")
    scribbles = np.asarray(scribbles)
    if scribbles.size and scribbles.max() > MAX_CLASSES:
        raise ValueError(
            f"scribbles: class values must be 0 (unlabelled) or 1..{MAX_CLASSES}, "
            f"got {scribbles.max()!r}"
        )
    return image, scribbles  # the image stays lazy (memmap, zarr): read block by block


def _block_shape(block_shape: Sequence[int] | None) -> tuple[int, int, int]:
    if block_shape is None:
        return DEFAULT_BLOCK_SHAPE
    bs = tuple(int(b) for b in block_shape)
    if len(bs) != 3 or min(bs) < 1:
        raise ValueError(f"block_shape must be 3 positive integers (Z, Y, X), got {block_shape!r}")
    return bs  # type: ignore[return-value]


def features_at(
    image: np.ndarray,
    indices: np.ndarray,
    settings: FeatureSettings,
    block_shape: Sequence[int] | None = None,
) -> np.ndarray:
    """Features of some voxels, computed block-wise (only blocks holding one of them).

    Args:
        image: (Z, Y, X) image of any real dtype.
        indices: (N,) flat indices into ``image``.
        settings: Feature settings.
        block_shape: Interior block shape (default :data:`DEFAULT_BLOCK_SHAPE`).

    Returns:
        (N, F) float32 features, in the order of ``indices``; identical to those of a
        whole-volume :func:`voxel_features` (the blocks carry ``settings.halo`` of context).
    """
    indices = np.asarray(indices, dtype=np.int64)
    out = np.empty((indices.size, settings.n_features), dtype=np.float32)
    if indices.size == 0:
        return out
    coords = np.stack(np.unravel_index(indices, image.shape), axis=1)
    for block, crop, interior in iter_blocks(image.shape, _block_shape(block_shape), settings.halo):
        lo = np.array([s.start for s in block])
        hi = np.array([s.stop for s in block])
        inside = np.flatnonzero(np.all((coords >= lo) & (coords < hi), axis=1))
        if inside.size == 0:
            continue
        feats = voxel_features(image[crop], settings, interior)
        local = coords[inside] - lo
        out[inside] = feats[local[:, 0], local[:, 1], local[:, 2]]
    return out


def _new_classifier(n_estimators: int, random_state: int | None, n_jobs: int | None) -> Any:
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(
        n_estimators=n_estimators, random_state=random_state, n_jobs=n_jobs
    )


def _fit(template: Any, features: np.ndarray, targets: np.ndarray) -> Any:
    from sklearn.base import clone

    if np.unique(targets).size < 2:
        raise ValueError(
            f"scribbles: need scribbles of at least 2 classes (e.g. 1 = particle, "
            f"2 = background), got only class(es) {np.unique(targets).tolist()}"
        )
    return clone(template).fit(features, targets)


def train_scribble_classifier(
    image: np.ndarray,
    scribbles: np.ndarray,
    *,
    sigmas: Sequence[float] = (1.0, 2.0, 4.0, 8.0),
    n_estimators: int = 50,
    classifier: Any = None,
    random_state: int | None = 0,
    n_jobs: int | None = None,
    block_shape: Sequence[int] | None = None,
) -> ScribbleClassifier:
    """Train a voxel classifier on scribbles.

    Args:
        image: (Z, Y, X) image of any real dtype (ndarray, memmap or zarr array).
        scribbles: (Z, Y, X) integer array, 0 = unlabelled, 1..K = class of a scribbled voxel.
        sigmas: Feature scales in voxels.
        n_estimators: Trees of the default Random Forest.
        classifier: An unfitted scikit-learn classifier to use instead of the default
            ``RandomForestClassifier`` (it is cloned, not modified).
        random_state: Seed of the default forest.
        n_jobs: Parallel jobs of the default forest (None: 1, -1: all cores).
        block_shape: Interior block shape for the feature computation.

    Returns:
        The trained classifier with its training set.

    Raises:
        ValueError: If the image or scribbles are invalid (not 3D, shape mismatch, negative or
            > 255 values), or fewer than 2 classes are scribbled.
    """
    image, scribbles = _check_inputs(image, scribbles)
    settings = fit_normalisation(image, FeatureSettings(tuple(sigmas)))
    indices = np.flatnonzero(scribbles)
    targets = scribbles.ravel()[indices].astype(np.uint8)
    template = (
        classifier
        if classifier is not None
        else _new_classifier(n_estimators, random_state, n_jobs)
    )
    if np.unique(targets).size < 2:
        _fit(template, np.empty((0, settings.n_features), np.float32), targets)  # raises
    features = features_at(image, indices, settings, block_shape)
    fitted = _fit(template, features, targets)
    shape = tuple(int(s) for s in image.shape)
    return ScribbleClassifier(fitted, settings, shape, indices, features, targets)  # type: ignore[arg-type]


def update_scribble_classifier(
    model: ScribbleClassifier,
    image: np.ndarray,
    new_scribbles: np.ndarray,
    *,
    block_shape: Sequence[int] | None = None,
) -> ScribbleClassifier:
    """Add scribbles to the training set and retrain (iterative refinement).

    Voxels already in the training set with the same class are skipped (so the whole scribble
    layer may be passed again); a voxel scribbled again with another class takes the new class
    (its stored features are reused). Features are computed only for voxels not yet stored.
    Erasing a scribble does not remove it from the training set: train a new classifier for that.

    Args:
        model: A classifier from :func:`train_scribble_classifier` (not modified).
        image: The same (Z, Y, X) image the model was trained on.
        new_scribbles: (Z, Y, X) integer array of the image's shape, 0 = unlabelled, 1..K.
        block_shape: Interior block shape for the feature computation.

    Returns:
        A new classifier, retrained on the old and new scribbled voxels.

    Raises:
        ValueError: If the shapes differ from the model's image, or the inputs are invalid.
    """
    image, new_scribbles = _check_inputs(image, new_scribbles)
    if tuple(image.shape) != model.shape:
        raise ValueError(
            f"image: shape {tuple(image.shape)} differs from the shape {model.shape} the "
            "classifier was trained on; refinement needs the same image"
        )
    idx = np.flatnonzero(new_scribbles)
    cls = new_scribbles.ravel()[idx].astype(np.uint8)
    pos = np.searchsorted(model.indices, idx)
    pos_c = np.minimum(pos, max(model.indices.size - 1, 0))
    present = (pos < model.indices.size) & (model.indices[pos_c] == idx)
    targets = model.targets.copy()
    targets[pos_c[present]] = cls[present]
    fresh = ~present
    new_feats = features_at(image, idx[fresh], model.settings, block_shape)
    indices = np.concatenate([model.indices, idx[fresh]])
    order = np.argsort(indices, kind="stable")
    indices = indices[order]
    features = np.concatenate([model.features, new_feats])[order]
    targets = np.concatenate([targets, cls[fresh]])[order]
    fitted = _fit(model.classifier, features, targets)
    return replace(model, classifier=fitted, indices=indices, features=features, targets=targets)


def predict_semantic(
    model: ScribbleClassifier,
    image: np.ndarray,
    *,
    block_shape: Sequence[int] | None = None,
    progress: bool = False,
) -> np.ndarray:
    """Classify every voxel, block by block with a halo.

    Memory is bounded by the block: about ``prod(block_shape) * F * 4`` bytes of features plus
    a few (block + 2 halo)-sized temporaries, whatever the volume size. Results are identical
    to a single-block run, because each block carries ``model.settings.halo`` voxels of context
    (>= 4 * max(sigmas), the reach of every filter chain).

    Args:
        model: A trained classifier.
        image: (Z, Y, X) image of any real dtype and any shape (ndarray, memmap, zarr array).
        block_shape: Interior block shape (default :data:`DEFAULT_BLOCK_SHAPE`); pass
            ``image.shape`` for a single block.
        progress: Show a progress bar over the blocks.

    Returns:
        (Z, Y, X) uint8 class map with the scribble class values (1..K).
    """
    from tqdm.auto import tqdm

    check_image(image, "image")
    shape = tuple(int(s) for s in image.shape)
    out = np.zeros(shape, dtype=np.uint8)
    blocks = list(iter_blocks(shape, _block_shape(block_shape), model.settings.halo))
    for block, crop, interior in tqdm(blocks, desc="predict", disable=not progress):
        feats = voxel_features(np.asarray(image[crop]), model.settings, interior)
        pred = model.classifier.predict(feats.reshape(-1, feats.shape[-1]))
        out[block] = pred.reshape(feats.shape[:-1]).astype(np.uint8)
    return out

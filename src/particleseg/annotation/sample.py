"""Save an annotated scan as a dataset sample.

``images/NAME.tif`` (with its metadata sidecar), ``labels/NAME.tif`` and an entry in
``dataset.json`` (see :mod:`particleseg.io.dataset`), so that ``python train.py dataset=ROOT`` can
use it at once.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from skimage.segmentation import relabel_sequential

from particleseg.io import (
    DATASET_JSON,
    SPLITS,
    SampleEntry,
    SampleMetadata,
    check_image,
    check_labels,
    load_dataset,
    write_dataset_json,
    write_metadata,
    write_volume,
)
from particleseg.io.atomic import write_json_atomic

PathLike = str | os.PathLike[str]


def estimate_particle_size_px(labels: np.ndarray) -> float:
    """Mean equivalent-sphere diameter of the labelled particles, in voxels.

    Args:
        labels: (Z, Y, X) integer instance labels, 0 = background.

    Returns:
        ``mean(cbrt(6 V / pi))`` over the particles.

    Raises:
        ValueError: If there is no particle.
    """
    sizes = np.bincount(np.asarray(labels).ravel().astype(np.int64))[1:]
    sizes = sizes[sizes > 0]
    if sizes.size == 0:
        raise ValueError("labels: no particle, cannot estimate the particle size")
    return float(np.mean(np.cbrt(6.0 * sizes / np.pi)))


def _read_doc(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: cannot read dataset file (malformed JSON?): {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("samples", []), list):
        raise ValueError(f"{path}: expected a JSON object with a list of samples")
    return doc


def save_sample(
    root: PathLike,
    name: str,
    image: np.ndarray,
    labels: np.ndarray,
    *,
    spacing: Sequence[float],
    particle_size: float | None = None,
    particle_size_px: float | None = None,
    unit: str = "mm",
    split: str = "train",
    group: str | None = None,
    dataset_name: str | None = None,
) -> SampleEntry:
    """Write an annotated sample into a dataset folder, adding or replacing its entry.

    Writes ``ROOT/images/NAME.tif`` (the image, its dtype kept) with its metadata sidecar
    ``images/NAME.meta.json``, and ``ROOT/labels/NAME.tif`` (uint32, ids renumbered 1..N), each
    atomically, then adds the sample to ``ROOT/dataset.json`` (created if missing; an entry with
    the same name is replaced, other entries and keys are kept) and validates the dataset with
    :func:`particleseg.io.load_dataset`. If that validation fails, the previous ``dataset.json``
    is restored.

    Args:
        root: Dataset folder (created if missing).
        name: Sample name (file stem; letters, digits, ``-``, ``_``, ``.``).
        image: (Z, Y, X) image, any real dtype.
        labels: (Z, Y, X) integer instance labels, 0 = background.
        spacing: Voxel spacing (Z, Y, X) in ``unit``.
        particle_size: Mean particle diameter in ``unit``; or give ``particle_size_px``. Use
            :func:`estimate_particle_size_px` for an explicit estimate from the labels.
        particle_size_px: Mean particle diameter in voxels.
        unit: Physical unit of spacing and particle size.
        split: one of ``particleseg.io.SPLITS`` (train, val, id_test, ood_test).
        group: Group for stratified folds (default: the name).
        dataset_name: Name written into a new ``dataset.json`` (default: the folder name).

    Returns:
        The sample as read back from the dataset.

    Raises:
        ValueError: Bad name, split, metadata, image or labels (naming the problem), or a
            ``dataset.json`` that cannot be read or does not validate after the update.
    """
    root = Path(root)
    if not name or any(not (c.isalnum() or c in "-_.") for c in name) or name.startswith("."):
        raise ValueError(f"sample name must be letters, digits, '-', '_' or '.', got {name!r}")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {list(SPLITS)}, got {split!r}")
    meta = SampleMetadata(
        spacing=tuple(spacing),  # type: ignore[arg-type]
        unit=unit,
        particle_size=particle_size,
        particle_size_px=particle_size_px,
    )
    check_image(image, f"image {name!r}")
    check_labels(labels, f"labels {name!r}", tuple(image.shape), f"image {name!r}")
    json_path = root / DATASET_JSON
    doc = _read_doc(json_path)
    ids = relabel_sequential(np.asarray(labels).astype(np.uint32, copy=False))[0]
    image_path = write_volume(root / "images" / f"{name}.tif", image, spacing=meta.spacing)
    write_metadata(image_path, meta)
    write_volume(root / "labels" / f"{name}.tif", ids.astype(np.uint32), spacing=meta.spacing)
    entry = {
        "name": name,
        "image": f"images/{name}.tif",
        "label": f"labels/{name}.tif",
        **meta.to_dict(),
        "split": split,
        "group": group or name,
    }
    old = doc if doc is not None else {"name": dataset_name or root.absolute().name}
    samples = [
        s for s in old.get("samples", []) if not (isinstance(s, dict) and s.get("name") == name)
    ]
    extra = {k: v for k, v in old.items() if k not in ("name", "description", "samples")}
    write_dataset_json(
        root, old.get("name", root.name), [*samples, entry], old.get("description", ""), **extra
    )
    try:
        return load_dataset(root).sample(name)
    except ValueError:
        if doc is None:
            json_path.unlink()
        else:
            write_json_atomic(json_path, doc)
        raise

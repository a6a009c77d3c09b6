"""The ``dataset.json`` format: a folder of annotated samples with metadata, splits and groups.

::

    {
      "name": "synthetic-v1",
      "description": "free text",
      "unit": "mm",
      "ood_differences": "optional free text or list",
      "samples": [
        {"name": "s000", "image": "images/s000.zarr", "label": "labels/s000.zarr",
         "spacing": [0.01, 0.01, 0.01], "particle_size": 0.3, "split": "train", "group": "ore-a"}
      ]
    }

Every sample needs ``name`` (unique), ``image`` and ``label`` (paths relative to the dataset
folder), ``spacing``, ``particle_size`` or ``particle_size_px``, and ``split`` (``train``,
``val``, ``id_test`` or ``ood_test``); ``unit`` (default: the dataset's ``unit``, else ``"mm"``) and
``group`` (default: the sample name; used for stratified folds) and ``phases`` (a uint8 phase map
of the sample, codes in :mod:`particleseg.synth.phases`, for appearance randomization) are
optional. Split ``val`` holds labelled scans that no training uses (checkpoint and threshold
choice). Top-level keys other
than ``name``, ``description`` and ``samples`` are kept in :attr:`Dataset.extra`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from particleseg.io._dataset_parse import (
    DATASET_JSON,
    SPLITS,
    parse_header,
    parse_samples,
    raise_problems,
    read_json,
)
from particleseg.io.atomic import write_json_atomic
from particleseg.io.metadata import SampleMetadata
from particleseg.io.validation import check_image, check_labels, check_shapes_match
from particleseg.io.volumes import VolumeArray, read_volume

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class SampleEntry:
    """One sample of a dataset.

    Attributes:
        name: Unique sample name.
        image: Absolute path of the image volume.
        label: Absolute path of the instance label volume (uint32, 0 = background), or None.
        metadata: Spacing and particle size.
        split: ``"train"``, ``"val"``, ``"id_test"`` or ``"ood_test"``.
        group: Group for stratified folds (defaults to the sample name).
        phases: Absolute path of the sample's uint8 phase map, or None.
    """

    name: str
    image: Path
    label: Path | None
    metadata: SampleMetadata
    split: str
    group: str
    phases: Path | None = None


@dataclass
class Dataset:
    """A loaded ``dataset.json``.

    Attributes:
        root: Dataset folder (the one holding ``dataset.json``).
        name: Dataset name.
        description: Free text.
        samples: Samples in file order.
        extra: Other top-level keys (``unit``, ``ood_differences``, ...).
    """

    root: Path
    name: str
    description: str = ""
    samples: list[SampleEntry] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def split(self, name: str) -> list[SampleEntry]:
        """Samples of one split (one of ``SPLITS``), in file order.

        Raises:
            ValueError: If ``name`` is not a known split.
        """
        if name not in SPLITS:
            raise ValueError(f"{self.root / DATASET_JSON}: unknown split {name!r}; use {SPLITS}")
        return [s for s in self.samples if s.split == name]

    def names(self) -> list[str]:
        """Sample names in file order."""
        return [s.name for s in self.samples]

    def sample(self, name: str) -> SampleEntry:
        """The sample called ``name``.

        Raises:
            KeyError: If there is none.
        """
        for s in self.samples:
            if s.name == name:
                return s
        raise KeyError(f"{self.root / DATASET_JSON}: no sample named {name!r}")

    def __len__(self) -> int:
        return len(self.samples)

    def __iter__(self) -> Iterator[SampleEntry]:
        return iter(self.samples)


def _json_path(folder_or_json: PathLike) -> Path:
    p = Path(folder_or_json)
    return p / DATASET_JSON if p.is_dir() else p


def _parse_dataset(doc: Any, path: Path) -> tuple[Dataset, list[str]]:
    """Validate a parsed dataset.json; return the dataset (valid samples only) and all problems."""
    header, raw_samples, unit, problems = parse_header(doc, path)
    ds = Dataset(path.parent.absolute(), header["name"], header["description"], [], header["extra"])
    fields, sample_problems = parse_samples(raw_samples, ds.root, unit, path)
    ds.samples = [SampleEntry(**f) for f in fields]
    return ds, problems + sample_problems


def load_dataset(folder_or_json: PathLike) -> Dataset:
    """Load and validate a ``dataset.json`` (structure, entries, metadata, files exist).

    Array contents are not read; see :func:`validate_dataset` for that.

    Args:
        folder_or_json: Dataset folder or the path of its ``dataset.json``.

    Returns:
        The dataset, sample paths made absolute.

    Raises:
        ValueError: One error listing every problem found, one line each, each line naming the
            dataset file and the sample.
    """
    path = _json_path(folder_or_json)
    ds, problems = _parse_dataset(read_json(path), path)
    raise_problems(path, problems)
    return ds


def _read_and_check(path: Path, check: Any, problems: list[str]) -> VolumeArray | None:
    """Open ``path`` lazily and run ``check(array, path)``; record what goes wrong.

    Returns:
        The opened array (even if the check failed), or None if it could not be opened.
    """
    try:
        array = read_volume(path)
    except ValueError as exc:
        problems.append(str(exc))
        return None
    try:
        check(array, path)
    except ValueError as exc:
        problems.append(str(exc))
    except Exception as exc:  # e.g. a corrupt zarr chunk found while streaming the data
        problems.append(f"{path}: cannot read the data: {type(exc).__name__}: {exc}")
    return array


def _array_problems(entry: SampleEntry) -> list[str]:
    """Read one sample's image and labels lazily and run the value checks on them."""
    problems: list[str] = []
    image = _read_and_check(entry.image, check_image, problems)
    if entry.label is not None:
        image_shape = tuple(image.shape) if image is not None else None

        def check(labels: Any, path: Path) -> None:
            check_labels(labels, path, image_shape, entry.image)

        _read_and_check(entry.label, check, problems)
    return problems


def validate_dataset(folder: PathLike, check_arrays: bool = False) -> Dataset:
    """Validate a dataset: :func:`load_dataset`, plus (optionally) the arrays themselves.

    Args:
        folder: Dataset folder or its ``dataset.json``.
        check_arrays: Also open every image and label lazily and check them (3D, finite,
            non-constant image; non-negative integer labels of the image's shape). Streams over
            slabs, so it reads every volume once but never holds one whole in memory.

    Returns:
        The dataset.

    Raises:
        ValueError: One error listing every problem found in every sample.
    """
    path = _json_path(folder)
    ds = load_dataset(path)
    if check_arrays:
        problems = [
            f"{path}: sample {e.name!r}: {p}" for e in ds.samples for p in _array_problems(e)
        ]
        raise_problems(path, problems)
    return ds


def _relative(value: Any, root: Path) -> Any:
    if isinstance(value, str | os.PathLike):
        p = Path(value)
        if p.is_absolute():
            try:
                return p.relative_to(root.absolute()).as_posix()
            except ValueError:
                return str(p)
        return p.as_posix()
    return value


def write_dataset_json(
    folder: PathLike,
    name: str,
    samples: list[dict[str, Any]],
    description: str = "",
    **extra: Any,
) -> Path:
    """Write ``<folder>/dataset.json`` atomically (temporary file + rename).

    Paths (``image``, ``label``) given as absolute paths inside ``folder`` are made relative;
    ``Path`` objects, tuples and numpy scalars are converted to JSON. Content is not validated
    here: call :func:`load_dataset` afterwards.

    Args:
        folder: Dataset folder (created if missing).
        name: Dataset name.
        samples: Sample dicts in the format of the module docstring.
        description: Free text.
        **extra: Other top-level keys (``unit``, ``ood_differences``...).

    Returns:
        The path of ``dataset.json``.

    Raises:
        ValueError: If a sample is not a dict.
    """
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    entries = []
    for i, s in enumerate(samples):
        if not isinstance(s, dict):
            raise ValueError(f"{root / DATASET_JSON}: samples[{i}] must be a dict, got {s!r}")
        entry = dict(s)
        for key in ("image", "label"):
            if key in entry:
                entry[key] = _relative(entry[key], root)
        if "spacing" in entry and entry["spacing"] is not None:
            entry["spacing"] = list(entry["spacing"])
        entries.append(entry)
    doc = {"name": name, "description": description, **extra, "samples": entries}
    return write_json_atomic(root / DATASET_JSON, doc)


def read_sample(entry: SampleEntry) -> tuple[VolumeArray, VolumeArray | None]:
    """Open a sample's image and labels lazily (see :func:`read_volume`).

    Only the shapes are compared here (no data read); run :func:`validate_dataset` with
    ``check_arrays=True`` for the value checks.

    Args:
        entry: The sample.

    Returns:
        ``(image, labels)``, both (Z, Y, X) array-likes; ``labels`` is None if the entry has none.

    Raises:
        ValueError: If a volume cannot be read or the label and image shapes differ.
    """
    image = read_volume(entry.image)
    labels = None
    if entry.label is not None:
        labels = read_volume(entry.label)
        check_shapes_match(labels, entry.label, tuple(image.shape), entry.image)
    return image, labels

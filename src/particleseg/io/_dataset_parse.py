"""Structural validation of ``dataset.json`` (see :mod:`particleseg.io.dataset`).

Every check appends to a list of problems instead of raising, so that one error can list them all.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from particleseg.io.metadata import parse_metadata

DATASET_JSON = "dataset.json"
# ``val``: labelled scans that no training uses, for choosing checkpoints and thresholds.
SPLITS = ("train", "val", "id_test", "ood_test")
_RESERVED = ("name", "description", "samples")


def read_json(path: Path) -> Any:
    """Parse a dataset JSON file; ValueError naming it if missing or malformed."""
    if not path.is_file():
        raise ValueError(f"{path}: dataset file not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: cannot read dataset file (malformed JSON?): {exc}") from exc


def raise_problems(path: Path, problems: list[str]) -> None:
    """Raise one ValueError listing every problem (one per line), if there is any."""
    if problems:
        n = len(problems)
        header = f"{path}: {n} problem{'s' if n > 1 else ''} found:"
        raise ValueError("\n".join([header, *(f"  - {p}" for p in problems)]))


def parse_header(doc: Any, path: Path) -> tuple[dict[str, Any], list[Any], str, list[str]]:
    """Check the top level of a dataset document.

    Returns:
        ``({"name", "description", "extra"}, raw sample list, dataset unit, problems)``; each
        problem is a full line starting with ``path``.
    """
    if not isinstance(doc, dict):
        header = {"name": "", "description": "", "extra": {}}
        return header, [], "mm", [f"{path}: expected a JSON object, got {type(doc).__name__}"]
    problems: list[str] = []
    name = doc.get("name")
    if not isinstance(name, str) or not name:
        problems.append(f'{path}: "name" must be a non-empty string, got {name!r}')
    description = doc.get("description", "")
    if not isinstance(description, str):
        problems.append(f'{path}: "description" must be a string, got {description!r}')
    unit = doc.get("unit", "mm")
    if not isinstance(unit, str) or not unit:
        problems.append(f'{path}: "unit" must be a non-empty string, got {unit!r}')
        unit = "mm"
    samples = doc.get("samples")
    if not isinstance(samples, list) or not samples:
        problems.append(f'{path}: "samples" must be a non-empty list, got {samples!r}')
        samples = []
    extra = {k: v for k, v in doc.items() if k not in _RESERVED}
    header = {"name": str(name), "description": str(description), "extra": extra}
    return header, samples, unit, problems


def _path_field(
    d: dict[str, Any], key: str, root: Path, problems: list[str], required: bool = True
) -> Path | None:
    value = d.get(key)
    if value is None and not required:
        return None
    if value is None:
        problems.append(f'missing "{key}" (path of the {key} volume, relative to the dataset)')
        return None
    if not isinstance(value, str) or not value:
        problems.append(f'"{key}" must be a path string, got {value!r}')
        return None
    path = (root / value).absolute()
    if not path.exists():
        problems.append(f"{key} {value!r} not found ({path})")
    return path


def _parse_sample(d: Any, root: Path, default_unit: str) -> tuple[dict[str, Any], list[str]]:
    """Validate one sample entry; return its fields (meaningful only without problems)."""
    if not isinstance(d, dict):
        return {}, [f"expected a JSON object, got {type(d).__name__}"]
    problems: list[str] = []
    name = d.get("name")
    if not isinstance(name, str) or not name:
        problems.append(f'"name" must be a non-empty string, got {name!r}')
    split = d.get("split")
    if split not in SPLITS:
        problems.append(f'"split" must be one of {list(SPLITS)}, got {split!r}')
    group = d.get("group", name)
    if not isinstance(group, str) or not group:
        problems.append(f'"group" must be a non-empty string, got {group!r}')
    image = _path_field(d, "image", root, problems)
    label = _path_field(d, "label", root, problems)
    phases = _path_field(d, "phases", root, problems, required=False)
    metadata, meta_problems = parse_metadata(d, default_unit)
    fields = {"name": name, "image": image, "label": label, "metadata": metadata, "phases": phases}
    fields.update(split=split, group=group)
    return fields, problems + meta_problems


def parse_samples(
    samples: list[Any], root: Path, unit: str, path: Path
) -> tuple[list[dict[str, Any]], list[str]]:
    """Check every sample entry (fields, files, metadata, unique names).

    Args:
        samples: Raw sample list from the JSON.
        root: Dataset folder that relative paths are resolved against.
        unit: Dataset-level unit, the default of each sample's ``unit``.
        path: The dataset file, named in every problem.

    Returns:
        Field dicts of the valid samples (keyword arguments of ``SampleEntry``) and the problems,
        each a full line ``"<path>: sample '<name>': <problem>"``.
    """
    valid: list[dict[str, Any]] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    for i, d in enumerate(samples):
        name = d.get("name") if isinstance(d, dict) else None
        where = f"{path}: sample {name!r}" if isinstance(name, str) else f"{path}: sample #{i}"
        fields, sample_problems = _parse_sample(d, root, unit)
        if isinstance(name, str) and name:
            if name in seen:
                sample_problems.append(f"duplicate sample name (also sample #{seen[name]})")
            seen.setdefault(name, i)
        problems += [f"{where}: {p}" for p in sample_problems]
        if not sample_problems:
            valid.append(fields)
    return valid, problems

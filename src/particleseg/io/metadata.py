"""Sample metadata (voxel spacing and particle size) and its JSON sidecar beside the volume.

A sidecar ``scan.meta.json`` beside ``scan.tif`` (or ``scan.zarr``, ``scan.npy``, a folder of
slices ``scan/``) looks like::

    {"spacing": [0.01, 0.01, 0.01], "unit": "mm", "particle_size": 0.3}

Missing metadata is an error naming the file, never a silent default.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from numbers import Real
from pathlib import Path
from typing import Any

from particleseg.io.atomic import write_json_atomic
from particleseg.spacing import check_spacing

PathLike = str | os.PathLike[str]

SIDECAR_SUFFIX = ".meta.json"
_VOLUME_SUFFIXES = (".ome.tiff", ".ome.tif", ".tiff", ".tif", ".npy", ".zarr")
_KEYS = ("spacing", "unit", "particle_size", "particle_size_px")

HOW_TO_GIVE_METADATA = (
    'give it in a sidecar JSON "<image name>.meta.json" beside the image with keys "spacing" '
    '(Z, Y, X), "unit" and "particle_size" (mean particle diameter in the spacing unit) or '
    '"particle_size_px" (diameter in voxels), e.g. {"spacing": [0.01, 0.01, 0.01], "unit": "mm", '
    '"particle_size": 0.3}; in a dataset.json sample entry with the same keys; or as predict '
    "overrides particle_size=... spacing=[...] or particle_size_px=..."
)


def _is_number(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def _positive_finite(value: Any) -> bool:
    return _is_number(value) and math.isfinite(value) and value > 0


def _spacing_problems(spacing: Any) -> list[str]:
    if spacing is None:
        return ['missing "spacing": give the voxel spacing (Z, Y, X) in physical units']
    try:
        check_spacing(spacing, isotropic_scalar=False)
    except ValueError as err:
        return [str(err)]
    return []


def _size_problems(particle_size: Any, particle_size_px: Any) -> list[str]:
    if particle_size is None and particle_size_px is None:
        return [
            f'missing particle size: neither "particle_size" nor "particle_size_px" is set; '
            f"{HOW_TO_GIVE_METADATA}"
        ]
    problems = []
    for key, value in (("particle_size", particle_size), ("particle_size_px", particle_size_px)):
        if value is not None and not _positive_finite(value):
            problems.append(f'"{key}" must be a positive finite number, got {value!r}')
    return problems


def _unit_problems(unit: Any) -> list[str]:
    if not isinstance(unit, str) or not unit.strip():
        return [f'"unit" must be a non-empty string such as "mm" or "um", got {unit!r}']
    return []


@dataclass(frozen=True)
class SampleMetadata:
    """Physical description of one sample.

    Attributes:
        spacing: Voxel spacing (Z, Y, X) in ``unit``.
        unit: Physical unit of ``spacing`` and ``particle_size`` (e.g. ``"mm"``).
        particle_size: Rough mean particle diameter in ``unit``, or None.
        particle_size_px: Rough mean particle diameter in voxels, or None. At least one of the
            two sizes is required; ``particle_size_px`` wins when both are set.
    """

    spacing: tuple[float, float, float]
    unit: str = "mm"
    particle_size: float | None = None
    particle_size_px: float | None = None

    def __post_init__(self) -> None:
        problems = (
            _spacing_problems(self.spacing)
            + _unit_problems(self.unit)
            + _size_problems(self.particle_size, self.particle_size_px)
        )
        if problems:
            raise ValueError("SampleMetadata: " + "; ".join(problems))
        object.__setattr__(self, "spacing", tuple(float(s) for s in self.spacing))
        for key in ("particle_size", "particle_size_px"):
            value = getattr(self, key)
            if value is not None:
                object.__setattr__(self, key, float(value))

    @classmethod
    def from_dict(cls, d: Any, source: PathLike, default_unit: str = "mm") -> SampleMetadata:
        """Build metadata from a JSON-like dict, validating every field.

        Keys other than ``spacing``, ``unit``, ``particle_size`` and ``particle_size_px`` are
        ignored.

        Args:
            d: Dict with ``spacing`` (3 positive numbers, Z, Y, X), optional ``unit`` and
                ``particle_size`` and/or ``particle_size_px``.
            source: File (or name) the dict came from, named in error messages.
            default_unit: Unit used when ``d`` has none.

        Returns:
            The validated metadata.

        Raises:
            ValueError: Listing every problem, one per line, each prefixed with ``source``.
        """
        meta, problems = parse_metadata(d, default_unit)
        if problems:
            raise ValueError("\n".join(f"{source}: {p}" for p in problems))
        assert meta is not None
        return meta

    def particle_size_voxels(self) -> tuple[float, float, float]:
        """Mean particle diameter in voxels along (Z, Y, X).

        Returns:
            ``(particle_size_px,) * 3`` if set, else ``particle_size / spacing`` per axis.
        """
        if self.particle_size_px is not None:
            return (self.particle_size_px,) * 3
        assert self.particle_size is not None
        z, y, x = (self.particle_size / s for s in self.spacing)
        return (z, y, x)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the sizes that are None are left out)."""
        d: dict[str, Any] = {"spacing": list(self.spacing), "unit": self.unit}
        if self.particle_size is not None:
            d["particle_size"] = self.particle_size
        if self.particle_size_px is not None:
            d["particle_size_px"] = self.particle_size_px
        return d


def parse_metadata(d: Any, default_unit: str = "mm") -> tuple[SampleMetadata | None, list[str]]:
    """Validate a metadata dict and collect every problem instead of stopping at the first.

    Args:
        d: Dict with the keys of :class:`SampleMetadata`.
        default_unit: Unit used when ``d`` has none.

    Returns:
        ``(metadata, [])`` when valid, else ``(None, problems)`` with one message per problem
        (without the file name).
    """
    if not isinstance(d, dict):
        return None, [f"expected a JSON object with keys {list(_KEYS)}, got {type(d).__name__}"]
    unit = d.get("unit", default_unit)
    problems = (
        _spacing_problems(d.get("spacing"))
        + _unit_problems(unit)
        + _size_problems(d.get("particle_size"), d.get("particle_size_px"))
    )
    if problems:
        return None, problems
    meta = SampleMetadata(
        spacing=tuple(d["spacing"]),
        unit=unit,
        particle_size=d.get("particle_size"),
        particle_size_px=d.get("particle_size_px"),
    )
    return meta, []


def sidecar_path(image_path: PathLike) -> Path:
    """Path of the metadata sidecar of a volume: the volume suffix replaced by ``.meta.json``.

    ``scan.tif`` -> ``scan.meta.json``, ``scan.ome.tiff`` -> ``scan.meta.json``, ``scan.zarr`` ->
    ``scan.meta.json``, folder ``slices/`` -> ``slices.meta.json`` beside the folder.

    Args:
        image_path: Volume file or folder.

    Returns:
        The sidecar path (which may not exist).
    """
    p = Path(image_path)
    name = p.name
    for suffix in _VOLUME_SUFFIXES:
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            name = name[: -len(suffix)]
            break
    return p.with_name(name + SIDECAR_SUFFIX)


def read_metadata(image_path: PathLike) -> SampleMetadata:
    """Read and validate the sidecar metadata of a volume.

    Args:
        image_path: Volume file or folder; its sidecar is :func:`sidecar_path` of it.

    Returns:
        The metadata.

    Raises:
        ValueError: Naming the sidecar, if it is missing, not valid JSON, or its content is invalid.
    """
    path = sidecar_path(image_path)
    return SampleMetadata.from_dict(_read_sidecar(path, image_path), path)


def read_sidecar_spacing(image_path: PathLike) -> tuple[tuple[float, float, float], str]:
    """The spacing and unit of a volume's sidecar, for a run that gives the particle size.

    A sidecar written by a scanner's export may hold the spacing only; when the particle size
    comes from the command (``particle_size_px=...``), its missing size is not a problem.

    Returns:
        ``((z, y, x), unit)``.

    Raises:
        ValueError: Naming the sidecar, if it is missing, not valid JSON, or its spacing or unit
            is invalid.
    """
    path = sidecar_path(image_path)
    d = _read_sidecar(path, image_path)
    if not isinstance(d, dict):
        return SampleMetadata.from_dict(d, path).spacing, ""  # raises, naming the file
    unit = d.get("unit", "mm")
    problems = _spacing_problems(d.get("spacing")) + _unit_problems(unit)
    if problems:
        raise ValueError("\n".join(f"{path}: {p}" for p in problems))
    return check_spacing(d["spacing"], isotropic_scalar=False), str(unit)


def _read_sidecar(path: Path, image_path: PathLike) -> Any:
    if not path.is_file():
        raise ValueError(
            f"{path}: metadata sidecar for {image_path} not found; spacing and particle size are "
            f"required: {HOW_TO_GIVE_METADATA}"
        )
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: cannot read metadata sidecar (malformed JSON?): {exc}") from exc


def write_metadata(image_path: PathLike, meta: SampleMetadata) -> Path:
    """Write the sidecar of a volume atomically (temporary file + rename).

    Args:
        image_path: Volume file or folder.
        meta: Metadata to write.

    Returns:
        The sidecar path.
    """
    return write_json_atomic(sidecar_path(image_path), meta.to_dict())

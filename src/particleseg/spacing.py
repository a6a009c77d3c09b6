"""The one voxel-spacing validator every stage uses (pure Python; no numpy needed).

A spacing is the voxel size along (Z, Y, X) in any physical unit. Functions that accept one take
either three positive finite numbers or, where an isotropic scan is meant, a single number.
"""

from __future__ import annotations

import math
from numbers import Real
from typing import Any

VOXELS = (1.0, 1.0, 1.0)  # the spacing of distances measured in voxels


def check_spacing(
    spacing: Any,
    *,
    where: str | None = None,
    isotropic_scalar: bool = True,
    default: tuple[float, float, float] | None = None,
) -> tuple[float, float, float]:
    """Return ``spacing`` as three positive finite floats (Z, Y, X).

    Args:
        spacing: 3 numbers (a sequence or a 1D array of shape ``(3,)``), or one number for all
            three axes when ``isotropic_scalar`` is true. ``None`` gives ``default``.
        where: the file or setting the value came from; it prefixes the error message.
        isotropic_scalar: accept a single number as the same spacing on every axis.
        default: what ``None`` stands for, e.g. :data:`VOXELS` for distances in voxels;
            without it ``None`` is refused.

    Returns:
        ``(z, y, x)`` as floats.

    Raises:
        ValueError: naming ``where`` and the value, if it is not 3 (or 1) positive finite
            numbers; booleans and strings are refused.
    """
    if spacing is None and default is not None:
        return check_spacing(default, where=where)
    values = _numbers(spacing, isotropic_scalar)
    if values is None or len(values) != 3 or not all(math.isfinite(v) and v > 0 for v in values):
        one = " (or one number for all axes)" if isotropic_scalar else ""
        prefix = f"{where}: " if where else ""
        raise ValueError(
            f"{prefix}spacing must be 3 positive numbers (Z, Y, X){one}, got {spacing!r}"
        )
    return (values[0], values[1], values[2])


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, Real):
        return None
    return float(value)


def _numbers(spacing: Any, isotropic_scalar: bool) -> list[float] | None:
    one = _number(_scalar(spacing))
    if one is not None:
        return [one] * 3 if isotropic_scalar else None
    if isinstance(spacing, str | bytes) or not hasattr(spacing, "__iter__"):
        return None
    try:
        values = [_number(_scalar(v)) for v in spacing]
    except TypeError:
        return None
    return None if any(v is None for v in values) else values  # type: ignore[return-value]


def _scalar(value: Any) -> Any:
    """A 0-d array as its Python scalar; anything else unchanged."""
    return value.item() if getattr(value, "ndim", None) == 0 else value

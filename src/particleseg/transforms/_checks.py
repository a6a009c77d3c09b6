"""Argument checks shared by the augmentation transforms."""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from typing import Any


def _check_patch_size(patch_size: Sequence[int]) -> tuple[int, int, int]:
    """Return ``patch_size`` as three positive ints or raise ValueError."""
    try:
        size = tuple(int(s) for s in patch_size)
    except TypeError as err:
        raise ValueError(
            f"patch_size must be 3 positive ints (Z, Y, X), got {patch_size!r}"
        ) from err
    if (
        len(size) != 3
        or any(s < 1 for s in size)
        or any(s != p for s, p in zip(size, patch_size, strict=True))
    ):
        raise ValueError(f"patch_size must be 3 positive ints (Z, Y, X), got {patch_size!r}")
    return size  # type: ignore[return-value]


def _check_prob(name: str, p: float) -> float:
    """Return ``p`` as float or raise ValueError if it is outside [0, 1]."""
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1], got {p}")
    return p


def _check_range(
    name: str,
    value: Sequence[float],
    *,
    low: float | None = None,
    low_open: bool = False,
    high: float | None = None,
) -> tuple[float, float]:
    """Return a ``(lo, hi)`` range as floats, checking ``lo <= hi`` and the allowed bounds.

    Args:
        name: Argument name for error messages.
        value: The range.
        low: Smallest allowed ``lo`` (inclusive unless ``low_open``); None for no bound.
        low_open: Require ``lo > low`` instead of ``lo >= low``.
        high: Largest allowed ``hi`` (inclusive); None for no bound.

    Returns:
        ``(lo, hi)`` as floats.

    Raises:
        ValueError: If ``value`` is not two finite numbers with ``lo <= hi`` inside the bounds.
    """
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a (low, high) pair of numbers, got {value!r}") from err
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if lo > hi:
        raise ValueError(f"{name} must be (low, high) with low <= high, got {value!r}")
    if low is not None and (lo <= low if low_open else lo < low):
        bound = f"> {low}" if low_open else f">= {low}"
        raise ValueError(f"{name} must have low {bound}, got {value!r}")
    if high is not None and hi > high:
        raise ValueError(f"{name} must have high <= {high}, got {value!r}")
    return lo, hi


def _check_pair(
    data: Mapping[Hashable, Any],
    image_key: Hashable,
    label_key: Hashable,
    patch_size: tuple[int, int, int],
) -> None:
    """Check that ``data`` holds a channel-first image and label at least ``patch_size`` big.

    Raises:
        ValueError: If a key is missing, a shape is not channel-first 3D, the label has more
            than one channel, the spatial shapes differ, or they are smaller than the patch.
    """
    for key in (image_key, label_key):
        if key not in data:
            raise ValueError(f"data has no key {key!r} (keys: {list(data)})")
    image_shape = tuple(data[image_key].shape)
    label_shape = tuple(data[label_key].shape)
    if len(image_shape) != 4:
        raise ValueError(f"image must be channel-first (C, Z, Y, X), got shape {image_shape}")
    if len(label_shape) != 4 or label_shape[0] != 1:
        raise ValueError(f"label must be (1, Z, Y, X), got shape {label_shape}")
    if image_shape[1:] != label_shape[1:]:
        raise ValueError(
            f"image and label spatial shapes differ: {image_shape[1:]} vs {label_shape[1:]}"
        )
    if any(s < p for s, p in zip(image_shape[1:], patch_size, strict=True)):
        raise ValueError(
            f"input spatial shape {image_shape[1:]} is smaller than patch_size {patch_size}; "
            f"crop at least patch_size (better initial_patch_size(...)) before augmenting"
        )


# --------------------------------------------------------------------------------------------
# Geometry
# --------------------------------------------------------------------------------------------

"""Boundary checks for volumes: shape, finite non-constant images, valid instance labels.

Every check takes the array and the path (or name) to put in the message and raises a
``ValueError`` of the form ``"<path>: <what is wrong>"``. Value checks stream over slabs of Z
slices, so lazy arrays (``np.memmap``, ``zarr.Array``) are never loaded whole.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from particleseg.io._slabs import iter_slabs

PathLike = str | os.PathLike[str]


def _shape_str(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(int(s)) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def check_volume_shape(array: Any, path: PathLike) -> None:
    """Check that ``array`` is a non-empty 3D volume.

    Args:
        array: Array-like with a ``shape`` attribute, expected (Z, Y, X).
        path: File (or name) used in the error message.

    Raises:
        ValueError: If ``array`` has no shape, is not 3D, or has a zero-length axis.
    """
    shape = getattr(array, "shape", None)
    if shape is None:
        raise ValueError(f"{path}: expected a 3D array, got {type(array).__name__} without a shape")
    shape = tuple(int(s) for s in shape)
    if len(shape) != 3:
        raise ValueError(f"{path}: expected a 3D volume (Z, Y, X), got shape {_shape_str(shape)}")
    if min(shape) == 0:
        raise ValueError(
            f"{path}: volume is empty, shape {_shape_str(shape)} has a zero-length axis"
        )


def check_shapes_match(
    labels: Any,
    path: PathLike,
    image_shape: tuple[int, ...],
    image_path: PathLike | None = None,
) -> None:
    """Check that a label volume has the shape of its image (a cheap check, reads no data).

    Args:
        labels: Label array-like (only ``shape`` is used).
        path: Label file (or name) used in the error message.
        image_shape: Shape (Z, Y, X) of the image.
        image_path: Image file named in the error message.

    Raises:
        ValueError: Naming both files and both shapes, if the shapes differ.
    """
    shape = tuple(int(s) for s in labels.shape)
    if shape != tuple(int(s) for s in image_shape):
        image_name = image_path if image_path is not None else "the image"
        raise ValueError(
            f"{path}: label/image shape mismatch: labels {path} have shape {_shape_str(shape)} "
            f"but image {image_name} has shape {_shape_str(tuple(image_shape))}"
        )


def check_image(array: Any, path: PathLike, max_bytes: int | None = None) -> None:
    """Check an image volume: 3D, real numeric dtype, finite values, not all-constant.

    Args:
        array: Image array-like of shape (Z, Y, X), any integer, bool or float dtype.
        path: File (or name) used in the error message.
        max_bytes: Memory budget of one streamed slab (default 64 MiB).

    Raises:
        ValueError: If the shape is wrong, the dtype is not real numeric, a float image contains
            NaN or inf, or every voxel has the same value (nothing to segment).
    """
    check_volume_shape(array, path)
    dtype = np.dtype(array.dtype)
    if dtype.kind not in "biuf":
        raise ValueError(f"{path}: expected a real numeric image, got dtype {dtype}")
    is_float = dtype.kind == "f"
    lo = hi = None
    for z0, slab in iter_slabs(array, max_bytes):
        if is_float:
            finite = np.isfinite(slab)
            if not finite.all():
                bad = ~finite
                z_bad = z0 + int(np.argmax(bad.any(axis=(1, 2))))
                n_nan = int(np.isnan(slab).sum())
                raise ValueError(
                    f"{path}: image contains non-finite values ({n_nan} NaN and "
                    f"{int(bad.sum()) - n_nan} inf in slices {z0}..{z0 + len(slab) - 1}, "
                    f"first at z={z_bad})"
                )
        s_lo, s_hi = slab.min(), slab.max()
        lo = s_lo if lo is None else min(lo, s_lo)
        hi = s_hi if hi is None else max(hi, s_hi)
    if lo == hi:
        raise ValueError(
            f"{path}: image is constant (every voxel is {lo.item()!r}); there is nothing to segment"
        )


def _check_label_values(slab: np.ndarray, z0: int, path: PathLike) -> None:
    where = f"slices {z0}..{z0 + len(slab) - 1}"
    if slab.dtype.kind == "f":
        if not np.isfinite(slab).all():
            raise ValueError(f"{path}: labels contain NaN or inf ({where})")
        if not (slab == np.round(slab)).all():
            raise ValueError(
                f"{path}: labels must be integer instance ids, got non-integer float values "
                f"({where}, dtype {slab.dtype})"
            )
    if slab.dtype.kind in "if" and slab.min() < 0:
        raise ValueError(
            f"{path}: labels must be non-negative (0 = background), got minimum "
            f"{slab.min().item()!r} ({where})"
        )


def check_labels(
    array: Any,
    path: PathLike,
    image_shape: tuple[int, ...] | None = None,
    image_path: PathLike | None = None,
    max_bytes: int | None = None,
) -> None:
    """Check an instance label volume: 3D, integer ids >= 0, shape equal to the image's.

    Integer dtypes (signed or unsigned) are accepted when no value is negative; float dtypes are
    accepted when every value is a finite, non-negative integer (e.g. 3.0); other dtypes (bool,
    complex, ...) are rejected.

    Args:
        array: Label array-like of shape (Z, Y, X).
        path: Label file (or name) used in the error message.
        image_shape: Shape (Z, Y, X) of the matching image; checked when given.
        image_path: Image file named in the shape-mismatch message.
        max_bytes: Memory budget of one streamed slab (default 64 MiB).

    Raises:
        ValueError: If the shape is wrong or differs from ``image_shape``, the dtype is not integer
            or float, or a value is negative or not an integer.
    """
    check_volume_shape(array, path)
    if image_shape is not None:
        check_shapes_match(array, path, image_shape, image_path)
    dtype = np.dtype(array.dtype)
    if dtype.kind not in "iuf":
        raise ValueError(
            f"{path}: labels must have an integer dtype (instance ids, uint32 preferred), "
            f"got dtype {dtype}"
        )
    if dtype.kind == "u":
        return
    for z0, slab in iter_slabs(array, max_bytes):
        _check_label_values(slab, z0, path)

"""Tests for particleseg.io.validation: shape, image and label checks, streamed over slabs."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import particleseg.io._slabs as slabs
from particleseg.io import (
    check_image,
    check_labels,
    check_shapes_match,
    check_volume_shape,
    read_volume,
    write_volume,
)

NAME = "/data/scan_01.tif"


def msg(path: str | Path, text: str) -> str:
    return re.escape(str(path)) + ".*" + text


def image(dtype: str = "float32") -> np.ndarray:
    return np.arange(4 * 5 * 6).reshape(4, 5, 6).astype(dtype)


class CountingArray:
    """Array-like that records the depth of every read."""

    def __init__(self, data: np.ndarray) -> None:
        self.data, self.shape, self.dtype = data, data.shape, data.dtype
        self.reads: list[int] = []

    def __getitem__(self, key: slice) -> np.ndarray:
        out = self.data[key]
        self.reads.append(len(out))
        return out


# ------------------------------------------------------------------------------------ shape


def test_check_volume_shape_accepts_3d() -> None:
    check_volume_shape(np.zeros((1, 1, 1)), NAME)


@pytest.mark.parametrize("shape", [(64, 64), (2, 3, 4, 5), (7,)])
def test_check_volume_shape_wrong_ndim(shape: tuple[int, ...]) -> None:
    text = rf"expected a 3D volume \(Z, Y, X\), got shape {re.escape(str(shape))}"
    with pytest.raises(ValueError, match=msg(NAME, text)):
        check_volume_shape(np.zeros(shape), NAME)


@pytest.mark.parametrize("shape", [(0, 3, 3), (3, 0, 3), (3, 3, 0)])
def test_check_volume_shape_empty(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match=msg(NAME, "zero-length axis")):
        check_volume_shape(np.zeros(shape), NAME)


def test_check_volume_shape_not_an_array() -> None:
    with pytest.raises(ValueError, match=msg(NAME, "without a shape")):
        check_volume_shape([[1, 2], [3, 4]], NAME)


# ------------------------------------------------------------------------------------ image


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "int16", "float32", "float64", "bool"])
def test_check_image_accepts(dtype: str) -> None:
    check_image(image(dtype), NAME)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_check_image_non_finite(bad: float) -> None:
    data = image()
    data[3, 2, 1] = bad
    with pytest.raises(ValueError, match=msg(NAME, "non-finite values.*first at z=3")):
        check_image(data, NAME)


@pytest.mark.parametrize("dtype", ["uint8", "float32"])
def test_check_image_constant(dtype: str) -> None:
    with pytest.raises(ValueError, match=msg(NAME, "image is constant.*nothing to segment")):
        check_image(np.full((4, 5, 6), 7, dtype=dtype), NAME)


def test_check_image_constant_across_slabs_but_not_overall(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(slabs, "SLAB_BYTES", 1)
    data = np.zeros((4, 5, 6), np.uint8)
    data[3] = 1  # every slab is constant, the volume is not
    check_image(data, NAME)


def test_check_image_wrong_dtype() -> None:
    with pytest.raises(ValueError, match=msg(NAME, "real numeric image, got dtype complex64")):
        check_image(image("complex64"), NAME)


def test_check_image_wrong_shape() -> None:
    with pytest.raises(ValueError, match=msg(NAME, "expected a 3D volume")):
        check_image(np.arange(12.0).reshape(3, 4), NAME)


def test_check_image_streams_slabs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(slabs, "SLAB_BYTES", 5 * 6 * 4 * 2)  # two float32 slices
    data = CountingArray(image())
    check_image(data, NAME)
    assert data.reads == [2, 2]


def test_check_image_on_lazy_zarr_finds_nan_in_last_slab(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(slabs, "SLAB_BYTES", 1)
    data = image()
    data[-1, -1, -1] = np.nan
    path = write_volume(tmp_path / "img.zarr", data, chunks=(1, 5, 6))
    with pytest.raises(ValueError, match=msg(path, "1 NaN and 0 inf.*first at z=3")):
        check_image(read_volume(path), path)


# ----------------------------------------------------------------------------------- labels


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "uint32", "uint64", "int32", "int64"])
def test_check_labels_accepts_integers(dtype: str) -> None:
    check_labels(np.arange(60).reshape(3, 4, 5).astype(dtype), NAME)


def test_check_labels_accepts_integral_floats() -> None:
    check_labels(np.arange(60).reshape(3, 4, 5).astype(np.float32), NAME)


def test_check_labels_negative() -> None:
    labels = np.zeros((3, 4, 5), np.int16)
    labels[2, 0, 0] = -4
    with pytest.raises(ValueError, match=msg(NAME, "non-negative.*minimum -4")):
        check_labels(labels, NAME)
    with pytest.raises(ValueError, match=msg(NAME, "non-negative")):
        check_labels(labels.astype(np.float32), NAME)


def test_check_labels_non_integer_float() -> None:
    labels = np.zeros((3, 4, 5), np.float32)
    labels[1, 1, 1] = 2.5
    with pytest.raises(ValueError, match=msg(NAME, "non-integer float values")):
        check_labels(labels, NAME)


def test_check_labels_nan() -> None:
    labels = np.zeros((3, 4, 5), np.float64)
    labels[1, 1, 1] = np.nan
    with pytest.raises(ValueError, match=msg(NAME, "NaN or inf")):
        check_labels(labels, NAME)


@pytest.mark.parametrize("dtype", ["bool", "complex64"])
def test_check_labels_wrong_dtype(dtype: str) -> None:
    with pytest.raises(ValueError, match=msg(NAME, f"integer dtype.*got dtype {dtype}")):
        check_labels(np.zeros((3, 4, 5), dtype), NAME)


def test_check_labels_shape_mismatch_names_both_files() -> None:
    text = (
        r"label/image shape mismatch: labels .*lab\.zarr have shape \(3, 4, 5\) "
        r"but image .*img\.tif has shape \(3, 4, 6\)"
    )
    with pytest.raises(ValueError, match=msg("/d/lab.zarr", text)):
        check_labels(np.zeros((3, 4, 5), np.uint32), "/d/lab.zarr", (3, 4, 6), "/d/img.tif")
    with pytest.raises(ValueError, match=text):
        check_shapes_match(np.zeros((3, 4, 5)), "/d/lab.zarr", (3, 4, 6), "/d/img.tif")
    check_shapes_match(np.zeros((3, 4, 5)), "/d/lab.zarr", (3, 4, 5), "/d/img.tif")


def test_check_labels_wrong_ndim() -> None:
    with pytest.raises(ValueError, match=msg(NAME, r"got shape \(4, 5\)")):
        check_labels(np.zeros((4, 5), np.uint32), NAME)


def test_check_labels_streams_and_finds_late_negative(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(slabs, "SLAB_BYTES", 1)
    labels = np.zeros((5, 4, 5), np.int32)
    labels[4, 3, 4] = -1
    data = CountingArray(labels)
    with pytest.raises(ValueError, match=msg(NAME, r"slices 4\.\.4")):
        check_labels(data, NAME)
    assert data.reads == [1] * 5

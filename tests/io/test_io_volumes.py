"""Tests for particleseg.io.volumes: formats, laziness, bad input, atomic writes."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import tifffile
import zarr

import particleseg.io._slabs as slabs
from particleseg.io import read_volume, read_volume_spacing, volume_format, write_volume

DTYPES = ["uint8", "uint16", "uint32", "float32"]
FORMATS = {
    "npy": "vol.npy",
    "tif": "vol.tif",
    "tiff": "vol.tiff",
    "zarr": "vol.zarr",
    "slices": "vol",
}


def make_volume(dtype: str, shape: tuple[int, int, int] = (6, 9, 11), seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        return rng.normal(size=shape).astype(dtype)
    return rng.integers(0, np.iinfo(dtype).max, size=shape, dtype=dtype, endpoint=True)


def msg(path: Path, text: str) -> str:
    """Regex that the message names ``path`` and contains ``text``."""
    return re.escape(str(path)) + ".*" + text


@pytest.fixture
def small_slabs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make slabs a single Z slice of the tiny test volumes (streaming is then observable)."""
    monkeypatch.setattr(slabs, "SLAB_BYTES", 1)


# ----------------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fmt", list(FORMATS))
def test_round_trip(tmp_path: Path, fmt: str, dtype: str) -> None:
    data = make_volume(dtype)
    path = write_volume(tmp_path / FORMATS[fmt], data, chunks=(4, 4, 4))
    assert path == tmp_path / FORMATS[fmt]
    vol = read_volume(path)
    assert vol.shape == data.shape
    assert vol.dtype == data.dtype
    np.testing.assert_array_equal(vol[:], data)
    np.testing.assert_array_equal(vol[2:4, 1:5, 3], data[2:4, 1:5, 3])
    assert sorted(p.name for p in tmp_path.iterdir()) == [FORMATS[fmt]]  # no temp left behind


@pytest.mark.parametrize("depth", [1, 3, 4])
@pytest.mark.parametrize("fmt", list(FORMATS))
def test_round_trip_few_slices(tmp_path: Path, fmt: str, depth: int) -> None:
    """Z of 3 or 4 must not be mistaken for RGB(A) planes, Z of 1 must stay 3D."""
    data = make_volume("uint8", (depth, 5, 7))
    vol = read_volume(write_volume(tmp_path / FORMATS[fmt], data))
    assert vol.shape == data.shape
    np.testing.assert_array_equal(vol[:], data)


@pytest.mark.parametrize(
    ("fmt", "lazy_type"),
    [("npy", np.memmap), ("tif", np.memmap), ("zarr", zarr.Array), ("slices", zarr.Array)],
)
def test_read_is_lazy(tmp_path: Path, fmt: str, lazy_type: type) -> None:
    path = write_volume(tmp_path / FORMATS[fmt], make_volume("uint16"))
    vol = read_volume(path)
    assert isinstance(vol, lazy_type)
    if isinstance(vol, np.memmap):
        assert not vol.flags.writeable


def test_written_tiff_is_bigtiff_and_keeps_spacing(tmp_path: Path) -> None:
    path = write_volume(tmp_path / "v.tif", make_volume("uint8"), spacing=(0.5, 0.25, 0.125))
    with tifffile.TiffFile(path) as tif:
        assert tif.is_bigtiff
        assert len(tif.pages) == 6
    assert read_volume_spacing(path) == (0.5, 0.25, 0.125)


def test_zarr_is_v3_with_clipped_chunks_and_spacing(tmp_path: Path) -> None:
    path = write_volume(tmp_path / "v.zarr", make_volume("uint32"), spacing=[1, 2, 3])
    arr = zarr.open_array(path, mode="r")
    assert arr.metadata.zarr_format == 3
    assert arr.chunks == (6, 9, 11)  # default (128, 128, 128) clipped to the shape
    assert arr.attrs["spacing"] == [1.0, 2.0, 3.0]
    assert read_volume_spacing(path) == (1.0, 2.0, 3.0)
    assert read_volume_spacing(write_volume(tmp_path / "v.npy", make_volume("uint8"))) is None


def test_zarr_custom_chunks(tmp_path: Path) -> None:
    path = write_volume(tmp_path / "v.zarr", make_volume("uint8"), chunks=(2, 4, 100))
    assert zarr.open_array(path, mode="r").chunks == (2, 4, 11)


@pytest.mark.parametrize("dtype", DTYPES)
def test_read_classic_and_big_tiff_written_by_tifffile(tmp_path: Path, dtype: str) -> None:
    data = make_volume(dtype)
    for bigtiff in (False, True):
        path = tmp_path / f"ext_{bigtiff}.tif"
        tifffile.imwrite(path, data, bigtiff=bigtiff)
        vol = read_volume(path)
        assert isinstance(vol, np.memmap)
        np.testing.assert_array_equal(vol, data)


def test_compressed_tiff_is_read_lazily_through_zarr(tmp_path: Path) -> None:
    data = make_volume("uint16")
    path = tmp_path / "c.tif"
    tifffile.imwrite(path, data, compression="zlib", bigtiff=True)
    vol = read_volume(path)
    assert isinstance(vol, zarr.Array)
    assert vol.shape == data.shape and vol.dtype == data.dtype
    np.testing.assert_array_equal(vol[1:3], data[1:3])


def test_tiff_with_pages_appended_one_by_one_is_a_stack(tmp_path: Path) -> None:
    data = make_volume("uint8")
    path = tmp_path / "appended.tif"
    for page in data:
        tifffile.imwrite(path, page, append=True)
    np.testing.assert_array_equal(read_volume(path)[:], data)


def test_folder_of_slices_natural_order_ignores_hidden_and_other_files(tmp_path: Path) -> None:
    folder = tmp_path / "scan"
    folder.mkdir()
    for z in (10, 1, 2, 3):
        tifffile.imwrite(folder / f"img{z}.tif", np.full((4, 5), z, dtype=np.uint8))
    tifffile.imwrite(folder / ".hidden.tif", np.zeros((4, 5), np.uint8))
    (folder / "notes.txt").write_text("not a slice")
    vol = read_volume(folder)
    assert isinstance(vol, zarr.Array)
    assert vol.shape == (4, 4, 5)
    assert list(vol[:, 0, 0]) == [1, 2, 3, 10]
    assert volume_format(folder) == "slices"


def test_write_from_lazy_inputs(tmp_path: Path) -> None:
    data = make_volume("float32")
    src_zarr = read_volume(write_volume(tmp_path / "a.zarr", data, chunks=(2, 4, 4)))
    src_mmap = read_volume(write_volume(tmp_path / "a.npy", data))
    np.testing.assert_array_equal(read_volume(write_volume(tmp_path / "b.tif", src_zarr)), data)
    np.testing.assert_array_equal(read_volume(write_volume(tmp_path / "b.zarr", src_mmap))[:], data)


class RecordingArray:
    """Array-like that records every read and can fail on the n-th one."""

    def __init__(self, data: np.ndarray, fail_on: int | None = None) -> None:
        self.data = data
        self.shape = data.shape
        self.dtype = data.dtype
        self.fail_on = fail_on
        self.reads: list[int] = []

    def __getitem__(self, key: slice) -> np.ndarray:
        self.reads.append(len(self.data[key]))
        if self.fail_on is not None and len(self.reads) == self.fail_on:
            raise RuntimeError("simulated failure while reading slab")
        return self.data[key]


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_writer_copies_in_slabs(tmp_path: Path, fmt: str, small_slabs: None) -> None:
    data = make_volume("uint16")
    src = RecordingArray(data)
    np.testing.assert_array_equal(
        read_volume(write_volume(tmp_path / FORMATS[fmt], src, chunks=(1, 4, 4)))[:], data
    )
    assert src.reads == [1] * data.shape[0]  # never the whole volume at once


# ------------------------------------------------------------------------------- atomic writes


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_failed_write_leaves_nothing(tmp_path: Path, fmt: str, small_slabs: None) -> None:
    src = RecordingArray(make_volume("uint8"), fail_on=3)
    with pytest.raises(RuntimeError, match="simulated failure"):
        write_volume(tmp_path / FORMATS[fmt], src, chunks=(1, 4, 4))
    assert len(src.reads) == 3  # it failed mid-way, not before starting
    assert list(tmp_path.iterdir()) == []  # neither the target nor a temporary


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_failed_overwrite_keeps_old_volume(tmp_path: Path, fmt: str, small_slabs: None) -> None:
    old = make_volume("uint8", seed=1)
    path = write_volume(tmp_path / FORMATS[fmt], old)
    with pytest.raises(RuntimeError):
        write_volume(
            path, RecordingArray(make_volume("uint8", seed=2), fail_on=3), chunks=(1, 4, 4)
        )
    np.testing.assert_array_equal(read_volume(path)[:], old)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


@pytest.mark.parametrize("fmt", ["zarr", "slices", "npy"])
def test_overwrite_replaces_completely(tmp_path: Path, fmt: str) -> None:
    path = write_volume(tmp_path / FORMATS[fmt], make_volume("uint8", (8, 9, 11)), chunks=(2, 2, 2))
    new = make_volume("uint16", (3, 4, 5), seed=3)
    write_volume(path, new)
    vol = read_volume(path)
    assert vol.shape == (3, 4, 5)
    np.testing.assert_array_equal(vol[:], new)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_write_creates_parent_folders(tmp_path: Path) -> None:
    path = write_volume(tmp_path / "a" / "b" / "v.npy", make_volume("uint8"))
    assert path.is_file()


# ----------------------------------------------------------------------------------- bad input


def test_volume_format(tmp_path: Path) -> None:
    assert volume_format(tmp_path / "a.NPY") == "npy"
    assert volume_format(tmp_path / "a.ome.tiff") == "tiff"
    assert volume_format(tmp_path / "a.zarr") == "zarr"
    assert volume_format(tmp_path / "not_yet") == "slices"
    no_suffix = write_volume(tmp_path / "store.zarr", make_volume("uint8")).rename(
        tmp_path / "store"
    )
    assert volume_format(no_suffix) == "zarr"  # a zarr store without the .zarr suffix
    assert isinstance(read_volume(no_suffix), zarr.Array)
    plain = tmp_path / "plainfile"
    plain.write_bytes(b"data")
    with pytest.raises(ValueError, match=msg(plain, "unsupported volume format")):
        read_volume(plain)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.tif"
    with pytest.raises(ValueError, match=msg(path, "not found")):
        read_volume(path)


@pytest.mark.parametrize("name", ["scan.png", "scan.h5"])
def test_unsupported_suffix(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"\x89PNG....")
    with pytest.raises(ValueError, match=msg(path, "unsupported volume format")):
        read_volume(path)
    with pytest.raises(ValueError, match=msg(path, "unsupported volume format")):
        write_volume(path, make_volume("uint8"))


@pytest.mark.parametrize("shape", [(64, 64), (2, 3, 4, 5)])
@pytest.mark.parametrize("fmt", ["npy", "tif", "zarr"])
def test_wrong_ndim(tmp_path: Path, fmt: str, shape: tuple[int, ...]) -> None:
    data = np.ones(shape, dtype=np.uint8)
    path = tmp_path / FORMATS[fmt]
    if fmt == "npy":
        np.save(path, data)
    elif fmt == "tif":
        tifffile.imwrite(path, data, photometric="minisblack")
    else:
        zarr.create_array(store=str(path), data=data)
    shape_text = re.escape(str(shape))
    with pytest.raises(
        ValueError, match=msg(path, rf"expected a 3D volume \(Z, Y, X\), got shape {shape_text}")
    ):
        read_volume(path)


@pytest.mark.parametrize("shape", [(64, 64), (2, 3, 4, 5)])
def test_write_wrong_ndim(tmp_path: Path, shape: tuple[int, ...]) -> None:
    path = tmp_path / "v.npy"
    with pytest.raises(ValueError, match=msg(path, "expected a 3D volume")):
        write_volume(path, np.ones(shape, np.uint8))
    assert not path.exists()


def test_zero_length_axis(tmp_path: Path) -> None:
    path = tmp_path / "empty.npy"
    np.save(path, np.zeros((4, 0, 3), np.uint8))
    with pytest.raises(ValueError, match=msg(path, "zero-length axis")):
        read_volume(path)
    with pytest.raises(ValueError, match=msg(tmp_path / "e.zarr", "zero-length axis")):
        write_volume(tmp_path / "e.zarr", np.zeros((0, 3, 3), np.uint8))


@pytest.mark.parametrize("fmt", ["npy", "tif"])
def test_truncated_uncompressed(tmp_path: Path, fmt: str) -> None:
    path = write_volume(tmp_path / FORMATS[fmt], make_volume("uint16", (8, 16, 16)))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=msg(path, "truncated")):
        read_volume(path)


@pytest.mark.parametrize("cut", [0.3, 0.6, 0.95])
def test_truncated_compressed_tiff(tmp_path: Path, cut: float) -> None:
    path = tmp_path / "c.tif"
    tifffile.imwrite(path, make_volume("uint16", (8, 16, 16)), compression="zlib")
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * cut)])
    with pytest.raises(ValueError, match=msg(path, "truncated|corrupt")):
        read_volume(path)


@pytest.mark.parametrize("name", ["bad.tif", "bad.npy", "empty.tif", "empty.npy"])
def test_garbage_file(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"" if name.startswith("empty") else b"this is not an image at all" * 10)
    with pytest.raises(ValueError, match=msg(path, "cannot read")):
        read_volume(path)


def test_directory_that_is_not_a_volume(tmp_path: Path) -> None:
    empty = tmp_path / "nothing"
    empty.mkdir()
    with pytest.raises(ValueError, match=msg(empty, "no .tif/.tiff slices")):
        read_volume(empty)
    fake_zarr = tmp_path / "fake.zarr"
    fake_zarr.mkdir()
    with pytest.raises(ValueError, match=msg(fake_zarr, "cannot read as zarr")):
        read_volume(fake_zarr)


def test_zarr_metadata_corrupt(tmp_path: Path) -> None:
    path = write_volume(tmp_path / "v.zarr", make_volume("uint8"))
    (path / "zarr.json").write_text("{ not json")
    with pytest.raises(ValueError, match=msg(path, "cannot read as zarr")):
        read_volume(path)


def test_slices_with_different_shapes_or_dtypes(tmp_path: Path) -> None:
    folder = tmp_path / "slices"
    folder.mkdir()
    tifffile.imwrite(folder / "s0.tif", np.zeros((4, 5), np.uint8))
    tifffile.imwrite(folder / "s1.tif", np.zeros((4, 6), np.uint8))
    with pytest.raises(ValueError, match=msg(folder, "slices differ: s1.tif")):
        read_volume(folder)
    tifffile.imwrite(folder / "s1.tif", np.zeros((4, 5), np.uint16))
    with pytest.raises(ValueError, match=msg(folder, "slices differ.*uint16")):
        read_volume(folder)


def test_slices_bad_slice(tmp_path: Path) -> None:
    folder = tmp_path / "slices"
    folder.mkdir()
    tifffile.imwrite(folder / "s0.tif", np.zeros((4, 5), np.uint8))
    tifffile.imwrite(folder / "s1.tif", np.zeros((2, 4, 5), np.uint8))
    with pytest.raises(ValueError, match=msg(folder, "s1.tif is not a 2D image")):
        read_volume(folder)
    (folder / "s1.tif").write_bytes(b"garbage garbage")
    with pytest.raises(ValueError, match=msg(folder, "s1.tif")):
        read_volume(folder)


def test_bad_spacing_and_chunks(tmp_path: Path) -> None:
    path = tmp_path / "v.zarr"
    for spacing in ([1, 2], [1, -1, 1], [1, float("nan"), 1], "abc"):
        with pytest.raises(ValueError, match=msg(path, "spacing must be 3 positive numbers")):
            write_volume(path, make_volume("uint8"), spacing=spacing)
    for chunks in ((1, 2), (0, 4, 4), (1.5, 4, 4)):
        with pytest.raises(ValueError, match=msg(path, "chunks must be 3 positive integers")):
            write_volume(path, make_volume("uint8"), chunks=chunks)
    assert not path.exists()

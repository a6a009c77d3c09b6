"""Streaming a memory-mapped volume by slabs keeps about one slab resident, not the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import particleseg.io._slabs as slabs
from particleseg.io import check_image, read_box, release_pages
from particleseg.io._slabs import iter_slabs

STATUS = Path("/proc/self/status")


def resident_file_bytes() -> int:
    """This process's file-backed resident pages (Linux's RssFile)."""
    for line in STATUS.read_text().splitlines():
        if line.startswith("RssFile:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no RssFile in /proc/self/status")


@pytest.mark.skipif(not STATUS.exists(), reason="needs Linux's /proc/self/status")
def test_streaming_a_memmapped_scan_keeps_one_slab_resident(tmp_path):
    volume = np.lib.format.open_memmap(tmp_path / "scan.npy", "w+", np.uint16, (64, 512, 512))
    volume[:] = np.arange(64, dtype=np.uint16)[:, None, None]  # 32 MiB, in the page cache now
    volume.flush()
    del volume
    scan = np.load(tmp_path / "scan.npy", mmap_mode="r")
    before = resident_file_bytes()
    check_image(scan, "scan.npy", max_bytes=2**20)  # 1 MiB slabs over the 32 MiB file
    grown = resident_file_bytes() - before
    assert grown < 8 * 2**20, f"{grown >> 20} MiB of the file stayed mapped"
    # the same reads without releasing (the regression): the whole file stays resident
    kept = np.load(tmp_path / "scan.npy", mmap_mode="r")
    before = resident_file_bytes()
    for z in range(64):
        kept[z].sum()
    assert resident_file_bytes() - before > 24 * 2**20
    release_pages(kept)
    assert resident_file_bytes() - before < 8 * 2**20
    # released pages are read again from the file, and views of them stay right
    slabs = list(iter_slabs(scan, 2**20))
    assert all(int(slab[0, 5, 5]) == z0 for z0, slab in slabs) and len(slabs) == 32


@pytest.mark.parametrize(
    "index",
    [
        (slice(None), slice(None), 5),  # a ZY slice: touches every page of the file
        (slice(3, 60), 4, slice(2, 9)),
        (slice(10, 10), slice(None), 1),
        (5, slice(None), slice(None)),
        (slice(None, None, 2), 1, 1),
        (slice(-5, None),),
        slice(2, 4),
    ],
)
def test_read_box_equals_numpy_indexing_slab_by_slab(tmp_path, monkeypatch, index):
    monkeypatch.setattr(slabs, "SLAB_BYTES", 3000)  # slabs of one 30 x 40 slice
    path = tmp_path / "scan.npy"
    volume = np.lib.format.open_memmap(path, "w+", np.uint16, (70, 30, 40))
    volume[:] = np.random.default_rng(0).integers(0, 999, volume.shape)
    volume.flush()
    want = np.array(volume)[index]
    for array in (np.load(path, mmap_mode="r"), np.load(path)):  # mapped, and in memory
        got = read_box(array, index)
        assert type(got) is np.ndarray and got.shape == want.shape
        np.testing.assert_array_equal(got, want)


def test_a_copy_on_write_mapping_keeps_what_was_written(tmp_path):
    np.save(tmp_path / "scan.npy", np.zeros((8, 64, 64), np.uint16))
    private = np.load(tmp_path / "scan.npy", mmap_mode="c")
    private[3] = 7  # written to this process's copy only
    release_pages(private)
    np.testing.assert_array_equal(read_box(private, (slice(None), 5, 5)), [0, 0, 0, 7, 0, 0, 0, 0])

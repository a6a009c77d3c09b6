"""input_identity: a bounded sampled hash tells a changed or replaced input from the same one."""

from __future__ import annotations

import os

import numpy as np
import pytest

from particleseg.io import identity
from particleseg.io.identity import input_identity


def test_same_bytes_same_identity_and_reads_are_bounded(tmp_path):
    data = np.random.default_rng(0).integers(0, 255, 8 << 20, dtype=np.uint8)  # 8 MiB
    (tmp_path / "a.raw").write_bytes(data.tobytes())
    first, again = input_identity(tmp_path / "a.raw"), input_identity(tmp_path / "a.raw")
    assert first == again
    assert first["bytes"] == data.size and first["files"] == 1
    limit = 2 * identity.HEAD_BYTES + identity.N_BLOCKS * identity.BLOCK_BYTES
    assert first["sample_bytes"] == limit < data.size / 20


@pytest.mark.parametrize("where", ["head", "middle_block", "tail"])
def test_a_changed_sampled_byte_changes_the_hash(tmp_path, where):
    data = bytearray(4 << 20)
    (tmp_path / "a.raw").write_bytes(bytes(data))
    before = input_identity(tmp_path / "a.raw")
    pos = {"head": 10, "middle_block": identity.HEAD_BYTES + 5, "tail": len(data) - 3}[where]
    data[pos] = 1
    (tmp_path / "a.raw").write_bytes(bytes(data))
    st = os.stat(tmp_path / "a.raw")
    os.utime(tmp_path / "a.raw", ns=(st.st_atime_ns, before["mtime_ns"]))  # same time
    after = input_identity(tmp_path / "a.raw")
    assert after["mtime_ns"] == before["mtime_ns"] and after["bytes"] == before["bytes"]
    assert after["sample_sha256"] != before["sample_sha256"]


def test_a_copy_elsewhere_differs_in_path_and_a_touch_in_time(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "a.raw").write_bytes(b"abc" * 1000)
    (tmp_path / "x" / "a.raw").write_bytes(b"abc" * 1000)
    a, b = input_identity(tmp_path / "a.raw"), input_identity(tmp_path / "x" / "a.raw")
    assert a["sample_sha256"] == b["sample_sha256"] and a["path"] != b["path"]
    os.utime(tmp_path / "a.raw", ns=(0, a["mtime_ns"] + 10**9))
    assert input_identity(tmp_path / "a.raw")["mtime_ns"] != a["mtime_ns"]


def test_folder_identity_lists_every_file_and_samples_a_few(tmp_path):
    store = tmp_path / "scan.zarr"
    (store / "c").mkdir(parents=True)
    (store / "zarr.json").write_text('{"shape": [4]}')
    for i in range(100):
        (store / "c" / str(i)).write_bytes(bytes([i]) * 100_000)
    first = input_identity(store)
    assert first["files"] == 101 and first["bytes"] == 100 * 100_000 + 14
    assert first["sample_bytes"] < 20 * 100_000  # 16 chunks and the metadata, not all 100
    (store / "c" / "100").write_bytes(b"\0")  # a file more: the listing changes the hash
    assert input_identity(store)["sample_sha256"] != first["sample_sha256"]


def test_missing_input_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match=r"nothing\.tif: no such file or folder"):
        input_identity(tmp_path / "nothing.tif")

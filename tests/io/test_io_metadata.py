"""Tests for particleseg.io.metadata: SampleMetadata and the JSON sidecar."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

import particleseg.io.atomic as atomic
from particleseg.io import SampleMetadata, read_metadata, sidecar_path, write_metadata

SRC = "/data/scan.meta.json"


def msg(path: str | Path, text: str) -> str:
    return re.escape(str(path)) + ".*" + text


def test_from_dict_valid() -> None:
    meta = SampleMetadata.from_dict(
        {"spacing": [0.02, 0.01, 0.01], "unit": "mm", "particle_size": 0.3, "note": "x"}, SRC
    )
    assert meta == SampleMetadata((0.02, 0.01, 0.01), "mm", 0.3, None)
    assert isinstance(meta.spacing, tuple)
    assert meta.particle_size_voxels() == pytest.approx((15.0, 30.0, 30.0))


def test_unit_defaults_to_mm_and_ints_become_floats() -> None:
    meta = SampleMetadata.from_dict({"spacing": [1, 1, 2], "particle_size_px": 12}, SRC)
    assert meta.unit == "mm"
    assert meta.spacing == (1.0, 1.0, 2.0) and isinstance(meta.spacing[0], float)
    assert meta.particle_size_voxels() == (12.0, 12.0, 12.0)
    assert (
        SampleMetadata.from_dict({"spacing": [1, 1, 1], "particle_size_px": 3}, SRC, "um").unit
        == "um"
    )


def test_particle_size_px_wins() -> None:
    meta = SampleMetadata((0.1, 0.1, 0.1), particle_size=1.0, particle_size_px=4.0)
    assert meta.particle_size_voxels() == (4.0, 4.0, 4.0)


def test_to_dict_round_trip() -> None:
    for meta in (
        SampleMetadata((0.5, 0.25, 0.25), "um", particle_size=10.0),
        SampleMetadata((1.0, 1.0, 1.0), particle_size_px=8.0),
        SampleMetadata((1.0, 1.0, 1.0), particle_size=2.0, particle_size_px=8.0),
    ):
        d = meta.to_dict()
        assert json.loads(json.dumps(d)) == d
        assert SampleMetadata.from_dict(d, SRC) == meta
    assert "particle_size_px" not in SampleMetadata((1, 1, 1), particle_size=2.0).to_dict()


def test_frozen() -> None:
    meta = SampleMetadata((1.0, 1.0, 1.0), particle_size_px=8.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        meta.unit = "um"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("spacing", "text"),
    [
        (None, 'missing "spacing"'),
        ([0.1, 0.1], "3 positive numbers"),
        (0.1, "3 positive numbers"),
        ("0.1", "3 positive numbers"),
        ([0.1, 0.0, 0.1], "3 positive numbers"),
        ([0.1, -1, 0.1], "3 positive numbers"),
        ([0.1, float("nan"), 0.1], "3 positive numbers"),
        ([0.1, float("inf"), 0.1], "3 positive numbers"),
        ([0.1, "a", 0.1], "3 positive numbers"),
        ([True, 1, 1], "3 positive numbers"),
    ],
)
def test_bad_spacing(spacing: object, text: str) -> None:
    d = {"particle_size": 0.3} if spacing is None else {"spacing": spacing, "particle_size": 0.3}
    with pytest.raises(ValueError, match=msg(SRC, text)):
        SampleMetadata.from_dict(d, SRC)


def test_missing_particle_size_explains_how_to_give_it() -> None:
    with pytest.raises(ValueError, match=msg(SRC, "missing particle size")) as info:
        SampleMetadata.from_dict({"spacing": [1, 1, 1]}, SRC)
    text = str(info.value)
    for hint in ("particle_size_px", ".meta.json", "particle_size=", "spacing="):
        assert hint in text


@pytest.mark.parametrize("key", ["particle_size", "particle_size_px"])
@pytest.mark.parametrize("value", [0, -1.0, float("nan"), "big"])
def test_bad_particle_size(key: str, value: object) -> None:
    with pytest.raises(ValueError, match=msg(SRC, f'"{key}" must be a positive finite number')):
        SampleMetadata.from_dict({"spacing": [1, 1, 1], key: value}, SRC)


def test_bad_unit_and_not_a_dict() -> None:
    with pytest.raises(ValueError, match=msg(SRC, '"unit" must be a non-empty string')):
        SampleMetadata.from_dict({"spacing": [1, 1, 1], "particle_size": 1, "unit": ""}, SRC)
    with pytest.raises(ValueError, match=msg(SRC, "expected a JSON object")):
        SampleMetadata.from_dict([1, 2, 3], SRC)


def test_all_problems_reported_each_with_source() -> None:
    with pytest.raises(ValueError) as info:
        SampleMetadata.from_dict({"spacing": [1, 1], "unit": 3}, SRC)
    lines = str(info.value).splitlines()
    assert len(lines) == 3
    assert all(line.startswith(SRC) for line in lines)


def test_direct_construction_is_validated() -> None:
    with pytest.raises(ValueError, match="SampleMetadata.*missing particle size"):
        SampleMetadata((1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="SampleMetadata.*spacing"):
        SampleMetadata((1.0, 1.0), particle_size=1.0)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("image", "sidecar"),
    [
        ("/d/scan.tif", "/d/scan.meta.json"),
        ("/d/scan.TIFF", "/d/scan.meta.json"),
        ("/d/scan.ome.tif", "/d/scan.meta.json"),
        ("/d/scan.zarr", "/d/scan.meta.json"),
        ("/d/scan.npy", "/d/scan.meta.json"),
        ("/d/slices", "/d/slices.meta.json"),
        ("/d/slices/", "/d/slices.meta.json"),
        ("/d/scan.v2", "/d/scan.v2.meta.json"),
    ],
)
def test_sidecar_path(image: str, sidecar: str) -> None:
    assert sidecar_path(image) == Path(sidecar)


def test_write_read_round_trip(tmp_path: Path) -> None:
    meta = SampleMetadata((0.02, 0.01, 0.01), "mm", particle_size=0.3)
    path = write_metadata(tmp_path / "scan.tif", meta)
    assert path == tmp_path / "scan.meta.json"
    assert read_metadata(tmp_path / "scan.tif") == meta
    assert read_metadata(tmp_path / "scan.zarr") == meta  # same sidecar name
    assert [p.name for p in tmp_path.iterdir()] == ["scan.meta.json"]


def test_read_missing_sidecar(tmp_path: Path) -> None:
    image = tmp_path / "scan.tif"
    with pytest.raises(ValueError, match=msg(tmp_path / "scan.meta.json", "not found")) as info:
        read_metadata(image)
    assert "particle_size_px" in str(info.value)


def test_read_malformed_sidecar(tmp_path: Path) -> None:
    sidecar = tmp_path / "scan.meta.json"
    sidecar.write_text('{"spacing": [1, 1, 1], ')
    with pytest.raises(ValueError, match=msg(sidecar, "malformed JSON")):
        read_metadata(tmp_path / "scan.tif")
    sidecar.write_text('{"spacing": [1, 1, 1]}')
    with pytest.raises(ValueError, match=msg(sidecar, "missing particle size")):
        read_metadata(tmp_path / "scan.tif")


def test_write_metadata_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    old = SampleMetadata((1.0, 1.0, 1.0), particle_size_px=5.0)
    write_metadata(tmp_path / "scan.tif", old)

    def broken_replace(src: object, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(atomic.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        write_metadata(tmp_path / "scan.tif", SampleMetadata((2.0, 2.0, 2.0), particle_size_px=1.0))
    monkeypatch.undo()
    assert read_metadata(tmp_path / "scan.tif") == old
    assert [p.name for p in tmp_path.iterdir()] == ["scan.meta.json"]

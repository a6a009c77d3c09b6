"""Tests for particleseg.io.dataset: dataset.json reading, writing and validation."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr

from particleseg.io import (
    SPLITS,
    Dataset,
    SampleEntry,
    SampleMetadata,
    load_dataset,
    read_sample,
    validate_dataset,
    write_dataset_json,
    write_volume,
)


def msg(path: str | Path, text: str) -> str:
    return re.escape(str(path)) + ".*" + text


def make_pair(root: Path, name: str, fmt: str = "npy", shape=(4, 6, 6), seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    image = rng.normal(size=shape).astype(np.float32)
    labels = (rng.random(shape) * 3).astype(np.uint32)
    write_volume(root / "images" / f"{name}.{fmt}", image)
    write_volume(root / "labels" / f"{name}.{fmt}", labels)


def sample(name: str, split: str = "train", fmt: str = "npy", **kw: Any) -> dict[str, Any]:
    d = {
        "name": name,
        "image": f"images/{name}.{fmt}",
        "label": f"labels/{name}.{fmt}",
        "spacing": [0.01, 0.01, 0.01],
        "particle_size": 0.3,
        "split": split,
    }
    d.update(kw)
    return d


@pytest.fixture
def dataset_dir(tmp_path: Path) -> Path:
    root = tmp_path / "ds"
    make_pair(root, "s000", seed=0)
    make_pair(root, "s001", "zarr", seed=1)
    make_pair(root, "s002", "tif", seed=2)
    samples = [
        sample("s000", "train", group="ore-a"),
        sample("s001", "id_test", "zarr", particle_size=None, particle_size_px=12),
        sample("s002", "ood_test", "tif", unit="um", spacing=(5, 5, 5), particle_size=150),
    ]
    write_dataset_json(
        root, "synthetic-v1", samples, description="tiny", unit="mm", ood_differences=["ore b"]
    )
    return root


def write_raw(root: Path, doc: Any) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    path = root / "dataset.json"
    path.write_text(json.dumps(doc))
    return path


def test_load_dataset(dataset_dir: Path) -> None:
    ds = load_dataset(dataset_dir)
    assert isinstance(ds, Dataset)
    assert ds.root == dataset_dir.absolute()
    assert (ds.name, ds.description) == ("synthetic-v1", "tiny")
    assert ds.extra == {"unit": "mm", "ood_differences": ["ore b"]}
    assert ds.names() == ["s000", "s001", "s002"]
    assert len(ds) == 3 and [s.name for s in ds] == ds.names()
    assert [s.name for s in ds.split("train")] == ["s000"]
    assert [s.name for s in ds.split("ood_test")] == ["s002"]
    s0, s1, s2 = ds.samples
    assert isinstance(s0, SampleEntry)
    assert s0.image == dataset_dir / "images" / "s000.npy" and s0.image.is_absolute()
    assert s0.label == dataset_dir / "labels" / "s000.npy"
    assert s0.group == "ore-a" and s1.group == "s001"  # group defaults to the name
    assert s0.metadata == SampleMetadata((0.01, 0.01, 0.01), "mm", particle_size=0.3)
    assert s1.metadata.particle_size_voxels() == (12.0, 12.0, 12.0)
    assert s2.metadata.unit == "um"
    assert ds.sample("s002") is s2
    with pytest.raises(KeyError):
        ds.sample("nope")
    with pytest.raises(ValueError, match="unknown split 'test'"):
        ds.split("test")
    assert load_dataset(dataset_dir / "dataset.json").names() == ds.names()


def test_written_json_format(dataset_dir: Path) -> None:
    doc = json.loads((dataset_dir / "dataset.json").read_text())
    assert list(doc)[:2] == ["name", "description"] and list(doc)[-1] == "samples"
    assert doc["samples"][2]["spacing"] == [5, 5, 5]
    assert doc["samples"][0]["image"] == "images/s000.npy"
    assert sorted(p.name for p in dataset_dir.iterdir()) == ["dataset.json", "images", "labels"]


def test_write_dataset_json_relativizes_and_converts(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    make_pair(root, "a")
    entry = sample(
        "a", image=root / "images" / "a.npy", label=str(root / "labels" / "a.npy"),
        spacing=np.array([0.1, 0.1, 0.1]), particle_size=np.float32(2.0),
    )  # fmt: skip
    write_dataset_json(root, "x", [entry])
    doc = json.loads((root / "dataset.json").read_text())
    assert doc["samples"][0]["image"] == "images/a.npy"
    assert doc["samples"][0]["label"] == "labels/a.npy"
    assert doc["samples"][0]["particle_size"] == 2.0
    assert load_dataset(root).samples[0].metadata.spacing == (0.1, 0.1, 0.1)


def test_read_sample_is_lazy(dataset_dir: Path) -> None:
    ds = load_dataset(dataset_dir)
    image, labels = read_sample(ds.samples[0])
    assert isinstance(image, np.memmap) and isinstance(labels, np.memmap)
    image, labels = read_sample(ds.samples[1])
    assert isinstance(image, zarr.Array) and labels.shape == image.shape
    assert labels.dtype == np.uint32


def test_read_sample_shape_mismatch(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    make_pair(root, "a")
    write_volume(root / "labels" / "a.npy", np.zeros((4, 6, 5), np.uint32))
    write_dataset_json(root, "x", [sample("a")])
    entry = load_dataset(root).samples[0]
    with pytest.raises(ValueError, match=msg(entry.label, r"shape \(4, 6, 5\).*image .*a\.npy")):
        read_sample(entry)


def test_read_sample_without_labels(dataset_dir: Path) -> None:
    entry = load_dataset(dataset_dir).samples[0]
    image, labels = read_sample(SampleEntry("x", entry.image, None, entry.metadata, "train", "x"))
    assert labels is None and image.shape == (4, 6, 6)


def test_every_problem_is_listed(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    make_pair(root, "ok")
    make_pair(root, "dup")
    samples = [
        sample("ok"),
        sample("dup"),
        sample("dup", "id_test"),
        sample("badsplit", "test", image="images/ok.npy", label="labels/ok.npy"),
        sample("nofile"),
        sample("nolabel", image="images/ok.npy", label=None),
        sample("nosize", image="images/ok.npy", label="labels/ok.npy", particle_size=None),
        sample("badspacing", image="images/ok.npy", label="labels/ok.npy", spacing=[1, 1]),
        "not an object",
        sample("", image="images/ok.npy", label="labels/ok.npy"),
    ]
    path = write_raw(root, {"name": "x", "samples": samples})
    with pytest.raises(ValueError) as info:
        load_dataset(root)
    text = str(info.value)
    lines = text.splitlines()
    assert lines[0] == f"{path}: 10 problems found:"
    assert all(str(path) in line for line in lines)
    expected = [
        "sample 'dup': duplicate sample name (also sample #1)",
        "sample 'badsplit': \"split\" must be one of",
        "sample 'nofile': image 'images/nofile.npy' not found",
        "sample 'nofile': label 'labels/nofile.npy' not found",
        "sample 'nolabel': missing \"label\"",
        "sample 'nosize': missing particle size",
        "sample 'badspacing': spacing must be 3 positive numbers (Z, Y, X)",
        "sample #8: expected a JSON object",
        "sample '': \"name\" must be a non-empty string",
    ]
    for part in expected:
        assert part in text, part
    assert "sample 'ok'" not in text


@pytest.mark.parametrize(
    ("doc", "text"),
    [
        ([1, 2], "expected a JSON object"),
        ({"name": "x"}, '"samples" must be a non-empty list'),
        ({"name": "x", "samples": []}, '"samples" must be a non-empty list'),
        ({"samples": [], "description": 3}, '"name" must be a non-empty string'),
        ({"name": "x", "samples": [], "unit": 5}, '"unit" must be a non-empty string'),
    ],
)
def test_bad_structure(tmp_path: Path, doc: Any, text: str) -> None:
    path = write_raw(tmp_path / "ds", doc)
    with pytest.raises(ValueError, match=msg(path, text)):
        load_dataset(tmp_path / "ds")


def test_missing_and_malformed_json(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=msg(tmp_path / "dataset.json", "not found")):
        load_dataset(tmp_path)
    (tmp_path / "dataset.json").write_text("{ oops")
    with pytest.raises(ValueError, match=msg(tmp_path / "dataset.json", "malformed JSON")):
        load_dataset(tmp_path)


def test_write_dataset_json_rejects_non_dict_sample(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=msg(tmp_path / "dataset.json", r"samples\[1\] must be")):
        write_dataset_json(tmp_path, "x", [sample("a"), "oops"])  # type: ignore[list-item]
    assert not (tmp_path / "dataset.json").exists()


def test_splits_constant() -> None:
    assert SPLITS == ("train", "val", "id_test", "ood_test")


def test_validate_dataset_ok(dataset_dir: Path) -> None:
    assert validate_dataset(dataset_dir, check_arrays=True).names() == ["s000", "s001", "s002"]


def test_validate_dataset_checks_arrays_and_lists_all(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    for name in ("good", "mismatch", "nan", "const", "neg", "flat", "corrupt"):
        make_pair(root, name)
    write_volume(root / "labels" / "mismatch.npy", np.zeros((4, 6, 7), np.uint32))
    nan_image = np.ones((4, 6, 6), np.float32)
    nan_image[1, 2, 3] = np.nan
    write_volume(root / "images" / "nan.npy", nan_image)
    write_volume(root / "labels" / "nan.npy", np.zeros((5, 6, 6), np.uint32))  # and a mismatch
    write_volume(root / "images" / "const.npy", np.full((4, 6, 6), 3, np.uint16))
    write_volume(root / "labels" / "neg.npy", -np.ones((4, 6, 6), np.int32))
    np.save(root / "images" / "flat.npy", np.ones((6, 6), np.float32))
    (root / "labels" / "corrupt.npy").write_bytes(b"\x93NUMPY garbage")
    names = ["good", "mismatch", "nan", "const", "neg", "flat", "corrupt"]
    path = write_dataset_json(root, "x", [sample(n) for n in names])
    assert load_dataset(root).names() == names  # structure is fine; only the arrays are bad
    with pytest.raises(ValueError) as info:
        validate_dataset(root, check_arrays=True)
    lines = str(info.value).splitlines()
    assert lines[0] == f"{path}: 7 problems found:"
    assert any("sample 'nan'" in ln and "label/image shape mismatch" in ln for ln in lines)
    expected = {
        "mismatch": "label/image shape mismatch",
        "nan": "non-finite",
        "const": "constant",
        "neg": "non-negative",
        "flat": "expected a 3D volume",
        "corrupt": "cannot read",
    }
    for name, text in expected.items():
        assert any(f"sample '{name}'" in ln and text in ln and str(path) in ln for ln in lines)
    assert not any("sample 'good'" in line for line in lines)


def test_validate_dataset_reports_corrupt_zarr_chunk(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    make_pair(root, "z", "zarr")
    chunk = next(
        p for p in (root / "images" / "z.zarr").rglob("*") if p.is_file() and p.name != "zarr.json"
    )
    chunk.write_bytes(b"not zstd data")
    path = write_dataset_json(root, "x", [sample("z", fmt="zarr")])
    with pytest.raises(ValueError, match=msg(path, "sample 'z'.*z.zarr: cannot read the data")):
        validate_dataset(root, check_arrays=True)

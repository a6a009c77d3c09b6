"""A plain folder as predict's input: 3D scans predicted one by one (sidecars or one
metadata.json), or the 2D slices of one scan, told apart by the files' dimensionality."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import tifffile
import zarr
from hydra.core.global_hydra import GlobalHydra
from inference_helpers import blobs

from particleseg.config import compose_config
from particleseg.inference.inputs import input_kind, list_scans
from particleseg.io import SampleMetadata, write_metadata, write_volume

ROOT = Path(__file__).resolve().parents[2]


def predict_config(folder, checkpoint, tmp_path, *overrides):
    """predict's composed config on ``folder`` into ``tmp_path/out``."""
    base = [f"input={folder}", f"checkpoint={checkpoint}", f"output={tmp_path / 'out'}"]
    GlobalHydra.instance().clear()
    return compose_config("predict", [*base, f"paths.root={tmp_path}", *overrides])


@pytest.fixture
def scans(tmp_path):
    folder = tmp_path / "scans"
    folder.mkdir()
    tifffile.imwrite(folder / "a.tif", blobs((20, 24, 24), 8, 4, seed=1))
    np.save(folder / "b.npy", blobs((18, 24, 22), 8, 4, seed=2))
    write_volume(folder / "c.zarr", blobs((16, 20, 24), 8, 4, seed=3))
    write_metadata(folder / "c.zarr", SampleMetadata(spacing=(1.0, 1.0, 1.0), particle_size_px=7))
    table = {
        "a": {"spacing": 0.5, "unit": "um", "particle_size": 4.0},
        "b": {"spacing": [2, 1, 1], "particle_size_px": 9},
    }
    (folder / "metadata.json").write_text(json.dumps(table))
    return folder


def test_a_folder_of_scans_gives_one_scan_each_with_its_metadata(scans):
    assert input_kind(scans) == "scans"
    found = {s.name: s for s in list_scans(scans)}
    assert sorted(found) == ["a", "b", "c"]
    assert found["a"].particle_size_px == (8.0, 8.0, 8.0) and found["a"].unit == "um"
    assert found["b"].particle_size_px == (9.0,) * 3 and found["b"].spacing == (2.0, 1.0, 1.0)
    assert found["c"].particle_size_px == (7.0,) * 3 and found["c"].size_source == "metadata"
    assert found["b"].shape == (18, 24, 22)


def test_a_folder_of_slices_is_one_scan(tmp_path):
    folder = tmp_path / "slices"
    folder.mkdir()
    image = blobs((6, 20, 22), 4, 3)
    for z, page in enumerate(image):
        tifffile.imwrite(folder / f"s{z:03d}.tif", page)
    assert input_kind(folder) == "slices"
    (scan,) = list_scans(folder, particle_size_px=6)
    assert scan.shape == (6, 20, 22)


def test_bad_folders_are_named(scans, tmp_path):
    (scans / "metadata.json").write_text(json.dumps({"zz": {"spacing": 1, "particle_size": 2}}))
    with pytest.raises(ValueError, match=r"metadata.json: entries for scans that are not.*zz"):
        list_scans(scans)
    (scans / "metadata.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"metadata.json: cannot read it"):
        list_scans(scans)
    (scans / "metadata.json").unlink()
    with pytest.raises(ValueError, match=r"a.tif.*metadata sidecar|a.tif: the mean particle"):
        list_scans(scans)  # a scan without any size names itself
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    tifffile.imwrite(mixed / "scan.tif", blobs((8, 10, 10), 2, 2))
    tifffile.imwrite(mixed / "slice.tif", np.zeros((10, 10), np.uint16))
    with pytest.raises(ValueError, match=r"mixed: holds both 3D scans"):
        input_kind(mixed)
    with pytest.raises(ValueError, match="input not found"):
        input_kind(tmp_path / "nothing")


def test_predict_writes_one_folder_per_scan(scans, tiny_checkpoint, tmp_path):
    from particleseg.tasks import predict

    (scans / "metadata.json").unlink()
    for name in ("a.tif", "b.npy"):
        write_metadata(scans / name, SampleMetadata(spacing=(1.0,) * 3, particle_size_px=8))
    cfg = predict_config(
        scans,
        tiny_checkpoint,
        tmp_path,
        "inference.engine=torch",
        "inference.precision=fp32",
        "inference.chunk_size=16",
        "trainer.enable_progress_bar=false",
        "outputs.analysis=false",
        "outputs.overlay=false",
    )
    summaries = predict(cfg)
    assert [s["name"] for s in summaries] == ["a", "b", "c"]
    shapes = {"a": (20, 24, 24), "b": (18, 24, 22), "c": (16, 20, 24)}
    for summary in summaries:
        out = tmp_path / "out" / summary["name"]
        assert zarr.open_array(str(out / "instances.zarr")).shape == shapes[summary["name"]]
        assert json.loads((out / "summary.json").read_text())["input"].endswith(
            str(Path("scans") / {"a": "a.tif", "b": "b.npy", "c": "c.zarr"}[summary["name"]])
        )
    # a run stopped before its last scan: the same command keeps the finished scans as they
    # are and does the rest
    stamps = {n: (tmp_path / "out" / n / "summary.json").stat().st_mtime_ns for n in "ab"}
    shutil.rmtree(tmp_path / "out" / "c")
    again = predict(cfg)
    assert [s["particles"] for s in again] == [s["particles"] for s in summaries]
    for name, stamp in stamps.items():
        assert (tmp_path / "out" / name / "summary.json").stat().st_mtime_ns == stamp
    assert (tmp_path / "out" / "c" / "summary.json").is_file()


def test_dry_run_lists_each_scan_with_its_cost_and_writes_nothing(
    scans, tiny_checkpoint, tmp_path, capsys
):
    from particleseg.entry import take_dry_run_flag
    from particleseg.tasks import predict

    argv = ["predict.py", "input=x", "--dry-run"]
    assert take_dry_run_flag(argv) and argv == ["predict.py", "input=x", "dry_run=true"]
    assert predict(predict_config(scans, tiny_checkpoint, tmp_path, "dry_run=true")) == []
    printed = capsys.readouterr().out
    assert "dry run: 3 scan(s), nothing written" in printed
    # a: 4 / 0.5 = 8 voxels, the tiny model's size: zoom 1, the scan's own grid
    assert (
        "a: 20x24x24 voxels, particles 8 voxels (metadata), zoom 1, network grid 20x24x24"
        in printed
    )
    assert f"-> {tmp_path / 'out' / 'c'}" in printed and "min for the network" in printed
    assert "peak memory about" in printed
    assert not (tmp_path / "out").exists()


def test_predict_reads_an_ome_zarr_image_like_its_array(tiny_checkpoint, tmp_path):
    from inference_helpers import run

    data = blobs((24, 30, 28), 15, 4)
    group = zarr.open_group(str(tmp_path / "s.ome.zarr"), mode="w", zarr_format=3)
    group.create_array("0", data=data[None, None], chunks=(1, 1, 12, 15, 14))
    scale = {"type": "scale", "scale": [1.0, 1.0, 2.0, 1.0, 1.0]}
    datasets = [{"path": "0", "coordinateTransformations": [scale]}]
    axes = [{"name": a} for a in "tczyx"]
    group.attrs["ome"] = {"version": "0.5", "multiscales": [{"axes": axes, "datasets": datasets}]}
    np.save(tmp_path / "s.npy", data)
    ome = run(tmp_path / "s.ome.zarr", tmp_path / "a", tiny_checkpoint, 8.0)
    plain = run(tmp_path / "s.npy", tmp_path / "b", tiny_checkpoint, 8.0)
    assert ome["spacing"] == [2.0, 1.0, 1.0] and ome["shape"] == [24, 30, 28]
    assert ome["particles"] == plain["particles"] > 0
    np.testing.assert_array_equal(
        zarr.open_array(str(tmp_path / "a" / "instances.zarr"))[...],
        zarr.open_array(str(tmp_path / "b" / "instances.zarr"))[...],
    )

"""The plugin's reader on a result folder: lazy multiscale labels with scale, scan, table."""

import csv
import json

import numpy as np
import pytest
import tifffile

from particleseg.io.ome_zarr import write_label_ome_zarr
from particleseg.napari_plugin.reader import get_reader, read_particles_table, read_result


@pytest.fixture
def result(tmp_path):
    """A result folder as predict writes it (labels, summary, table) for a saved scan."""
    rng = np.random.default_rng(1)
    image = rng.integers(0, 1000, (40, 30, 20)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "scan.tif", image)
    labels = np.zeros(image.shape, np.uint32)
    labels[2:10, 2:10, 2:10], labels[20:30, 5:15, 5:15] = 1, 2
    out = tmp_path / "out"
    out.mkdir()
    write_label_ome_zarr(out / "instances.ome.zarr", labels, (2.0, 1.0, 0.5), "um", top_size=16)
    summary = {"input": str(tmp_path / "scan.tif"), "name": "scan", "shape": list(image.shape)}
    summary |= {"spacing": [2.0, 1.0, 0.5], "unit": "um"}
    (out / "summary.json").write_text(json.dumps(summary))
    with (out / "particles.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "volume", "phase"])
        w.writerows([[1, 512, "ore"], [2, 1000, "ore"]])
    return out, image, labels


def test_result_opens_as_scan_and_multiscale_labels_with_scale(result):
    out, image, labels = result
    assert get_reader(str(out)) is read_result
    assert get_reader([str(out / "instances.ome.zarr")]) is read_result
    (scan, scan_meta, scan_kind), (levels, meta, kind) = read_result(str(out))
    assert scan_kind == "image" and kind == "labels"
    np.testing.assert_array_equal(np.asarray(scan), image)  # dask, read lazily
    assert scan_meta["scale"] == meta["scale"] == (2.0, 1.0, 0.5)
    assert meta["multiscale"] and len(levels) == 3
    np.testing.assert_array_equal(levels[0][...], labels)
    np.testing.assert_array_equal(levels[1][...], labels[::2, ::2, ::2])
    features = meta["features"]
    assert list(features["index"]) == [0, 1, 2]  # background row first, then the ids
    assert list(features["volume"][1:]) == [512.0, 1000.0]
    assert list(features["phase"]) == ["", "ore", "ore"]


def test_a_moved_scan_is_left_out_and_other_folders_are_not_ours(result, tmp_path):
    out, _, _ = result
    (tmp_path / "scan.tif").unlink()
    layers = read_result(str(out))
    assert [kind for _, _, kind in layers] == ["labels"]
    assert get_reader(str(tmp_path)) is None  # no summary.json
    assert get_reader([str(out), str(out)]) is None
    with pytest.raises(ValueError, match="not a particleseg result"):
        read_result(str(tmp_path))


def test_an_empty_table_gives_no_features(tmp_path):
    (tmp_path / "particles.csv").write_text("id,volume\n")
    assert read_particles_table(tmp_path / "particles.csv") == {}


def test_napari_opens_a_result_with_the_plugin(result):
    napari = pytest.importorskip("napari")
    out, _, labels = result
    npe2 = pytest.importorskip("npe2")
    npe2.PluginManager.instance().discover()  # as napari does at start: the installed plugins
    viewer = napari.components.ViewerModel()
    viewer.open(str(out), plugin="particleseg")
    layer = viewer.layers["instances"]
    assert type(layer).__name__ == "Labels" and layer.multiscale
    np.testing.assert_array_equal(layer.scale, [2.0, 1.0, 0.5])
    assert list(layer.features["index"]) == [0, 1, 2]
    assert type(viewer.layers["scan"]).__name__ == "Image"

"""The OME-Zarr label writer, read back by ome-zarr-py's reader and validated by ome-zarr-models."""

import numpy as np
import pytest
import zarr

from particleseg.io.ome_zarr import (
    NGFF_VERSION,
    ngff_unit,
    pyramid_shapes,
    write_label_ome_zarr,
)
from particleseg.io.volumes import read_volume, read_volume_spacing

ome_reader = pytest.importorskip("ome_zarr.reader")
ome_io = pytest.importorskip("ome_zarr.io")
image_label = pytest.importorskip("ome_zarr_models.v04.image_label")


@pytest.fixture
def labels():
    rng = np.random.default_rng(0)
    return rng.integers(0, 300, (70, 40, 90)).astype(np.uint32)


def read_back(path):
    """(specs, levels as numpy, metadata) of the one node ome-zarr-py finds at ``path``."""
    nodes = list(ome_reader.Reader(ome_io.parse_url(str(path)))())
    assert len(nodes) == 1
    node = nodes[0]
    return [type(s).__name__ for s in node.specs], [np.asarray(d) for d in node.data], node.metadata


def test_ome_zarr_reader_sees_a_multiscale_label_image_with_scale_and_unit(tmp_path, labels):
    path = write_label_ome_zarr(
        tmp_path / "instances.ome.zarr", labels, (2.0, 0.5, 0.5), "um", top_size=16
    )
    specs, levels, meta = read_back(path)
    assert "Label" in specs and "Multiscales" in specs
    assert [lv.shape for lv in levels] == [(70, 40, 90), (35, 20, 45), (18, 10, 23), (9, 5, 12)]
    for k, level in enumerate(levels):  # nearest: every 2**k-th voxel of the labels, exact ids
        f = 2**k
        np.testing.assert_array_equal(level, labels[::f, ::f, ::f])
        assert level.dtype == np.uint32
        assert meta["coordinateTransformations"][k] == [
            {"type": "scale", "scale": [2.0 * f, 0.5 * f, 0.5 * f]}
        ]
    assert [a["unit"] for a in meta["axes"]] == ["micrometer"] * 3
    assert [a["name"] for a in meta["axes"]] == ["z", "y", "x"]
    model = image_label.ImageLabel.from_zarr(zarr.open_group(str(path), mode="r"))
    assert model.attributes.multiscales[0].version == NGFF_VERSION
    # and particleseg reads it as an input: level 0 with its scale
    np.testing.assert_array_equal(np.asarray(read_volume(path)), labels)
    assert read_volume_spacing(path) == (2.0, 0.5, 0.5)


def test_without_spacing_the_scale_is_one_voxel_and_no_unit(tmp_path, labels):
    path = write_label_ome_zarr(tmp_path / "l.ome.zarr", labels[:8, :8, :8])
    specs, levels, meta = read_back(path)
    assert len(levels) == 1  # already smaller than the top size: one level
    assert meta["coordinateTransformations"] == [[{"type": "scale", "scale": [1.0, 1.0, 1.0]}]]
    assert all("unit" not in a for a in meta["axes"])
    image_label.ImageLabel.from_zarr(zarr.open_group(str(path), mode="r"))


def test_an_existing_result_is_replaced_whole(tmp_path, labels):
    path = tmp_path / "l.ome.zarr"
    write_label_ome_zarr(path, labels, top_size=16)
    write_label_ome_zarr(path, labels[:20, :20, :20], top_size=16)
    _, levels, _ = read_back(path)
    assert [lv.shape for lv in levels] == [(20, 20, 20), (10, 10, 10)]
    assert [p.name for p in tmp_path.iterdir()] == ["l.ome.zarr"]


def test_a_failing_write_leaves_nothing_behind(tmp_path, labels):
    class Breaks:
        shape, dtype, ndim = labels.shape, labels.dtype, 3

        def __getitem__(self, key):
            if key[0].start >= 64:
                raise OSError("disk gone")
            return labels[key]

    with pytest.raises(OSError, match="disk gone"):
        write_label_ome_zarr(tmp_path / "l.ome.zarr", Breaks(), top_size=16)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("labels", "spacing", "match"),
    [
        (np.zeros((4, 4), np.uint16), None, "3D"),
        (np.zeros((4, 4, 4), np.float32), None, "integers, got dtype float32"),
        (np.zeros((4, 4, 4), np.uint16), (1.0, 0.0, 1.0), "three positive numbers"),
    ],
)
def test_bad_labels_or_spacing_are_refused_naming_the_file(tmp_path, labels, spacing, match):
    with pytest.raises(ValueError, match=match) as info:
        write_label_ome_zarr(tmp_path / "bad.ome.zarr", labels, spacing)
    assert "bad.ome.zarr" in str(info.value)
    assert not (tmp_path / "bad.ome.zarr").exists()


def test_units_take_their_ngff_names_and_unknown_ones_are_left_out():
    assert ngff_unit("µm") == "micrometer"
    assert ngff_unit("mm") == "millimeter"
    assert ngff_unit("micrometer") == "micrometer"
    assert ngff_unit("px") is None
    assert ngff_unit("furlong") is None
    assert ngff_unit(None) is None


def test_pyramid_halves_rounding_up_until_the_top_fits():
    assert pyramid_shapes((1000, 1256, 1256)) == [
        (1000, 1256, 1256),
        (500, 628, 628),
        (250, 314, 314),
        (125, 157, 157),
    ]
    assert pyramid_shapes((5, 5, 5), top_size=256) == [(5, 5, 5)]
    with pytest.raises(ValueError, match="top_size"):
        pyramid_shapes((5, 5, 5), top_size=0)

import json

import numpy as np
import pytest
from annotation_helpers import balls, two_phase

from particleseg.annotation import estimate_particle_size_px, save_sample
from particleseg.io import load_dataset, read_metadata, read_sample, validate_dataset


@pytest.fixture
def volume():
    labels = balls((16, 24, 24), [(8, 8, 8), (8, 16, 16)], [4, 5])
    labels[labels == 2] = 7  # non-consecutive ids are renumbered
    image = (two_phase(labels) * 1000 + 5000).astype(np.uint16)
    return image, labels


def test_saved_sample_loads_back(tmp_path, volume):
    image, labels = volume
    entry = save_sample(
        tmp_path / "ds",
        "scan-1",
        image,
        labels,
        spacing=(0.01, 0.01, 0.01),
        particle_size=0.09,
        split="train",
    )
    assert entry.name == "scan-1" and entry.split == "train" and entry.group == "scan-1"
    ds = validate_dataset(tmp_path / "ds", check_arrays=True)
    assert ds.name == "ds" and ds.names() == ["scan-1"]
    img, lab = read_sample(ds.sample("scan-1"))
    np.testing.assert_array_equal(np.asarray(img), image)
    assert lab.dtype == np.uint32
    assert set(np.unique(np.asarray(lab))) == {0, 1, 2}
    np.testing.assert_array_equal(np.asarray(lab) > 0, labels > 0)
    meta = read_metadata(tmp_path / "ds" / "images" / "scan-1.tif")
    assert meta.spacing == (0.01, 0.01, 0.01) and meta.particle_size == 0.09


def test_second_sample_is_added_and_same_name_replaced(tmp_path, volume):
    image, labels = volume
    root = tmp_path / "ds"
    save_sample(
        root, "a", image, labels, spacing=(1, 1, 1), particle_size_px=9.0, dataset_name="mine"
    )
    doc = json.loads((root / "dataset.json").read_text())
    doc["description"] = "kept"
    (root / "dataset.json").write_text(json.dumps(doc))
    save_sample(
        root,
        "b",
        image,
        labels,
        spacing=(1, 1, 1),
        particle_size_px=9.0,
        split="id_test",
        group="g",
    )
    save_sample(root, "a", image, labels, spacing=(2, 2, 2), particle_size_px=5.0)
    ds = load_dataset(root)
    assert ds.name == "mine" and ds.description == "kept"
    assert ds.names() == ["b", "a"]
    assert ds.sample("a").metadata.spacing == (2.0, 2.0, 2.0)
    assert ds.sample("b").split == "id_test" and ds.sample("b").group == "g"


def test_bad_input_is_refused_before_anything_is_written(tmp_path, volume):
    image, labels = volume
    root = tmp_path / "ds"
    with pytest.raises(ValueError, match="particle size"):
        save_sample(root, "a", image, labels, spacing=(1, 1, 1))
    with pytest.raises(ValueError, match="split"):
        save_sample(root, "a", image, labels, spacing=(1, 1, 1), particle_size=1, split="valid")
    with pytest.raises(ValueError, match="sample name"):
        save_sample(root, "../a", image, labels, spacing=(1, 1, 1), particle_size=1)
    with pytest.raises(ValueError, match="shape mismatch"):
        save_sample(root, "a", image, labels[:-1], spacing=(1, 1, 1), particle_size=1)
    assert not root.exists()


def test_estimate_particle_size():
    labels = balls((30, 30, 30), [(15, 15, 15)], [10])
    assert abs(estimate_particle_size_px(labels) - 20) < 1
    with pytest.raises(ValueError, match="no particle"):
        estimate_particle_size_px(np.zeros((4, 4, 4), np.uint32))

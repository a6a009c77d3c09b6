import cc3d
import numpy as np
import pytest

from particleseg.io import load_dataset, read_sample
from particleseg.synth import packed_ellipsoids
from particleseg.synth.demo import build_demo_dataset


@pytest.mark.parametrize("mode", ["touching", "painted"])
def test_packed_ellipsoids_labels_are_connected_consecutive_and_seeded(mode):
    labels = packed_ellipsoids((48, 48, 48), 40, (4, 8), mode=mode, seed=2)
    assert labels.dtype == np.uint32
    n = int(labels.max())
    assert 20 <= n <= 40
    assert np.array_equal(np.unique(labels), np.arange(n + 1))
    pieces = cc3d.connected_components(labels, connectivity=6)
    assert int(pieces.max()) == n, "every label must be one 6-connected piece"
    np.testing.assert_array_equal(
        labels, packed_ellipsoids((48, 48, 48), 40, (4, 8), mode=mode, seed=2)
    )


def test_touching_mode_has_most_particles_touching():
    labels = packed_ellipsoids((64, 64, 64), 60, (5, 10), seed=4)
    # particles sharing a face: pairs of different non-zero labels 6-adjacent
    touching = set()
    for axis in range(3):
        a = np.moveaxis(labels, axis, 0)
        x, y = a[:-1].ravel(), a[1:].ravel()
        m = (x > 0) & (y > 0) & (x != y)
        touching |= set(x[m].tolist()) | set(y[m].tolist())
    assert len(touching) / labels.max() > 0.5


def test_demo_dataset_is_valid(tmp_path):
    build_demo_dataset(tmp_path, size=24, seed=0)
    dataset = load_dataset(tmp_path)
    assert {e.split for e in dataset.samples} == {"train", "id_test", "ood_test"}
    image, labels = read_sample(dataset.samples[0])
    assert image.dtype == np.uint16 and labels.dtype == np.uint32
    assert image.shape == labels.shape == (24, 24, 24)
    with pytest.raises(ValueError, match="already"):
        build_demo_dataset(tmp_path, size=24)

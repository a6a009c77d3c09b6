import cc3d
import numpy as np
import pytest

from particleseg.synth import packed_ellipsoids


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

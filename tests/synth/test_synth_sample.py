import numpy as np

from particleseg.io import read_metadata, read_volume
from particleseg.synth.sample import bundled_sample


def test_bundled_sample_is_generated_once_and_deterministic(tmp_path):
    shape = (24, 64, 64)
    first = bundled_sample(tmp_path / "a", shape=shape)
    mtime = first.stat().st_mtime_ns
    assert bundled_sample(tmp_path / "a", shape=shape).stat().st_mtime_ns == mtime
    other = bundled_sample(tmp_path / "b", shape=shape)
    np.testing.assert_array_equal(np.asarray(read_volume(first)), np.asarray(read_volume(other)))
    image = read_volume(first)
    assert image.shape == shape and image.dtype == np.uint16
    meta = read_metadata(first)
    assert meta.spacing == (0.01, 0.01, 0.01) and meta.particle_size > 0
    labels = np.asarray(read_volume(first.parent / "labels.tif"))
    assert labels.max() > 0 and labels.shape == shape
    assert not any(p.name.startswith(".") for p in first.parent.parent.iterdir())

"""particle_properties_chunked gives the in-memory table for zarr, numpy and dask inputs."""

import dask.array as da
import numpy as np
import pytest
import zarr
from scipy import ndimage as ndi

from particleseg.analysis import particle_properties, particle_properties_chunked
from particleseg.analysis.chunked import _geometry_plan

INTENSITY = ("intensity_min", "intensity_mean", "intensity_max", "intensity_std")


@pytest.fixture(scope="module")
def volume():
    """Many blobs of all sizes (ids spread out, not consecutive) and a float image."""
    rng = np.random.default_rng(7)
    smooth = ndi.gaussian_filter(rng.random((40, 44, 48)), 1.5)
    labels, n = ndi.label(smooth > 0.53)
    ids = rng.permutation(np.arange(1, n + 1)) * 37 + 1000
    labels = np.concatenate([[0], ids])[labels].astype(np.uint32)
    labels[5:9, 5:9, 5:9] = 5  # a box
    labels[20, 30, 30] = 3  # a single voxel
    image = (smooth * 1000 + rng.normal(0, 20, smooth.shape)).astype(np.float32)
    return labels, image


def assert_same(a, b):
    assert list(a) == list(b)
    assert np.array_equal(a["id"], b["id"])
    for name in a:
        if name in INTENSITY:  # float sums in another order
            np.testing.assert_allclose(a[name], b[name], rtol=1e-12, atol=1e-9)
        else:  # integer-exact statistics, identical crops
            assert np.array_equal(a[name], b[name]), name


def test_volume_has_particles_crossing_blocks(volume):
    labels, _ = volume
    table = particle_properties(labels)
    lo = np.stack([table["bbox_z0"], table["bbox_y0"], table["bbox_x0"]], 1)
    hi = np.stack([table["bbox_z1"], table["bbox_y1"], table["bbox_x1"]], 1)
    crossing = ((lo // 16) != ((hi - 1) // 16)).any(axis=1)
    assert len(table["id"]) > 80 and crossing.sum() > 25


@pytest.mark.parametrize("scheduler", ["threads", "synchronous"])
def test_numpy_blocks_equal_in_memory(volume, scheduler):
    labels, image = volume
    expected = particle_properties(labels, image, spacing=(1.5, 1.0, 0.75))
    got = particle_properties_chunked(
        labels, image, spacing=(1.5, 1.0, 0.75), block_shape=(16, 16, 16), scheduler=scheduler
    )
    assert_same(expected, got)


def test_zarr_with_processes_equals_in_memory(volume, tmp_path):
    labels, image = volume
    zl = zarr.create_array(
        tmp_path / "l.zarr", shape=labels.shape, chunks=(8, 8, 8), dtype=labels.dtype
    )
    zl[:] = labels
    zi = zarr.create_array(
        tmp_path / "i.zarr", shape=image.shape, chunks=(8, 8, 8), dtype=image.dtype
    )
    zi[:] = image
    expected = particle_properties(labels, image, hist_bins=5)
    got = particle_properties_chunked(
        zl, zi, block_shape=(16, 16, 16), scheduler="processes", num_workers=2, hist_bins=5
    )
    assert_same(expected, got)


def test_dask_input_and_odd_blocks(volume):
    labels, image = volume
    expected = particle_properties(labels, image, hist_range=(100.0, 900.0))
    got = particle_properties_chunked(
        da.from_array(labels, chunks=(10, 11, 12)),
        da.from_array(image, chunks=(10, 11, 12)),
        block_shape=(13, 7, 29),
        scheduler="threads",
        hist_range=(100.0, 900.0),
    )
    assert_same(expected, got)


def test_without_image_and_with_big_particles():
    # A particle longer than a block gets a task of its own.
    labels = np.zeros((30, 30, 30), np.uint16)
    labels[2:28, 3:6, 3:6] = 9
    labels[10:14, 10:25, 20:24] = 4
    labels[20:22, 20:22, 0:2] = 1
    expected = particle_properties(labels)
    got = particle_properties_chunked(labels, block_shape=(8, 8, 8), scheduler="synchronous")
    assert_same(expected, got)
    plan = _geometry_plan(
        {"lo": np.array([[2, 3, 3], [0, 0, 0]]), "hi": np.array([[28, 6, 6], [3, 3, 3]])},
        (8, 8, 8),
    )
    assert sorted(len(rows) for _, rows in plan) == [1, 1]


def test_empty_volume():
    got = particle_properties_chunked(
        np.zeros((9, 9, 9), np.uint8), block_shape=(4, 4, 4), scheduler="synchronous"
    )
    assert all(len(v) == 0 for v in got.values())


def test_bad_input_raises():
    with pytest.raises(ValueError, match="3D"):
        particle_properties_chunked(np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match="block_shape"):
        particle_properties_chunked(np.zeros((4, 4, 4), np.uint8), block_shape=(4, 0, 4))
    with pytest.raises(ValueError, match="does not match"):
        particle_properties_chunked(np.zeros((4, 4, 4), np.uint8), np.zeros((4, 4, 3)))
    with pytest.raises(ValueError, match=">= 0"):
        particle_properties_chunked(np.full((4, 4, 4), -2, np.int8), scheduler="synchronous")

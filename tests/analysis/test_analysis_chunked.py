"""particle_properties_chunked gives the in-memory table for zarr, numpy and dask inputs."""

import tracemalloc

import dask.array as da
import numpy as np
import pytest
import zarr
from scipy import ndimage as ndi

from particleseg.analysis import particle_properties, particle_properties_chunked
from particleseg.analysis.chunked import _geometry_plan, _geometry_task, _Source, geometry_stride
from particleseg.io import _slabs as slabs

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
    assert sorted(len(rows) for _, rows, _ in plan) == [1, 1]
    assert [stride for *_, stride in plan] == [1, 1]


def test_geometry_stride_is_the_smallest_that_fits():
    assert geometry_stride((256, 256, 256), 2**24) == 1
    assert geometry_stride((257, 256, 256), 2**24) == 2
    assert geometry_stride((1000, 1256, 1256), 2**24) == 5  # 200 x 252 x 252 <= 2^24
    assert geometry_stride((10, 10, 10), 1) == 10


def test_a_particle_spanning_the_scan_is_measured_strided_in_bounded_memory(caplog, monkeypatch):
    """A "particle" as large as the scan (the matrix, a merged mass) must not make the geometry
    task read its whole box: above geometry_max_voxels it is measured on every s-th voxel, slab
    by slab, and approximates the exact values; every other particle stays exact."""
    n = 96
    labels = np.zeros((n, n, n), np.uint32)
    zz, yy, xx = np.mgrid[:n, :n, :n]
    labels[(zz - 47.5) ** 2 + (yy - 47.5) ** 2 + (xx - 47.5) ** 2 < 45**2] = 7  # 90-voxel ball
    labels[2:6, 2:6, 2:6] = 3  # a small particle in a corner: exact
    exact = particle_properties(labels)
    warnings = []  # what predict copies into summary.json
    with caplog.at_level("WARNING", logger="particleseg.analysis.chunked"):
        got = particle_properties_chunked(
            labels,
            block_shape=(32, 32, 32),
            scheduler="synchronous",
            geometry_max_voxels=24**3,
            warnings=warnings,
        )
    assert "1 particle(s) with boxes above 13824 voxels" in caplog.text and "(7, 4)" in caplog.text
    assert len(warnings) == 1 and warnings[0] in caplog.text
    # the ball's task alone, traced: strided, its peak stays flat when the ball is 8x larger
    # (the stride doubles), where the unstrided task reads and masks the whole box
    monkeypatch.setattr(slabs, "SLAB_BYTES", 100_000)
    peaks = {}
    for size in (96, 192):
        g = np.mgrid[:size, :size, :size]
        ball = (((g - (size - 1) / 2) ** 2).sum(0) < (size * 0.47) ** 2).astype(np.uint32)
        lo, hi = np.zeros((1, 3), int), np.full((1, 3), size)
        for stride in (1, geometry_stride(hi[0], 24**3)):
            tracemalloc.start()
            _geometry_task(
                _Source(ball), (slice(0, size),) * 3, [0], [1], lo, hi, (1.0,) * 3, stride
            )
            peaks[size, stride] = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
    assert peaks[192, 8] < 1.3 * peaks[96, 4] and peaks[192, 1] > 6 * peaks[96, 1], peaks
    assert peaks[192, 8] < peaks[192, 1] / 20, peaks
    big, small = (list(got["id"]).index(i) for i in (7, 3))
    for name in ("volume", "equivalent_diameter", "bbox_z1"):  # block statistics: exact
        np.testing.assert_array_equal(got[name], exact[name])
    for name in ("feret_max", "feret_min", "convex_volume", "surface_area"):
        assert got[name][small] == exact[name][small]
        assert abs(got[name][big] / exact[name][big] - 1) < 0.12, name


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

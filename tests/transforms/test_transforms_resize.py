import math

import numpy as np
import pytest
import scipy.ndimage as ndi

from particleseg.transforms.resize import (
    resize_image,
    resize_image_region,
    resize_labels,
    resized_shape,
    source_box,
    zoom_factors,
)


def _ids(labels):
    ids = np.unique(labels)
    return ids[ids != 0]


# --- zoom_factors / resized_shape -------------------------------------------------------------


def test_zoom_factors_scalar_and_anisotropic():
    assert zoom_factors(40.0, 20.0) == (0.5, 0.5, 0.5)
    assert zoom_factors(10, 20) == (2.0, 2.0, 2.0)
    assert zoom_factors([10.0, 20.0, 40.0], 20.0) == (2.0, 1.0, 0.5)
    assert zoom_factors(np.array([5.0, 10.0, 10.0]), 10) == (2.0, 1.0, 1.0)


@pytest.mark.parametrize(
    ("size", "target"),
    [
        (0.0, 20.0),
        (-1.0, 20.0),
        (math.nan, 20.0),
        (math.inf, 20.0),
        (10.0, 0.0),
        (10.0, math.nan),
        ([10.0, 10.0], 20.0),
        ([10.0, 0.0, 10.0], 20.0),
        ([[10.0, 10.0, 10.0]], 20.0),
    ],
)
def test_zoom_factors_errors(size, target):
    with pytest.raises(ValueError):
        zoom_factors(size, target)


def test_resized_shape():
    assert resized_shape((100, 200, 300), 0.5) == (50, 100, 150)
    assert resized_shape((10, 10, 10), (2.0, 1.0, 0.26)) == (20, 10, 3)
    assert resized_shape((3, 1, 7), 0.01) == (1, 1, 1)  # never 0
    assert resized_shape((10, 20, 40), zoom_factors([10.0, 20.0, 40.0], 20.0)) == (20, 20, 20)


@pytest.mark.parametrize(
    ("shape", "zoom"),
    [((10, 10), 1.0), ((10, 10, 10, 1), 1.0), ((10, -1, 10), 1.0), ((10, 10, 10), 0.0),
     ((10, 10, 10), (1.0, 1.0)), ((10, 10, 10), (1.0, math.nan, 1.0)), ((10.5, 10, 10), 1.0)],
)  # fmt: skip
def test_resized_shape_errors(shape, zoom):
    with pytest.raises(ValueError):
        resized_shape(shape, zoom)


# --- resize_image ------------------------------------------------------------------------------


def test_resize_image_ramp_stays_ramp():
    z, y, x = np.meshgrid(np.arange(8), np.arange(10), np.arange(12), indexing="ij")
    ramp = (3.0 * z + 2.0 * y + 0.5 * x).astype(np.float32)
    out_shape = (16, 15, 7)
    out = resize_image(ramp, out_shape)
    assert out.dtype == np.float32
    assert out.shape == out_shape
    zoom = [o / i for o, i in zip(out_shape, ramp.shape, strict=True)]
    reference = ndi.zoom(ramp, zoom, order=1, grid_mode=True, mode="nearest")
    np.testing.assert_allclose(out, reference, atol=1e-4)
    # Interior: the analytic ramp at the sample positions (i + 0.5) * in / out - 0.5.
    pos = [(np.arange(o) + 0.5) * i / o - 0.5 for o, i in zip(out_shape, ramp.shape, strict=True)]
    pz, py, px = np.meshgrid(*pos, indexing="ij")
    analytic = 3.0 * pz + 2.0 * py + 0.5 * px
    interior = (slice(1, -1),) * 3
    np.testing.assert_allclose(out[interior], analytic[interior], atol=1e-4)


def test_resize_image_matches_scipy_on_noise():
    image = np.random.default_rng(0).random((6, 9, 5)).astype(np.float32)
    for out_shape in [(12, 4, 5), (3, 9, 11)]:
        zoom = [o / i for o, i in zip(out_shape, image.shape, strict=True)]
        reference = ndi.zoom(image, zoom, order=1, grid_mode=True, mode="nearest")
        np.testing.assert_allclose(resize_image(image, out_shape), reference, atol=1e-5)


def test_resize_image_uint16_keeps_value_range():
    rng = np.random.default_rng(1)
    image = rng.integers(1000, 60000, size=(6, 7, 8), dtype=np.uint16)
    out = resize_image(image, (11, 5, 16))
    assert out.dtype == np.float32
    assert out.shape == (11, 5, 16)
    assert out.min() >= image.min() - 1e-2
    assert out.max() <= image.max() + 1e-2
    assert out.max() > 30000  # not rescaled to [0, 1]
    constant = resize_image(np.full((3, 4, 5), 5000, np.uint16), (6, 2, 9))
    np.testing.assert_allclose(constant, 5000.0)


def test_resize_image_same_shape_is_float32_copy():
    image = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    out = resize_image(image, (2, 3, 4))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, image)
    assert not np.shares_memory(out, image)
    out16 = resize_image(image.astype(np.uint16), [2, 3, 4])
    assert out16.dtype == np.float32
    np.testing.assert_array_equal(out16, image)


@pytest.mark.parametrize("func", [resize_image, resize_labels])
@pytest.mark.parametrize("out_shape", [(2, 3), (2, 3, 0), (2, 3, -1), (2.0, 3, 4), 5, (1, 2, 3, 4)])
def test_bad_out_shape(func, out_shape):
    with pytest.raises(ValueError, match=r"out_shape.*\(2, 3, 4\)"):
        func(np.ones((2, 3, 4), np.uint16), out_shape)


def test_resize_image_bad_input():
    with pytest.raises(ValueError, match="3D"):
        resize_image(np.zeros((3, 4)), (3, 4, 1))
    with pytest.raises(ValueError, match="dtype"):
        resize_image(np.zeros((3, 4, 5), np.complex64), (3, 4, 1))


# --- resize_labels -----------------------------------------------------------------------------


def test_resize_labels_upsample_by_two_is_repeat():
    labels = np.random.default_rng(2).integers(0, 50, size=(4, 5, 6)).astype(np.uint16)
    out = resize_labels(labels, (8, 10, 12))
    expected = labels.repeat(2, axis=0).repeat(2, axis=1).repeat(2, axis=2)
    assert out.dtype == np.uint32
    np.testing.assert_array_equal(out, expected)


def test_resize_labels_upsample_one_axis_by_three_is_repeat():
    labels = np.random.default_rng(3).integers(0, 9, size=(6, 4, 8)).astype(np.int32)
    out = resize_labels(labels, (6, 12, 8))
    np.testing.assert_array_equal(out, labels.repeat(3, axis=1))


def test_resize_labels_downsample_keeps_tiny_particles():
    rng = np.random.default_rng(4)
    labels = np.zeros((24, 28, 32), np.uint32)
    # 1-voxel particles on a jittered grid (some share a 4x4x4 block) plus one big particle.
    zz, yy, xx = np.meshgrid(
        np.arange(0, 24, 5), np.arange(0, 28, 5), np.arange(0, 32, 5), indexing="ij"
    )
    coords = np.stack([zz.ravel(), yy.ravel(), xx.ravel()], axis=1)
    coords = coords + rng.integers(0, 2, size=coords.shape)
    ids = rng.permutation(np.arange(1, coords.shape[0] + 1)).astype(np.uint32)
    labels[tuple(coords.T)] = ids
    big_id = ids.max() + 1
    labels[8:20, 8:20, 8:20] = big_id
    out = resize_labels(labels, (6, 7, 8))
    assert out.dtype == np.uint32
    assert out.shape == (6, 7, 8)
    np.testing.assert_array_equal(_ids(out), _ids(labels))
    assert len(_ids(labels)) > 150
    # Background is near everywhere, so restored particles never overwrite the big one.
    assert (out == big_id).sum() == 27


def test_resize_labels_no_background_left_overwrites_big_particles_only():
    labels = np.full((8, 8, 8), 7, np.uint8)
    labels[1, 1, 1] = 3
    labels[1, 1, 2] = 4
    labels[5, 6, 1] = 5
    out = resize_labels(labels, (2, 2, 2))
    np.testing.assert_array_equal(_ids(out), [3, 4, 5, 7])
    assert (out == 7).sum() == 5


def test_resize_labels_dense_to_exact_capacity():
    labels = np.arange(1, 4 * 4 * 4 + 1, dtype=np.uint32).reshape(4, 4, 4)
    out = resize_labels(labels, (1, 4, 16))  # 64 particles into 64 voxels
    np.testing.assert_array_equal(np.sort(out.ravel()), labels.ravel())
    with pytest.raises(ValueError, match="64 particles"):
        resize_labels(labels, (1, 3, 21))


def test_resize_labels_large_ids_survive_exactly():
    rng = np.random.default_rng(5)
    labels = np.zeros((8, 12, 12), np.uint64)
    big = np.array(
        [2**24 + 1, 2**24 + 2, 2**24 + 3, 2**31 + 7, 2**32 - 1, 2**32 - 2], dtype=np.uint64
    )
    labels[2:6, 2:6, 2:6] = big[0]
    labels[2:6, 6:10, 2:6] = big[1]  # touching big[0]: must stay distinct
    labels[0, 0, 0] = big[2]
    labels[7, 11, 11] = big[3]
    labels[5, 1, 10] = big[4]
    labels[3, 10, 9] = big[5]
    labels[6, 6, 6] = rng.integers(2**25, 2**32 - 3, dtype=np.uint64)
    up = resize_labels(labels, (16, 24, 24))
    assert up.dtype == np.uint32
    np.testing.assert_array_equal(up, labels.repeat(2, 0).repeat(2, 1).repeat(2, 2))
    down = resize_labels(labels, (3, 4, 5))
    np.testing.assert_array_equal(_ids(down), _ids(labels))


def test_resize_labels_same_shape_and_memmap(tmp_path):
    labels = np.random.default_rng(6).integers(0, 5, size=(3, 4, 5)).astype(np.uint16)
    np.save(tmp_path / "labels.npy", labels)
    memmap = np.load(tmp_path / "labels.npy", mmap_mode="r")
    out = resize_labels(memmap, (3, 4, 5))
    assert out.dtype == np.uint32
    np.testing.assert_array_equal(out, labels)
    down = resize_labels(memmap, (2, 2, 3))
    np.testing.assert_array_equal(_ids(down), _ids(labels))


def test_resize_labels_anisotropic_zoom():
    labels = np.zeros((10, 20, 40), np.uint32)
    labels[2:8, 4:16, 8:32] = 1
    labels[0, 0, 39] = 2
    out_shape = resized_shape(labels.shape, zoom_factors([5.0, 10.0, 20.0], 10.0))
    assert out_shape == (20, 20, 20)
    out = resize_labels(labels, out_shape)
    np.testing.assert_array_equal(_ids(out), [1, 2])
    np.testing.assert_array_equal(np.argwhere(out == 1).min(axis=0), [4, 4, 4])
    np.testing.assert_array_equal(np.argwhere(out == 1).max(axis=0), [15, 15, 15])


@pytest.mark.parametrize(
    ("labels", "match"),
    [
        (np.zeros((3, 4), np.uint32), "3D"),
        (np.zeros((3, 4, 5), np.float32), "integer"),
        (np.full((3, 4, 5), -1, np.int16), "non-negative"),
        (np.full((3, 4, 5), 2**32, np.uint64), "uint32"),
    ],
)
def test_resize_labels_bad_input(labels, match):
    with pytest.raises(ValueError, match=match):
        resize_labels(labels, (2, 2, 2))


# --- resize_image_region / source_box ----------------------------------------------------------


class RecordingArray:
    """Wraps an array and records every index it is sliced with."""

    def __init__(self, array):
        self.array = array
        self.shape = array.shape
        self.dtype = array.dtype
        self.requests = []

    def __getitem__(self, index):
        self.requests.append(index)
        return self.array[index]


def _random_region(rng, out_shape):
    start = [int(rng.integers(0, n)) for n in out_shape]
    stop = [int(rng.integers(a + 1, n + 1)) for a, n in zip(start, out_shape, strict=True)]
    return start, stop


SHAPE_PAIRS = [
    ((7, 19, 64), (19, 7, 24)),  # up, down, down
    ((19, 7, 24), (7, 19, 64)),  # down, up, up
    ((5, 5, 5), (5, 5, 5)),  # unchanged: a float32 copy of the box
    ((5, 6, 7), (5, 13, 3)),  # one axis unchanged
    ((1, 4, 9), (3, 1, 9)),  # length-1 axes
]


@pytest.mark.parametrize(("in_shape", "out_shape"), SHAPE_PAIRS)
def test_resize_image_region_matches_resize_image(in_shape, out_shape):
    rng = np.random.default_rng(sum(in_shape) + sum(out_shape))
    image = (rng.normal(size=in_shape) * 100).astype(np.float32)
    full = resize_image(image, out_shape)
    tol = 1e-5 * np.abs(image).max()
    whole = resize_image_region(image, out_shape, (0, 0, 0), out_shape)
    assert whole.dtype == np.float32
    np.testing.assert_allclose(whole, full, rtol=0, atol=tol)
    for _ in range(15):
        start, stop = _random_region(rng, out_shape)
        region = resize_image_region(image, out_shape, start, stop)
        box = tuple(slice(a, b) for a, b in zip(start, stop, strict=True))
        assert region.dtype == np.float32
        assert region.shape == tuple(b - a for a, b in zip(start, stop, strict=True))
        np.testing.assert_allclose(region, full[box], rtol=0, atol=tol)
        np.testing.assert_array_equal(region, whole[box])  # tiles are exact


@pytest.mark.parametrize(("n_in", "n_out"), [(7, 19), (19, 7), (64, 24), (5, 5), (24, 64), (1, 4)])
def test_resize_image_region_odd_sizes_per_axis(n_in, n_out):
    rng = np.random.default_rng(n_in * 100 + n_out)
    for axis in range(3):
        in_shape, out_shape = [2, 3, 4], [2, 3, 4]
        in_shape[axis], out_shape[axis] = n_in, n_out
        image = rng.integers(0, 4000, size=in_shape).astype(np.uint16)
        full = resize_image(image, out_shape)
        region = resize_image_region(image, out_shape, (0, 0, 0), out_shape)
        np.testing.assert_allclose(region, full, rtol=0, atol=1e-5 * 4000)


def test_resize_image_region_same_shape_is_copy_of_box():
    image = np.arange(60, dtype=np.float32).reshape(3, 4, 5)
    region = resize_image_region(image, (3, 4, 5), (1, 0, 2), (3, 3, 5))
    np.testing.assert_array_equal(region, image[1:3, 0:3, 2:5])
    assert not np.shares_memory(region, image)
    region16 = resize_image_region(image.astype(np.uint16), (3, 4, 5), (0, 1, 1), (2, 2, 4))
    assert region16.dtype == np.float32
    np.testing.assert_array_equal(region16, image[0:2, 1:2, 1:4])


def test_resize_image_region_reads_only_the_source_box_of_a_zarr_array(tmp_path):
    zarr = pytest.importorskip("zarr")
    rng = np.random.default_rng(7)
    image = rng.integers(0, 60000, size=(20, 17, 23)).astype(np.uint16)
    stored = zarr.create_array(
        store=str(tmp_path / "image.zarr"), shape=image.shape, chunks=(8, 8, 8), dtype="uint16"
    )
    stored[...] = image
    out_shape = (9, 31, 14)
    full = resize_image(image, out_shape)
    for start, stop in [((0, 0, 0), (3, 5, 4)), ((4, 10, 6), (9, 31, 14)), ((2, 7, 3), (5, 8, 9))]:
        recorder = RecordingArray(stored)
        region = resize_image_region(recorder, out_shape, start, stop)
        box = tuple(slice(a, b) for a, b in zip(start, stop, strict=True))
        np.testing.assert_allclose(region, full[box], rtol=0, atol=1e-5 * 60000)
        src_start, src_stop = source_box(image.shape, out_shape, start, stop)
        expected = tuple(slice(a, b) for a, b in zip(src_start, src_stop, strict=True))
        assert recorder.requests == [expected]
        assert all(
            0 <= a < b <= n for a, b, n in zip(src_start, src_stop, image.shape, strict=True)
        )
        assert all((b - a) < n for a, b, n in zip(src_start, src_stop, image.shape, strict=True))


def test_source_box_is_the_smallest_box_that_matters():
    rng = np.random.default_rng(8)
    in_shape, out_shape = (11, 6, 9), (4, 13, 9)
    for _ in range(10):
        start, stop = _random_region(rng, out_shape)
        src_start, src_stop = source_box(in_shape, out_shape, start, stop)
        box = tuple(slice(a, b) for a, b in zip(start, stop, strict=True))
        # Voxels outside the box have no influence; each face plane of the box has some.
        image = np.zeros(in_shape, np.float32)
        inside = tuple(slice(a, b) for a, b in zip(src_start, src_stop, strict=True))
        image[inside] = 1.0
        image_out = np.full(in_shape, 1000.0, np.float32)
        image_out[inside] = 1.0
        np.testing.assert_array_equal(
            resize_image(image, out_shape)[box], resize_image(image_out, out_shape)[box]
        )
        for axis in range(3):
            for plane in (src_start[axis], src_stop[axis] - 1):
                probe = np.zeros(in_shape, np.float32)
                index = [slice(None)] * 3
                index[axis] = plane
                probe[tuple(index)] = 1.0
                assert resize_image(probe, out_shape)[box].max() > 0
    assert source_box(in_shape, in_shape, (1, 2, 3), (4, 5, 6)) == ((1, 2, 3), (4, 5, 6))


@pytest.mark.parametrize(
    ("start", "stop", "match"),
    [
        ((0, 0), (1, 1, 1), "start and stop"),
        ((0, 0, 0), (1, 1, 1, 1), "start and stop"),
        ((0, 0, -1), (1, 1, 1), "start and stop"),
        ((0, 0, 0), (1, 1, 10), r"out_shape \(4, 5, 6\)"),
        ((0, 2, 0), (1, 2, 1), r"\(3, 4, 5\)"),  # empty region
        ((0, 0, 0.0), (1, 1, 1), "start and stop"),
        ((0, 0, True), (1, 1, 2), "start and stop"),
    ],
)
def test_resize_image_region_bad_region(start, stop, match):
    image = np.ones((3, 4, 5), np.float32)
    with pytest.raises(ValueError, match=match):
        resize_image_region(image, (4, 5, 6), start, stop)
    with pytest.raises(ValueError, match=match):
        source_box(image.shape, (4, 5, 6), start, stop)


def test_resize_image_region_bad_input():
    with pytest.raises(ValueError, match="3D"):
        resize_image_region(np.zeros((3, 4)), (3, 4, 1), (0, 0, 0), (1, 1, 1))
    with pytest.raises(ValueError, match="dtype"):
        resize_image_region(np.zeros((3, 4, 5), np.complex64), (3, 4, 1), (0, 0, 0), (1, 1, 1))
    with pytest.raises(ValueError, match=r"out_shape.*\(3, 4, 5\)"):
        resize_image_region(np.zeros((3, 4, 5)), (3, 0, 1), (0, 0, 0), (1, 1, 1))
    with pytest.raises(ValueError, match="empty"):
        resize_image_region(np.zeros((3, 0, 5)), (3, 2, 1), (0, 0, 0), (1, 1, 1))
    with pytest.raises(ValueError, match="in_shape"):
        source_box((3, 0, 5), (3, 2, 1), (0, 0, 0), (1, 1, 1))

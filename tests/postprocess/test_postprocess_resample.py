import numpy as np
import pytest
import zarr

from particleseg.nearest_index import nearest_source_index
from particleseg.postprocess import resample_labels_chunked
from particleseg.transforms.resize import resize_labels


def brute_force(labels, out_shape):
    index = [nearest_source_index(n, m) for n, m in zip(labels.shape, out_shape, strict=True)]
    return labels[np.ix_(*index)]


def random_labels(seed, shape, dtype=np.uint32, n_ids=200):
    return np.random.default_rng(seed).integers(0, n_ids, size=shape).astype(dtype)


def zarr_array(tmp_path, name, shape, chunks, dtype):
    return zarr.create_array(
        store=str(tmp_path / f"{name}.zarr"), shape=shape, chunks=chunks, dtype=dtype
    )


def test_nearest_source_index_ranges_match_the_whole():
    for n_in, n_out in [(7, 19), (19, 7), (64, 24), (5, 5), (1, 4), (4, 1), (1000, 3)]:
        whole = nearest_source_index(n_in, n_out)
        assert whole.dtype == np.int64
        assert whole.shape == (n_out,)
        assert whole.min() >= 0
        assert whole.max() <= n_in - 1
        assert np.all(np.diff(whole) >= 0)
        # floor((i + 0.5) * in / out), the nearest-exact rule
        expected = np.floor((np.arange(n_out) + 0.5) * n_in / n_out).astype(np.int64)
        np.testing.assert_array_equal(whole, np.minimum(expected, n_in - 1))
        for start in range(n_out):
            for stop in (start, start + 1, n_out):
                np.testing.assert_array_equal(
                    nearest_source_index(n_in, n_out, start, stop), whole[start:stop]
                )
    np.testing.assert_array_equal(nearest_source_index(4, 8), np.arange(8) // 2)


@pytest.mark.parametrize(
    "args", [(0, 4), (4, 0), (4.0, 4), (4, 4, -1, 2), (4, 4, 3, 2), (4, 4, 0, 5), (4, 4, 0.5)]
)
def test_nearest_source_index_errors(args):
    with pytest.raises(ValueError):
        nearest_source_index(*args)


@pytest.mark.parametrize(
    ("in_shape", "out_shape"),
    [
        ((13, 17, 11), (29, 31, 23)),  # upsampling
        ((29, 31, 23), (13, 17, 11)),  # downsampling
        ((13, 31, 11), (29, 17, 11)),  # mixed, one axis unchanged
    ],
)
def test_resample_zarr_matches_brute_force(tmp_path, in_shape, out_shape):
    labels = random_labels(0, in_shape, np.uint16)
    source = zarr_array(tmp_path, "in", in_shape, (7, 8, 5), "uint16")
    source[...] = labels
    expected = brute_force(labels, out_shape)
    for dtype in ("uint16", "uint32"):
        out = zarr_array(tmp_path, f"out-{dtype}", out_shape, (5, 4, 6), dtype)
        # blocks: multiples of the output's chunks that do not divide the volume
        resample_labels_chunked(source, out, (10, 8, 12), num_workers=2)
        assert out.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(out[...], expected)
    # default blocks: the output's chunks
    out = zarr_array(tmp_path, "out-default", out_shape, (8, 8, 8), "uint16")
    resample_labels_chunked(labels, out, scheduler="synchronous")
    np.testing.assert_array_equal(out[...], expected)


def test_resample_numpy_and_memmap_any_block_shape(tmp_path):
    labels = random_labels(1, (16, 9, 21), np.int64, n_ids=2**31)
    np.save(tmp_path / "labels.npy", labels)
    memmap = np.load(tmp_path / "labels.npy", mmap_mode="r")
    for out_shape, block in [
        ((7, 20, 8), (3, 7, 5)),
        ((33, 4, 21), (7, 1, 8)),
        ((16, 9, 21), None),
    ]:
        expected = brute_force(labels, out_shape)
        out = np.zeros(out_shape, np.int64)
        resample_labels_chunked(memmap, out, block, scheduler="synchronous")
        np.testing.assert_array_equal(out, expected)
        out32 = np.zeros(out_shape, np.uint32)
        resample_labels_chunked(memmap, out32, block)
        np.testing.assert_array_equal(out32, expected)


def test_resample_reads_only_the_source_box_of_each_block():
    class Recorder:
        def __init__(self, array):
            self.array, self.shape, self.dtype = array, array.shape, array.dtype
            self.requests = []

        def __getitem__(self, index):
            self.requests.append(index)
            return self.array[index]

    labels = random_labels(2, (30, 12, 10), np.uint8)
    source = Recorder(labels)
    out = np.zeros((6, 24, 10), np.uint8)
    resample_labels_chunked(source, out, (2, 8, 10), scheduler="synchronous")
    np.testing.assert_array_equal(out, brute_force(labels, out.shape))
    assert len(source.requests) == 3 * 3
    for index in source.requests:
        z, y, x = index
        assert z.stop - z.start == 6  # two output planes 5 source planes apart
        assert y.stop - y.start == 4
        assert (x.start, x.stop) == (0, 10)


def test_resample_equals_resize_labels_when_nothing_vanishes(tmp_path):
    labels = random_labels(3, (9, 14, 6), np.uint32, n_ids=60)
    out_shape = (20, 31, 13)
    out = zarr_array(tmp_path, "out", out_shape, (6, 6, 6), "uint32")
    resample_labels_chunked(labels, out, (12, 12, 6))
    np.testing.assert_array_equal(out[...], resize_labels(labels, out_shape))


def test_resample_bool_and_empty_output():
    labels = np.random.default_rng(4).random((5, 6, 7)) > 0.5
    out = np.zeros((10, 3, 7), bool)
    resample_labels_chunked(labels, out)
    np.testing.assert_array_equal(out, brute_force(labels, out.shape))
    out32 = np.zeros((10, 3, 7), np.uint32)
    resample_labels_chunked(labels, out32)
    np.testing.assert_array_equal(out32, brute_force(labels, out.shape))
    resample_labels_chunked(labels, np.zeros((0, 3, 7), bool))  # nothing to write


@pytest.mark.parametrize(
    ("labels", "out", "match"),
    [
        (np.zeros((4, 5, 6), np.uint16), np.zeros((4, 5, 6), np.int32), "uint16 or uint32"),
        (np.zeros((4, 5, 6), np.uint32), np.zeros((4, 5, 6), np.uint64), "got uint64"),
        (np.zeros((4, 5, 6), np.uint16), np.zeros((4, 5, 6), np.float32), "integer"),
        (np.zeros((4, 5), np.uint32), np.zeros((4, 5, 6), np.uint32), "labels_in.*3D"),
        (np.zeros((4, 5, 6), np.uint32), np.zeros((4, 5), np.uint32), "labels_out.*3D"),
        (np.zeros((4, 5, 6), np.float32), np.zeros((4, 5, 6), np.uint32), "integer"),
        (np.zeros((4, 0, 6), np.uint32), np.zeros((4, 5, 6), np.uint32), "empty"),
        (np.full((4, 5, 6), -1, np.int16), np.zeros((2, 5, 6), np.uint32), r"\[0, 4294967295\]"),
        (np.full((4, 5, 6), 2**32, np.int64), np.zeros((2, 5, 6), np.uint32), "uint32"),
    ],
)
def test_resample_errors(labels, out, match):
    with pytest.raises(ValueError, match=match):
        resample_labels_chunked(labels, out, scheduler="synchronous")


def test_resample_block_shape_must_align_with_zarr_chunks(tmp_path):
    out = zarr_array(tmp_path, "out", (12, 12, 12), (4, 4, 4), "uint32")
    with pytest.raises(ValueError, match="multiple"):
        resample_labels_chunked(np.zeros((6, 6, 6), np.uint32), out, (6, 4, 4))

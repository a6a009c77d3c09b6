import math

import numpy as np
import pytest
import torch
import zarr

from particleseg.transforms.intensity import (
    IntensityStats,
    ZScore,
    ZScored,
    compute_intensity_stats,
    zscore,
)


def _images():
    rng = np.random.default_rng(0)
    return [
        rng.integers(4000, 6000, size=(7, 5, 6), dtype=np.uint16),
        rng.normal(100.0, 20.0, size=(11, 4, 3)).astype(np.float32),
        rng.integers(0, 60000, size=(3, 8, 2), dtype=np.uint16),
    ]


def _reference(images):
    flat = np.concatenate([np.asarray(im, np.float64).ravel() for im in images])
    return flat.mean(), flat.std(), flat.size


@pytest.mark.parametrize("slab", [1, 4, 5, 100])
def test_stats_equal_numpy_over_concatenation(slab):
    images = _images()
    stats = compute_intensity_stats(images, slab=slab)
    mean, std, n = _reference(images)
    assert stats.n_voxels == n
    assert stats.mean == pytest.approx(mean, rel=1e-12)
    assert stats.std == pytest.approx(std, rel=1e-12)


def test_stats_accepts_a_generator_memmap_and_zarr(tmp_path):
    images = _images()
    np.save(tmp_path / "a.npy", images[0])
    memmap = np.load(tmp_path / "a.npy", mmap_mode="r")
    assert isinstance(memmap, np.memmap)
    z = zarr.create_array(
        store=str(tmp_path / "b.zarr"), shape=images[1].shape, chunks=(2, 4, 3), dtype="float32"
    )
    z[:] = images[1]
    stats = compute_intensity_stats((im for im in [memmap, z, images[2]]), slab=3)
    mean, std, n = _reference(images)
    assert stats.n_voxels == n
    assert stats.mean == pytest.approx(mean, rel=1e-12)
    assert stats.std == pytest.approx(std, rel=1e-12)


def test_stats_large_offset_is_exact():
    # A naive sum of squares would lose the small variance under the large mean.
    image = (1e8 + np.arange(2 * 3 * 4, dtype=np.float64)).reshape(2, 3, 4)
    original = image.copy()
    stats = compute_intensity_stats([image], slab=1)
    np.testing.assert_array_equal(image, original)  # input not modified
    assert stats.mean == pytest.approx(image.mean(), rel=1e-15)
    assert stats.std == pytest.approx(image.std(), rel=1e-9)


@pytest.mark.parametrize(
    ("images", "match"),
    [
        ([], "no images"),
        ([np.full((3, 4, 5), 7, np.uint16), np.full((2, 2, 2), 7.0, np.float32)], "std is 0"),
        ([np.zeros((4, 5), np.float32)], "3D"),
        ([np.zeros((1, 4, 5, 2), np.float32)], "3D"),
        ([np.zeros((0, 4, 5), np.float32)], "no voxels"),
    ],
)
def test_stats_errors(images, match):
    with pytest.raises(ValueError, match=match):
        compute_intensity_stats(images)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_stats_non_finite(bad):
    image = np.arange(60, dtype=np.float32).reshape(3, 4, 5)
    image[2, 1, 1] = bad
    with pytest.raises(ValueError, match="non-finite"):
        compute_intensity_stats([image], slab=2)


def test_stats_bad_slab():
    with pytest.raises(ValueError, match="slab"):
        compute_intensity_stats(_images(), slab=0)


def test_stats_dict_round_trip_and_validation():
    stats = compute_intensity_stats(_images())
    d = stats.to_dict()
    assert set(d) == {"mean", "std", "n_voxels"}
    assert IntensityStats.from_dict(d) == stats
    with pytest.raises(ValueError, match="std"):
        IntensityStats.from_dict({**d, "std": 0.0})
    with pytest.raises(ValueError, match="std"):
        IntensityStats.from_dict({**d, "std": math.inf})
    with pytest.raises(ValueError, match="mean"):
        IntensityStats.from_dict({**d, "mean": math.nan})
    with pytest.raises(ValueError, match="missing"):
        IntensityStats.from_dict({"mean": 1.0})


def test_zscore_uint16_is_not_rescaled():
    rng = np.random.default_rng(1)
    image = rng.integers(4900, 5100, size=(4, 5, 6), dtype=np.uint16)
    mean, std = 5000.0, 50.0
    out = zscore(image, mean, std)
    assert out.dtype == np.float32
    assert out.shape == image.shape
    np.testing.assert_allclose(out, (image.astype(np.float64) - mean) / std, atol=1e-5)
    assert out.min() < -1.5 and out.max() > 1.5  # values in [0, 1] would mean a rescale


def test_zscore_of_stats_gives_zero_mean_unit_std():
    images = _images()
    stats = compute_intensity_stats(images)
    flat = np.concatenate([zscore(im, stats.mean, stats.std).ravel() for im in images])
    assert abs(float(flat.mean())) < 1e-5
    assert float(flat.std()) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize(("mean", "std"), [(0.0, 0.0), (0.0, -1.0), (np.nan, 1.0), (0.0, np.inf)])
def test_zscore_bad_parameters(mean, std):
    with pytest.raises(ValueError):
        zscore(np.zeros((2, 2, 2)), mean, std)
    with pytest.raises(ValueError):
        ZScored("image", mean, std)


def test_dict_transform_numpy_and_torch():
    rng = np.random.default_rng(2)
    image = rng.integers(4000, 6000, size=(1, 3, 4, 5), dtype=np.uint16)
    expected = (image.astype(np.float64) - 5000.0) / 400.0
    transform = ZScored(keys=["image"], mean=5000.0, std=400.0)
    labels = np.ones((1, 3, 4, 5), np.uint32)

    out = transform({"image": image, "label": labels})
    assert isinstance(out["image"], np.ndarray)
    assert out["image"].dtype == np.float32
    assert out["image"].shape == (1, 3, 4, 5)
    np.testing.assert_allclose(out["image"], expected, atol=1e-5)
    assert out["label"] is labels  # other keys untouched

    tensor = torch.from_numpy(image.astype(np.int32))
    out = transform({"image": tensor})
    assert isinstance(out["image"], torch.Tensor)
    assert out["image"].dtype == torch.float32
    assert tuple(out["image"].shape) == (1, 3, 4, 5)
    np.testing.assert_allclose(out["image"].numpy(), expected, atol=1e-5)
    assert tensor.dtype == torch.int32  # input not modified


def test_dict_transform_missing_key():
    with pytest.raises(KeyError):
        ZScored("image", 0.0, 1.0)({"other": np.zeros((1, 2, 2, 2))})
    out = ZScored("image", 0.0, 1.0, allow_missing_keys=True)({"other": 1})
    assert out == {"other": 1}


def test_array_transform_and_from_stats():
    stats = IntensityStats(mean=2.0, std=4.0, n_voxels=10)
    image = np.full((1, 2, 2, 2), 10, np.uint8)
    np.testing.assert_array_equal(ZScore.from_stats(stats)(image), np.full(image.shape, 2.0))
    out = ZScored.from_stats("x", stats)({"x": torch.full((1, 2, 2, 2), 6.0, dtype=torch.float64)})
    assert out["x"].dtype == torch.float32
    assert torch.equal(out["x"], torch.ones((1, 2, 2, 2)))


def test_stats_from_config_without_voxel_count():
    stats = IntensityStats.from_dict({"mean": 5850.3, "std": 7078.3})
    assert stats.n_voxels is None and stats.to_dict()["std"] == 7078.3
    with pytest.raises(ValueError, match="missing keys"):
        IntensityStats.from_dict({"mean": 1.0})

import numpy as np
import pytest

from particleseg.transforms.intensity import zscore
from particleseg.transforms.normalization import (
    MIN_SAMPLE_VOXELS,
    Normalization,
    fit_normalization,
    normalization_for_scan,
    resolve_config,
    sample_voxels,
    zscore_as_percentile,
)

PCT = {"scheme": "percentile", "lower": 0.01, "upper": 0.99, "n_blocks": 8, "block": 8}


def _scan(shape=(40, 48, 56), seed=0):
    """uint16: a darker matrix, brighter balls, Gaussian noise."""
    rng = np.random.default_rng(seed)
    grid = np.indices(shape).astype(np.float32)
    image = rng.normal(9000, 300, shape)
    for _ in range(12):
        c = rng.uniform(0, 1, 3) * np.array(shape)
        image[sum((g - ci) ** 2 for g, ci in zip(grid, c, strict=True)) < 36] += 8000
    return np.clip(image, 0, 65535).astype(np.uint16)


class _CountingArray:
    """A read-only array that records the voxels read through slicing."""

    def __init__(self, array):
        self.array, self.shape, self.dtype, self.voxels_read = array, array.shape, array.dtype, 0

    def __getitem__(self, key):
        out = self.array[key]
        self.voxels_read += out.size
        return out


@pytest.mark.parametrize(
    ("a", "b", "dtype"),
    [
        (1.0, 0.0, np.float32),
        (3.7, -1200.0, np.float32),
        (0.01, 5.0, np.float64),
        (0.5, 0, np.int32),
    ],
)
def test_affine_change_of_grey_values_gives_the_same_network_input(a, b, dtype):
    x = _scan()
    y = (a * x.astype(np.float64) + b).astype(dtype)
    nx, ny = normalization_for_scan(x, PCT), normalization_for_scan(y, PCT)
    # integer targets round a*x+b: allow one grey step of y in x's normalized units
    tol = 1e-4 if np.dtype(dtype).kind == "f" else 1.0 / (a * nx.scale) + 1e-4
    assert np.abs(nx(x) - ny(y)).max() <= tol


def test_percentile_levels_equal_numpy_quantiles_of_the_sample():
    x = _scan()
    values = sample_voxels(x, 8, 8)
    lo, hi = np.quantile(values.astype(np.float64), [0.01, 0.99])
    n = fit_normalization(values, PCT)
    assert n.offset == pytest.approx(lo) and n.offset + n.scale == pytest.approx(hi)
    assert n(np.array([lo, hi])) == pytest.approx([0.0, 1.0], abs=1e-6)


def test_values_map_the_two_levels_to_chosen_numbers():
    x = _scan()
    n = normalization_for_scan(x, {**PCT, "values": [-1.5, 2.0]})
    lo, hi = n.measured["low"], n.measured["high"]
    assert n(np.array([lo, hi])) == pytest.approx([-1.5, 2.0], abs=1e-5)


def test_sample_is_bounded_deterministic_and_never_the_whole_scan():
    x = _scan((64, 80, 96))
    counting = _CountingArray(x)
    values = sample_voxels(counting, n_blocks=16, block=8)
    assert counting.voxels_read == values.size <= 16 * 8**3 * 1.5
    assert values.size < x.size / 20
    assert np.array_equal(values, sample_voxels(x, n_blocks=16, block=8))


def test_sample_spreads_over_the_scan():
    x = np.zeros((64, 64, 64), np.uint16)
    x[:32] = 1  # the sample must see both halves
    values = sample_voxels(x, n_blocks=8, block=8)
    assert 0.3 < values.mean() < 0.7


class _Zeros:
    """An array of zeros of any shape, even one no memory could hold; counts the blocks read."""

    def __init__(self, shape):
        self.shape, self.dtype, self.blocks_read = shape, np.dtype(np.uint16), 0

    def __getitem__(self, key):
        self.blocks_read += 1
        return np.zeros([s.stop - s.start for s in key], self.dtype)


@pytest.mark.parametrize(
    "shape", [(64, 80, 96), (8732566, 6398216, 5634809), (3, 10**7, 10**7), (1, 1, 10**9)]
)
def test_the_sample_reads_about_n_blocks_blocks_whatever_the_shape(shape):
    # a header that claims 3e20 voxels (a corrupt or foreign file) once made np.prod wrap
    # around, and the grid of 64 blocks became one of 16,632; a thin scan got 599^2 cells
    scan = _Zeros(shape)
    values = sample_voxels(scan, n_blocks=64, block=4)
    assert 64 / 1.5 <= scan.blocks_read <= 64 * 1.5
    assert values.size <= scan.blocks_read * 4**3


def test_small_scan_is_read_whole():
    x = _scan((10, 12, 14))
    assert np.array_equal(np.sort(sample_voxels(x, 8, 8)), np.sort(x.ravel()))


def test_global_zscore_is_the_papers_normalization():
    x = _scan()
    n = normalization_for_scan(x, {"scheme": "global_zscore", "mean": 5000.0, "std": 2000.0})
    np.testing.assert_allclose(n(x), zscore(x, 5000.0, 2000.0), rtol=1e-6)
    assert n.measured == {}


def test_nan_voxels_are_left_out_of_the_levels_and_become_zero():
    x = _scan().astype(np.float32)
    x[:, :24] = np.nan  # half the scan: the sample sees it
    n = normalization_for_scan(x, PCT)
    assert n.measured["n_nonfinite"] > 0
    out = n(x)
    assert np.isfinite(out).all() and (out[:, :24] == 0).all()


def test_json_round_trip():
    n = normalization_for_scan(_scan(), PCT)
    m = Normalization.from_dict(n.to_dict())
    assert m == n


@pytest.mark.parametrize(
    ("scan", "message"),
    [
        (np.full((30, 30, 30), 7, np.uint16), "constant"),
        (np.full((30, 30, 30), np.nan, np.float32), "NaN"),
        (np.ones((4, 4, 4), np.float32), "too small"),
    ],
)
def test_bad_scans_get_a_clear_error(scan, message):
    with pytest.raises(ValueError, match=message):
        normalization_for_scan(scan, PCT)


def test_too_small_threshold_is_the_documented_one():
    x = np.arange(MIN_SAMPLE_VOXELS - 1, dtype=np.float32)
    with pytest.raises(ValueError, match=f"only {MIN_SAMPLE_VOXELS - 1} finite"):
        fit_normalization(x, PCT)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"scheme": "minmax"}, "scheme"),
        ({"scheme": "percentile", "lower": 0.9, "upper": 0.1}, "lower < upper"),
        ({"scheme": "percentile", "values": [1, 0]}, "values"),
        ({"scheme": "percentile", "n_blocks": 0}, "n_blocks"),
        ({"scheme": "percentile", "typo": 1}, "unknown keys"),
        ({"scheme": "global_zscore", "mean": 1.0}, "std"),
    ],
)
def test_bad_configs_name_the_key(config, message):
    with pytest.raises(ValueError, match=message):
        resolve_config(config)


def test_defaults_are_filled_in():
    cfg = resolve_config({"scheme": "percentile"})
    assert cfg["lower"] < cfg["upper"] and cfg["values"] == [0.0, 1.0]
    assert cfg["n_blocks"] >= 1 and cfg["block"] >= 1


def test_zscore_as_percentile_puts_a_training_scans_levels_where_the_zscore_put_them():
    """A model trained with a global z-score, given the per-scan scheme: on its training scan
    the levels land exactly where the z-score put them; a gain and offset change nothing."""
    scan = _scan()
    zs = {"scheme": "global_zscore", "mean": 11000.0, "std": 2500.0}
    cfg = zscore_as_percentile(zs, [scan], PCT)
    assert cfg["scheme"] == "percentile"
    norm = normalization_for_scan(scan, cfg)
    low, high = norm.measured["low"], norm.measured["high"]
    levels = np.array([low, high], np.float32)
    np.testing.assert_allclose(norm(levels), (levels - 11000.0) / 2500.0, rtol=1e-5, atol=1e-5)
    brighter = (2.0 * scan.astype(np.float32) + 500.0).astype(np.float32)
    np.testing.assert_allclose(
        normalization_for_scan(brighter, cfg)(brighter), norm(scan), rtol=1e-4, atol=1e-4
    )
    with pytest.raises(ValueError, match="global_zscore"):
        zscore_as_percentile(PCT, [scan])

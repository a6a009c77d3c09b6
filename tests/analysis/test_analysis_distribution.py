"""Size distributions (D-values, number vs volume weighting) and the particle CSV format."""

import numpy as np
import pytest

from particleseg.analysis.distribution import (
    column_unit,
    read_particles_csv,
    size_distribution,
    write_particles_csv,
)


def test_d50_of_known_sets():
    assert size_distribution([1, 2, 3, 4, 5, 6, 7, 8, 9]).d_number[50] == 5.0  # the median
    assert size_distribution([1.0, 3.0]).d_number[50] == 2.0  # between the two middle ones
    assert size_distribution([4.0] * 7).d_number[50] == 4.0
    rng = np.random.default_rng(0)
    d = rng.lognormal(3, 0.5, 501)
    dist = size_distribution(d)
    for p in (10, 50, 90):
        assert dist.d_number[p] == pytest.approx(np.percentile(d, p, method="hazen"), rel=1e-12)
    assert dist.d_number[50] == pytest.approx(np.median(d), rel=1e-12)


def test_number_versus_volume_weighting_by_hand():
    # Sizes 1, 2, 3 with volumes 1, 8, 27 (total 36).
    dist = size_distribution([3.0, 1.0, 2.0], [27.0, 1.0, 8.0])
    assert dist.count == 3
    np.testing.assert_allclose(dist.size, [1, 2, 3])
    np.testing.assert_allclose(dist.passing_number, [1 / 3, 2 / 3, 1])
    np.testing.assert_allclose(dist.passing_volume, [1 / 36, 9 / 36, 1])
    # Step midpoints: number 1/6, 1/2, 5/6; volume 0.5/36, 5/36, 22.5/36.
    assert dist.d_number[50] == pytest.approx(2.0)
    assert dist.d_number[10] == pytest.approx(1.0)  # below the first midpoint: smallest size
    assert dist.d_number[90] == pytest.approx(3.0)  # above the last one: largest size
    assert dist.d_volume[50] == pytest.approx(2 + (0.5 - 5 / 36) / (22.5 / 36 - 5 / 36))
    assert dist.d_volume[10] == pytest.approx(1 + (0.1 - 0.5 / 36) / (5 / 36 - 0.5 / 36))
    assert dist.d_volume[90] == pytest.approx(3.0)
    # default volumes: pi d^3 / 6 gives the same weighting (proportional to d^3)
    assert size_distribution([1.0, 2.0, 3.0]).d_volume[50] == pytest.approx(dist.d_volume[50])
    summary = dist.summary()
    assert summary["count"] == 3 and summary["D50_volume"] == pytest.approx(dist.d_volume[50])


def test_ties_and_empty_and_errors():
    dist = size_distribution([2.0, 2.0, 5.0])
    np.testing.assert_allclose(dist.size, [2, 5])
    np.testing.assert_allclose(dist.passing_number, [2 / 3, 1])
    empty = size_distribution([])
    assert empty.count == 0 and np.isnan(empty.d_volume[50]) and len(empty.size) == 0
    with pytest.raises(ValueError, match="does not match"):
        size_distribution([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="finite"):
        size_distribution([1.0, np.nan])
    with pytest.raises(ValueError, match="percentiles"):
        size_distribution([1.0], percentiles=(120,))


def test_csv_round_trip_with_units(tmp_path):
    table = {
        "id": np.array([3, 10, 12], np.int64),
        "volume": np.array([1.0, 0.1 + 0.2, 1e-300]),
        "equivalent_diameter": np.array([1 / 3, 2.5, np.pi]),
        "surface_area": np.array([np.nan, 1.0, np.inf]),
        "sphericity": np.array([0.9, 0.8, 1.1]),
        "bbox_z0": np.array([0, 4, 7], np.int64),
        "touches_edge": np.array([True, False, True]),
        "intensity_mean": np.array([1.5, 2.0, 3.0]),
    }
    path = write_particles_csv(tmp_path / "particles.csv", table, "mm")
    assert not (tmp_path / "particles.csv.tmp").exists()
    header = path.read_text().splitlines()[0].split(",")
    assert header == [
        "id", "volume [mm^3]", "equivalent_diameter [mm]", "surface_area [mm^2]", "sphericity",
        "bbox_z0 [voxel]", "touches_edge", "intensity_mean [grey value]",
    ]  # fmt: skip
    back, units = read_particles_csv(path, with_units=True)
    assert list(back) == list(table)
    assert units["volume"] == "mm^3" and units["sphericity"] is None
    for name, values in table.items():
        assert back[name].dtype == values.dtype, name
        np.testing.assert_array_equal(back[name], values)  # exact, NaN == NaN


def test_csv_rejects_ragged_tables(tmp_path):
    with pytest.raises(ValueError, match="equal length"):
        write_particles_csv(tmp_path / "x.csv", {"a": np.zeros(2), "b": np.zeros(3)}, "mm")
    assert not list(tmp_path.iterdir())


def test_column_units():
    assert column_unit("feret_max", "um") == "um"
    assert column_unit("convex_volume", "um") == "um^3"
    assert column_unit("hist_3", "um") is None

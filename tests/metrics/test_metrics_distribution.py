"""Size-distribution errors on toy cases computed by hand."""

import numpy as np
import pytest

from particleseg.metrics.distribution import DIST_KEYS, size_distribution_errors


def cubes(sides, shape=(12, 12, 200)):
    labels = np.zeros(shape, np.uint32)
    x = 0
    for i, s in enumerate(sides):
        labels[:s, :s, x : x + s] = i + 1
        x += s + 1
    return labels


def test_identical_volumes_have_zero_errors():
    ref = cubes([2, 4, 6, 8])
    errors = size_distribution_errors(ref, ref, spacing=(0.5, 0.5, 0.5))
    assert set(errors) == set(DIST_KEYS)
    assert all(v == 0.0 for v in errors.values())


def test_count_and_median_errors_by_hand():
    ref = cubes([4, 4, 4])
    pred = cubes([4, 4, 4, 2])  # one extra small particle
    errors = size_distribution_errors(pred, ref)
    assert errors["count_rel_error"] == pytest.approx(1 / 3)
    d4 = np.cbrt(6 * 64 / np.pi)
    d2 = np.cbrt(6 * 8 / np.pi)
    # number-weighted D50 of [d2, d4, d4, d4] (midpoint interpolation) is d4, reference d4
    assert errors["d50_number_rel_error"] == pytest.approx(0.0)
    # D10 by number: midpoints at 1/8, 3/8, ...; p = 0.1 lies below the first: clamps to d2
    assert errors["d10_number_rel_error"] == pytest.approx((d2 - d4) / d4)


def test_empty_reference_gives_nan_and_shapes_are_checked():
    ref = np.zeros((4, 4, 4), np.uint8)
    errors = size_distribution_errors(cubes([2], (4, 4, 4)), ref)
    assert all(np.isnan(v) for v in errors.values())
    with pytest.raises(ValueError, match="differs from ref shape"):
        size_distribution_errors(ref, np.zeros((4, 4, 5), np.uint8))

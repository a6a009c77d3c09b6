"""The input reference: histograms on fixed edges, the 1-Wasserstein distance, the far verdict."""

from __future__ import annotations

import numpy as np
import pytest

from particleseg.transforms.input_reference import (
    build_reference,
    check_reference,
    compare_to_reference,
    input_histogram,
    normalized_sample,
    wasserstein_1d,
)

EDGES = np.arange(6.0)  # 5 unit bins, centres 0.5 .. 4.5


def delta(i, k=5):
    h = np.zeros(k)
    h[i] = 1.0
    return h


@pytest.mark.parametrize("i,j", [(0, 0), (0, 4), (1, 3), (4, 2)])
def test_distance_between_two_spikes_is_their_gap(i, j):
    assert wasserstein_1d(delta(i), delta(j), EDGES) == pytest.approx(abs(i - j))


def test_distance_is_symmetric_and_matches_brute_force_transport():
    rng = np.random.default_rng(0)
    p, q = rng.random(5), rng.random(5)
    p, q = p / p.sum(), q / q.sum()
    # brute force: W1 of two discrete measures = integral of |F_p - F_q| over the line
    xs = np.linspace(0.5, 4.5, 40001)
    centres = np.arange(5) + 0.5
    fp = np.array([p[centres <= x].sum() for x in xs])
    fq = np.array([q[centres <= x].sum() for x in xs])
    brute = float(np.sum(np.abs(fp - fq)[:-1] * np.diff(xs)))
    assert wasserstein_1d(p, q, EDGES) == pytest.approx(brute, abs=1e-3)
    assert wasserstein_1d(p, q, EDGES) == pytest.approx(wasserstein_1d(q, p, EDGES))


def test_histogram_clips_to_the_end_bins_and_ignores_nan():
    h = input_histogram(np.array([-10.0, 0.2, 2.5, 99.0, np.nan, np.inf]), EDGES)
    # -10 -> bin 0, 0.2 -> bin 0, 2.5 -> bin 2, 99 -> bin 4; NaN and inf left out
    np.testing.assert_allclose(h, [0.5, 0, 0.25, 0, 0.25])
    with pytest.raises(ValueError, match="no finite value"):
        input_histogram(np.array([np.nan]), EDGES)
    with pytest.raises(ValueError, match="increasing"):
        input_histogram(np.ones(3), np.array([0.0, 0.0, 1.0]))
    with pytest.raises(ValueError, match="same shape"):
        wasserstein_1d(np.ones(3) / 3, np.ones(4) / 4, EDGES)


def two_phase(rng, n, fraction, contrast=1.0, noise=0.05):
    """Normalized-looking values: matrix at 0, particles at ``contrast``, ``fraction`` of them."""
    values = np.where(rng.random(n) < fraction, contrast, 0.0)
    return values + rng.normal(0, noise, n)


def test_reference_threshold_is_factor_times_the_largest_leave_one_out_distance():
    rng = np.random.default_rng(1)
    samples = [two_phase(rng, 20000, f) for f in (0.3, 0.35, 0.4)]
    ref = build_reference(samples, ["a", "b", "c"], factor=3.0, floor=1e-9)
    edges = np.asarray(ref["edges"])
    hists = [np.asarray(h) for h in ref["histograms"]]
    loo = [
        min(wasserstein_1d(hists[i], hists[j], edges) for j in range(3) if j != i) for i in range(3)
    ]
    np.testing.assert_allclose(ref["loo_distances"], loo)
    assert ref["threshold"] == pytest.approx(3.0 * max(loo))
    assert build_reference(samples[:1], ["a"], floor=0.5)["threshold"] == 0.5  # one scan: floor
    check_reference(ref)


def test_a_reference_scan_is_near_and_an_inverted_one_is_far():
    rng = np.random.default_rng(2)
    samples = [two_phase(rng, 20000, f) for f in (0.3, 0.35, 0.4)]
    ref = build_reference(samples, ["a", "b", "c"])
    near = compare_to_reference(two_phase(rng, 20000, 0.36), ref)
    assert not near["far"] and near["distance"] < ref["threshold"]
    assert near["nearest"] == "b"
    # dark particles in a bright matrix: the same two levels, the opposite proportions
    inverted = compare_to_reference(1.0 - two_phase(rng, 20000, 0.35), ref)
    assert inverted["far"] and inverted["distance"] > ref["threshold"]


def test_normalized_sample_ignores_gain_offset_and_dtype_under_the_percentile_scheme():
    rng = np.random.default_rng(3)
    scan = rng.normal(1000, 100, (40, 40, 40)).astype(np.float32)
    scan[:, :, 20:] += 800
    cfg = {"scheme": "percentile"}
    ref = build_reference([normalized_sample(scan, cfg)], ["scan"])
    moved = (scan * 3.0 + 5000).astype(np.uint16)
    result = compare_to_reference(normalized_sample(moved, cfg), ref)
    assert result["distance"] < 0.01 and not result["far"]


def test_broken_references_are_refused_with_the_key():
    with pytest.raises(ValueError, match="missing or invalid key"):
        check_reference({"edges": [0, 1]})
    bad = {"edges": [0, 1, 2], "histograms": [[1.0]], "names": ["a"], "threshold": 0.1}
    with pytest.raises(ValueError, match="do not match"):
        check_reference(bad)
    with pytest.raises(ValueError, match="one name per sample"):
        build_reference([np.ones(3)], [])

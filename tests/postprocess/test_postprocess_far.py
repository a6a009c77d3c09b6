"""The k-d tree search for far voxels equals a brute force, ties included."""

import numpy as np
import pytest

from particleseg.postprocess._far import nearest_in_component


def brute_force(points, point_comp, cand, raster, label, comp, spacing):
    out = np.zeros(len(points), np.uint32)
    s = np.asarray(spacing)
    for i, (p, c) in enumerate(zip(points, point_comp, strict=True)):
        mine = np.flatnonzero(comp == c)
        if not len(mine):
            continue
        d = (s[0] * (p[0] - cand[mine, 0])) ** 2 + (s[1] * (p[1] - cand[mine, 1])) ** 2
        d = d + (s[2] * (p[2] - cand[mine, 2])) ** 2
        best = mine[d == d.min()]
        out[i] = label[best[np.argmin(raster[best])]]
    return out


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (2.0, 1.0, 0.5)])
def test_equals_brute_force_with_many_ties(seed, spacing):
    rng = np.random.default_rng(seed)
    # a coarse integer lattice: many equidistant candidates, hence many ties
    cand = rng.integers(0, 6, (300, 3)) * 2
    comp = rng.integers(1, 4, 300)
    raster = rng.permutation(300)
    label = rng.integers(1, 50, 300).astype(np.uint32)
    points = rng.integers(0, 12, (400, 3))
    point_comp = rng.integers(1, 5, 400)  # component 4 has no candidates: label 0
    got = nearest_in_component(points, point_comp, cand, raster, label, comp, spacing)
    want = brute_force(points, point_comp, cand, raster, label, comp, spacing)
    np.testing.assert_array_equal(got, want)
    assert (got[point_comp == 4] == 0).all()


def test_a_single_candidate_and_a_single_point():
    got = nearest_in_component(
        np.array([[0, 0, 0]]),
        np.array([7]),
        np.array([[5, 5, 5]]),
        np.array([3]),
        np.array([9], np.uint32),
        np.array([7]),
    )
    assert got.tolist() == [9]

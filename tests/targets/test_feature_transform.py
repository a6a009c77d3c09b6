import numpy as np
import pytest
import scipy.ndimage as ndi

from particleseg.targets import _feature_transform as ft


def random_seeds(shape, density, seed, inside=None):
    """Scattered one-voxel seeds labelled 1..N in raster order (as cc3d numbers cores), only
    where ``inside`` is non-zero: every seed lies in one component, as the transform assumes.
    """
    rng = np.random.default_rng(seed)
    where = rng.random(shape) < density
    if inside is not None:
        where &= inside != 0
    seeds = np.zeros(shape, np.uint32)
    seeds[where] = np.arange(1, int(where.sum()) + 1, dtype=np.uint32)
    return seeds


@pytest.mark.parametrize(
    ("shape", "spacing"),
    [
        ((12, 14, 300), (1.0, 1.0, 1.0)),
        ((300, 6, 9), (1.0, 1.0, 1.0)),
        ((9, 40, 200), (2.0, 1.0, 0.5)),
    ],
)
def test_nearest_seed_distance_is_the_minimum(shape, spacing):
    """The chosen seed is a nearest one (brute-force distances from scipy's exact EDT)."""
    seeds = random_seeds(shape, 0.002, 1)
    components = np.ones(shape, np.uint32)
    label, points, seed_component, seed_d2 = ft.nearest_seed_label(seeds, components, spacing)
    assert len(points) == 0
    assert np.all(seed_component[1:] == 1)
    nearest = ndi.distance_transform_edt(seeds == 0, sampling=spacing)
    # distance from every voxel to the seed it was given
    chosen = np.full(shape, np.inf)
    for lab in np.unique(label):
        d = ndi.distance_transform_edt(seeds != lab, sampling=spacing)
        mask = (label == lab).ravel()
        chosen.reshape(-1)[mask] = d.reshape(-1)[mask]
    np.testing.assert_allclose(chosen, nearest, rtol=1e-5, atol=1e-6)
    assert np.array_equal(seed_d2 == 0, seeds != 0), "seed_d2 is 0 exactly at the seeds"
    assert np.array_equal(label[seeds != 0], seeds[seeds != 0])


def test_block_width_and_overwriting_do_not_change_the_result(monkeypatch):
    shape = (40, 50, 300)
    components = np.ones(shape, np.uint32)
    components[:, :, 150] = 0  # two components; voxels whose nearest seed is across -> 0
    components[:, :, 151:] = 2
    seeds = random_seeds(shape, 0.001, 2, inside=components)
    expected = ft.nearest_seed_label(seeds, components)
    for width in (8, 64, 128, 512):
        monkeypatch.setattr(ft, "_BLOCK", width)
        own = seeds.copy()
        got = ft.nearest_seed_label(own, components, overwrite_seeds=True)
        assert got[0] is own
        for a, b in zip(got, expected, strict=True):
            np.testing.assert_array_equal(a, b)


def test_unresolved_points_are_the_component_voxels_left_at_zero_in_raster_order():
    shape = (20, 30, 260)
    rng = np.random.default_rng(4)
    components = ndi.label(rng.random(shape) < 0.6)[0].astype(np.uint32)
    seeds = random_seeds(shape, 0.0005, 3, inside=components)
    label, points, _, _ = ft.nearest_seed_label(seeds, components)
    expected = np.argwhere((components != 0) & (label == 0))
    assert len(expected) > 0
    np.testing.assert_array_equal(points, expected)


def test_overwrite_needs_c_contiguous_uint32():
    seeds = np.zeros((4, 5, 6), np.uint16)
    with pytest.raises(ValueError, match="uint32"):
        ft.nearest_seed_label(seeds, np.ones((4, 5, 6), np.uint32), overwrite_seeds=True)

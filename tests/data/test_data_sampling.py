import numpy as np

from particleseg.data.sampling import crop_padded, patch_start


def test_crop_padded_matches_padded_reference():
    rng = np.random.default_rng(0)
    a = rng.integers(1, 100, size=(7, 9, 11)).astype(np.int32)
    pad = 20
    ref = np.pad(a, pad, constant_values=-1)
    for _ in range(50):
        start = rng.integers(-8, 12, size=3)
        size = rng.integers(1, 15, size=3)
        got = crop_padded(a, start, size, pad_value=-1)
        sl = tuple(slice(s + pad, s + pad + n) for s, n in zip(start, size, strict=True))
        assert np.array_equal(got, ref[sl])


def test_patch_start_uniform_inside_and_small_volume_padded():
    rng = np.random.default_rng(1)
    for _ in range(100):
        s = patch_start((20, 30, 40), (8, 8, 8), rng)
        assert all(0 <= a <= d - 8 for a, d in zip(s, (20, 30, 40), strict=True))
    s = patch_start((4, 30, 40), (8, 8, 8), rng)
    assert -4 <= s[0] <= 0


def test_foreground_patch_contains_the_chosen_voxel():
    rng = np.random.default_rng(2)
    shape, size = (30, 40, 50), (16, 16, 16)
    coords = np.array([[0, 0, 0], [29, 39, 49], [15, 3, 47]])
    for _ in range(50):
        s = patch_start(shape, size, rng, coords)
        hits = [
            all(a <= c < a + n for a, c, n in zip(s, coord, size, strict=True)) for coord in coords
        ]
        assert any(hits)
        assert all(0 <= a <= d - n for a, d, n in zip(s, shape, size, strict=True))

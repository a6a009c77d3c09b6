import numpy as np
import pytest

from particleseg.io.phase_codes import AIR, MATERIAL0, MATRIX, PORE, VOID
from particleseg.transforms.appearance import (
    AppearanceRanges,
    RandAppearanced,
    draw_levels,
    render_appearance,
)

PCT = {"scheme": "percentile"}


def _phases(shape=(24, 32, 32)):
    p = np.full(shape, MATRIX, np.uint8)
    p[:, :, :4] = AIR
    p[4:12, 4:12, 8:16] = MATERIAL0
    p[12:20, 14:24, 10:20] = MATERIAL0 + 1
    p[14:16, 16:18, 12:14] = PORE
    p[2:5, 20:24, 24:28] = VOID
    return p


def test_levels_stay_inside_the_configured_ranges():
    ranges = AppearanceRanges(
        matrix_contrast=(2.0, 5.0), particle_contrast=(10.0, 20.0), material_spread=(1.0, 1.5)
    )
    for seed in range(50):
        levels = draw_levels(ranges, np.random.default_rng(seed))
        matrix = levels[MATRIX] - levels[AIR]
        assert 2.0 <= abs(matrix) <= 5.0
        contrast = levels[MATERIAL0:] - levels[MATRIX]
        assert (contrast >= 10.0 / 1.5 - 1e-9).all() and (contrast <= 20.0 * 1.5 + 1e-9).all()
        lo, hi = sorted((levels[AIR], levels[MATRIX]))
        assert lo - 1e-9 <= levels[VOID] <= hi + 1e-9 and lo - 1e-9 <= levels[PORE] <= hi + 1e-9


@pytest.mark.parametrize(("p", "sign"), [(0.0, 1), (1.0, -1)])
def test_darker_probabilities_set_the_signs(p, sign):
    ranges = AppearanceRanges(matrix_darker_p=p, particle_darker_p=p)
    for seed in range(10):
        levels = draw_levels(ranges, np.random.default_rng(seed))
        assert np.sign(levels[MATRIX] - levels[AIR]) == sign
        assert (np.sign(levels[MATERIAL0:] - levels[MATRIX]) == sign).all()


def test_rendering_is_seeded_and_deterministic():
    phases = _phases()
    sample = phases.ravel()[::7]
    a = render_appearance(phases, sample, PCT, np.random.default_rng(3))
    b = render_appearance(phases, sample, PCT, np.random.default_rng(3))
    c = render_appearance(phases, sample, PCT, np.random.default_rng(4))
    assert a.dtype == np.float32 and a.shape == phases.shape
    assert np.array_equal(a, b) and not np.allclose(a, c)


def test_rendering_shows_the_phases():
    phases = _phases()
    ranges = AppearanceRanges(particle_contrast=(50.0, 60.0), blur_sigma=(0, 0), bias=(0, 0))
    image = render_appearance(phases, phases.ravel(), PCT, np.random.default_rng(0), ranges)
    particle = image[phases >= MATERIAL0].mean()
    matrix = image[phases == MATRIX]
    assert particle - matrix.mean() > 10 * matrix.std()


def test_a_patch_of_matrix_is_normalized_with_the_whole_sample_not_stretched():
    phases = _phases()
    sample = phases.ravel()  # the whole sample holds particles
    ranges = AppearanceRanges(particle_contrast=(50.0, 60.0), blur_sigma=(0, 0), bias=(0, 0))
    patch = np.full((16, 16, 16), MATRIX, np.uint8)
    image = render_appearance(patch, sample, PCT, np.random.default_rng(0), ranges)
    full = render_appearance(phases, sample, PCT, np.random.default_rng(0), ranges)
    assert image.std() < 0.1 * (full.max() - full.min())
    assert image.mean() < 0.5  # the particles, not the matrix, are near 1


def test_transform_keeps_labels_and_drops_the_phase_keys():
    phases = _phases()[None]
    label = np.random.default_rng(0).integers(0, 3, phases.shape).astype(np.uint8)
    image = np.zeros(phases.shape, np.float32)
    data = {
        "image": image,
        "label": label.copy(),
        "phases": phases,
        "phase_sample": phases.ravel()[::3],
    }
    t = RandAppearanced(normalization=PCT, prob=1.0)
    t.set_random_state(seed=1)
    out = t(data)
    assert set(out) == {"image", "label"}
    assert np.array_equal(out["label"], label) and out["image"].shape == image.shape
    assert not np.array_equal(out["image"], image)
    t.set_random_state(seed=1)
    assert np.array_equal(t(data)["image"], out["image"])
    off = RandAppearanced(normalization=PCT, prob=0.0)(data)
    assert off["image"] is image and "phases" not in off


def test_global_zscore_training_renders_zscored_images():
    phases = _phases()
    image = render_appearance(
        phases,
        phases.ravel(),
        {"scheme": "global_zscore", "mean": 1.0, "std": 2.0},
        np.random.default_rng(0),
    )
    assert abs(image.mean()) < 0.5 and 0.5 < image.std() < 2.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"matrix_contrast": (0.0, 1.0)}, "matrix_contrast"),
        ({"particle_contrast": (5.0, 1.0)}, "particle_contrast"),
        ({"material_spread": (0.5, 2.0)}, "material_spread"),
        ({"particle_darker_p": 1.5}, "particle_darker_p"),
        ({"noise_white_share": (0.0, 2.0)}, "noise_white_share"),
    ],
)
def test_bad_ranges_name_the_field(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AppearanceRanges(**kwargs)


def test_bad_phases_are_refused():
    with pytest.raises(ValueError, match="uint8"):
        render_appearance(
            np.zeros((4, 4, 4), np.int32), np.zeros(3, np.uint8), PCT, np.random.default_rng(0)
        )

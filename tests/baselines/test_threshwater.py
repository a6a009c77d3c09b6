import json
import subprocess
import sys

import cc3d
import numpy as np
import pytest
from baseline_helpers import render as balls

from particleseg.baselines import (
    PARAM_KEYS,
    intensity_stats,
    load_params,
    open_mask,
    save_params,
    threshwater,
    tune_threshwater,
)
from particleseg.metrics import evaluate_instances

SHAPE = (48, 48, 48)


def render(centers, radii, *, shape=SHAPE, **kwargs):
    """:func:`baseline_helpers.render` at this module's shape."""
    return balls(centers, radii, shape=shape, **kwargs)


def two_touching_balls(**kwargs):
    # radius 10, centres 19.5 apart: a neck of radius ~2.2 voxels joins them
    return render([(24, 24, 14.25), (24, 24, 33.75)], [10, 10], **kwargs)


def cluster(seed=0, **kwargs):
    centers = [(14, 14, 14), (14, 14, 31), (31, 16, 22), (30, 33, 12), (33, 33, 32), (16, 34, 30)]
    radii = [8, 8.5, 9, 7, 8, 6.5]
    rng = np.random.default_rng(seed)
    centers = [tuple(np.asarray(c) + rng.uniform(-1.5, 1.5, 3)) for c in centers]
    return render(centers, radii, seed=seed, **kwargs)


def test_separates_two_touching_balls_with_a_neck():
    image, ref = two_touching_balls()
    # the thresholded, opened foreground is one connected blob ...
    mask = open_mask(image > intensity_stats(image).otsu, 1)
    _, n_blobs = cc3d.connected_components(mask, connectivity=6, return_N=True)
    assert n_blobs == 1
    # ... which ThreshWater splits in two, one particle per ball
    pred = threshwater(image)
    assert pred.max() == 2
    m = evaluate_instances(pred, ref)
    assert m["f1_match"] == 1.0
    assert m["f1_instance"] > 0.9
    assert m["n_mergers"] == 0 and m["n_splitters"] == 0


def test_output_is_uint32_with_consecutive_ids():
    image, ref = cluster()
    pred = threshwater(image)
    assert pred.dtype == np.uint32 and pred.shape == image.shape
    ids = np.unique(pred)
    np.testing.assert_array_equal(ids, np.arange(ids.size))
    assert evaluate_instances(pred, ref)["f1_match"] >= 0.8


def test_seedless_component_becomes_a_particle():
    image, ref = render([(24, 24, 14), (24, 24, 38)], [10, 2.5])
    pred = threshwater(image, seed_erosion=3)
    assert pred.max() == 2
    small = np.bincount(pred[ref == 2]).argmax()
    assert small != 0 and small != np.bincount(pred[ref == 1]).argmax()


def test_opening_removes_specks_and_keeps_particle_size():
    image, ref = two_touching_balls(noise=0.02)
    rng = np.random.default_rng(1)
    specks = rng.random(SHAPE) < 0.002
    image[specks & (ref == 0)] = 1.0
    noisy = threshwater(image, noise_erosion=0)
    clean = threshwater(image, noise_erosion=1)
    assert noisy.max() > 20
    assert clean.max() == 2
    m = evaluate_instances(clean, ref)
    assert m["f1"] > 0.95


def test_open_mask_is_an_opening():
    mask = np.zeros((20, 20, 20), bool)
    mask[4:14, 4:14, 4:14] = True  # a cube loses only its 12 edges to a radius-1 opening
    mask[17, 17, 17] = True  # a speck vanishes
    opened = open_mask(mask, 1)
    assert not (opened & ~mask).any()
    assert not opened[17, 17, 17]
    assert opened[4:14, 4:14, 4:14].sum() == 1000 - 12 * 8 - 8
    np.testing.assert_array_equal(opened[5:13, 5:13, 4:14], mask[5:13, 5:13, 4:14])
    assert not open_mask(mask, 20).any()
    np.testing.assert_array_equal(open_mask(mask, 0), mask)


def test_threshold_offset_is_relative_to_the_robust_range():
    image, _ = cluster()
    for offset in (0.0, 0.1):
        a = threshwater(image, threshold_offset=offset)
        b = threshwater(image * 250.0 + 1000.0, threshold_offset=offset)
        np.testing.assert_array_equal(a, b)
    stats = intensity_stats(image)
    assert stats.low < stats.otsu < stats.high
    explicit = threshwater(image, threshold=stats.otsu + 0.1 * stats.span)
    np.testing.assert_array_equal(explicit, threshwater(image, threshold_offset=0.1))


def test_integer_image():
    image, ref = two_touching_balls()
    pred = threshwater(np.round(np.clip(image, 0, None) * 1000).astype(np.uint16))
    assert evaluate_instances(pred, ref)["f1_match"] == 1.0


def test_constant_image_raises():
    with pytest.raises(ValueError, match="constant"):
        threshwater(np.full(SHAPE, 7.0, np.float32))


def test_threshold_above_everything_gives_empty_labels():
    image, _ = two_touching_balls()
    pred = threshwater(image, threshold=10.0)
    assert pred.dtype == np.uint32 and not pred.any()


@pytest.mark.parametrize(
    ("image", "pattern"),
    [
        (np.zeros((8, 8)), r"3D.*\(8, 8\)"),
        (np.zeros((2, 3, 4, 5)), r"\(2, 3, 4, 5\)"),
        (np.zeros((0, 4, 4)), r"empty"),
        (np.array([[[1.0, np.nan]]]), r"NaN"),
        (np.array([[[1.0, np.inf]]]), r"infinite"),
    ],
)
def test_bad_images_raise(image, pattern):
    with pytest.raises(ValueError, match=pattern):
        threshwater(image)


@pytest.mark.parametrize(
    "params", [{"noise_erosion": -1}, {"seed_erosion": -0.5}, {"connectivity": 4}]
)
def test_bad_parameters_raise(params):
    image, _ = two_touching_balls()
    with pytest.raises(ValueError):
        threshwater(image, **params)


def test_tuning_beats_defaults_and_round_trips(tmp_path):
    volumes = [cluster(seed=1), cluster(seed=2, gain=40.0, offset=300.0, noise=0.1)]
    images = [v[0] for v in volumes]
    labels = [v[1] for v in volumes]
    grid = {
        "threshold_offsets": (-0.05, 0.0, 0.1),
        "noise_erosions": (0, 1),
        "seed_erosions": (2, 3, 5),
    }
    result = tune_threshwater(images, labels, **grid, progress=False)

    assert set(result) == {"params", "score", "metric", "grid"}
    assert set(result["params"]) == set(PARAM_KEYS)
    assert len(result["grid"]) == 3 * 2 * 3
    assert result["score"] == max(row["score"] for row in result["grid"])

    # the grid's scores are those of threshwater itself
    default = np.mean([evaluate_instances(threshwater(i), r)["f1_instance"] for i, r in volumes])
    (row,) = [
        g
        for g in result["grid"]
        if (g["threshold_offset"], g["noise_erosion"], g["seed_erosion"]) == (0.0, 1, 3)
    ]
    assert row["score"] == pytest.approx(default, abs=1e-12)
    assert result["score"] >= default
    best = np.mean(
        [
            evaluate_instances(threshwater(i, **result["params"]), r)["f1_instance"]
            for i, r in volumes
        ]
    )
    assert best == pytest.approx(result["score"], abs=1e-12)

    path = save_params(tmp_path / "sub" / "threshwater.json", result)
    assert json.loads(path.read_text())["params"] == result["params"]
    assert load_params(path) == result
    assert [p.name for p in path.parent.iterdir()] == ["threshwater.json"]


def test_tuning_finds_a_better_seed_erosion():
    # big balls with a wide neck (radius ~4.8): seeds at the default erosion 3 merge them
    volumes = [
        render([(24, 24, 13), (24, 24, 35)], [12, 12], seed=3),
        render([(24, 13, 24), (24, 35, 24)], [12, 12], seed=4, gain=3.0),
    ]
    images, labels = zip(*volumes, strict=True)
    default = np.mean([evaluate_instances(threshwater(i), r)["f1_match"] for i, r in volumes])
    result = tune_threshwater(
        images,
        labels,
        threshold_offsets=(0.0,),
        noise_erosions=(1,),
        seed_erosions=(3, 5, 7),
        metric="f1_match",
        progress=False,
    )
    assert default < 1.0
    assert result["params"]["seed_erosion"] == 5
    assert result["score"] == 1.0 > default


def test_tuning_bad_input():
    image, ref = two_touching_balls()
    with pytest.raises(ValueError, match="metric"):
        tune_threshwater([image], [ref], metric="merger_ratio", progress=False)
    with pytest.raises(ValueError, match="1 images but 2"):
        tune_threshwater([image], [ref, ref], progress=False)
    with pytest.raises(ValueError, match="shape"):
        tune_threshwater([image], [ref[:-1]], progress=False)
    with pytest.raises(ValueError, match="seed_erosion"):
        tune_threshwater([image], [ref], seed_erosions=(), progress=False)


def test_load_params_rejects_bad_files(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="bad.json"):
        load_params(bad)
    bad.write_text(json.dumps({"score": 1.0}))
    with pytest.raises(ValueError, match="params"):
        load_params(bad)
    with pytest.raises(ValueError, match="missing.json"):
        load_params(tmp_path / "missing.json")
    with pytest.raises(ValueError, match="params"):
        save_params(tmp_path / "x.json", {"score": 1.0})


def test_baselines_never_import_torch():
    code = (
        "import sys, particleseg.baselines; "
        "assert 'torch' not in sys.modules, 'particleseg.baselines imported torch'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)

import itertools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from baseline_helpers import render as balls

from particleseg.baselines import (
    SNOW_PARAM_KEYS,
    intensity_stats,
    load_params,
    resolve_threshold,
    save_params,
    snow_segment,
    threshwater,
    tune_snow,
    tune_threshwater,
)
from particleseg.baselines import snow as snow_module
from particleseg.metrics import evaluate_instances

ROOT = Path(__file__).resolve().parents[2]
SHAPE = (40, 40, 40)


def spheres(centers, radii, *, shape=SHAPE, noise=0.05, seed=0):
    """A bright phase of balls in a dark matrix: (float32 image, uint32 labels)."""
    return balls(centers, radii, shape=shape, noise=noise, seed=seed)


def two_touching_spheres(**kwargs):
    # radius 9, centres 17 apart: they overlap in a neck of radius ~3 voxels
    return spheres([(20, 20, 11.5), (20, 20, 28.5)], [9, 9], **kwargs)


def iou(a, b):
    return (a & b).sum() / (a | b).sum()


def test_two_touching_spheres_become_two_particles():
    image, ref = two_touching_spheres()
    pred = snow_segment(image)
    assert pred.dtype == np.uint32 and pred.shape == image.shape
    assert pred.max() == 2
    np.testing.assert_array_equal(np.unique(pred), [0, 1, 2])
    for ball in (1, 2):
        particle = np.bincount(pred[ref == ball]).argmax()
        assert particle != 0
        assert iou(pred == particle, ref == ball) >= 0.8
    assert np.bincount(pred[ref == 1]).argmax() != np.bincount(pred[ref == 2]).argmax()


def test_single_sphere_stays_one_particle():
    image, ref = spheres([(20, 21, 19)], [12], noise=0.08, seed=3)
    pred = snow_segment(image)
    assert pred.max() == 1
    assert iou(pred == 1, ref == 1) >= 0.9


@pytest.mark.parametrize("offset", [-0.1, 0.0, 0.15])
def test_threshold_matches_threshwater(offset):
    image, _ = two_touching_spheres(noise=0.12)
    expected = image > resolve_threshold(intensity_stats(image), None, offset)
    # with min_size 0 every thresholded voxel is in a particle, as in ThreshWater without opening
    foreground = snow_segment(image, threshold_offset=offset, min_size=0) > 0
    np.testing.assert_array_equal(foreground, expected)
    np.testing.assert_array_equal(
        foreground, threshwater(image, threshold_offset=offset, noise_erosion=0) > 0
    )
    # an explicit threshold is used as given, the offset relative to the robust range
    stats = intensity_stats(image)
    np.testing.assert_array_equal(
        snow_segment(image, threshold=stats.otsu + offset * stats.span, min_size=0),
        snow_segment(image, threshold_offset=offset, min_size=0),
    )


def test_small_fragments_are_merged_or_dropped():
    image, ref = two_touching_spheres(noise=0.02)
    specks = [(3, 3, 3), (36, 4, 30), (5, 35, 20)]  # single bright voxels far from the balls
    for z, y, x in specks:
        image[z, y, x] = 1.0
    kept = snow_segment(image, min_size=0)
    assert kept.max() == 2 + len(specks)
    cleaned = snow_segment(image, min_size=8)
    assert cleaned.max() == 2
    assert not any(cleaned[s] for s in specks)
    # no thresholded voxel of a ball is lost: fragments touching a particle are merged into it
    balls = snow_segment(image, min_size=0) > 0
    balls[tuple(np.array(specks).T)] = False
    np.testing.assert_array_equal(cleaned > 0, balls)
    ids = np.unique(cleaned)
    np.testing.assert_array_equal(ids, np.arange(ids.size))


def test_integer_image_and_empty_result():
    image, ref = two_touching_spheres()
    pred = snow_segment(np.round(np.clip(image, 0, None) * 1000).astype(np.uint16))
    assert evaluate_instances(pred, ref)["f1_match"] == 1.0
    empty = snow_segment(image, threshold=10.0)
    assert empty.dtype == np.uint32 and not empty.any()


@pytest.mark.parametrize(
    ("image", "pattern"),
    [
        (np.zeros((8, 8)), r"3D.*\(8, 8\)"),
        (np.zeros((2, 3, 4, 5)), r"\(2, 3, 4, 5\)"),
        (np.zeros((0, 4, 4)), r"empty"),
        (np.array([[[1.0, np.nan]]]), r"NaN"),
        (np.array([[[1.0, np.inf]]]), r"infinite"),
        (np.array([[["a", "b"]]]), r"numeric dtype.*<U1"),
        (np.full((6, 6, 6), 3.0), r"constant"),
    ],
)
def test_bad_images_raise(image, pattern):
    with pytest.raises(ValueError, match=pattern):
        snow_segment(image)


@pytest.mark.parametrize(
    ("params", "pattern"),
    [
        ({"sigma": -0.5}, "sigma"),
        ({"sigma": float("nan")}, "sigma"),
        ({"r_max": 0}, "r_max"),
        ({"r_max": 2.5}, "r_max"),
        ({"min_size": -1}, "min_size"),
        ({"threshold_offset": float("inf")}, "threshold"),
    ],
)
def test_bad_parameters_raise(params, pattern):
    image, _ = two_touching_spheres()
    with pytest.raises(ValueError, match=pattern):
        snow_segment(image, **params)


def test_missing_porespy_says_how_to_install(monkeypatch):
    monkeypatch.setattr(snow_module, "_PORESPY", None)
    monkeypatch.setitem(sys.modules, "porespy", None)  # makes `import porespy` fail
    image, _ = two_touching_spheres()
    with pytest.raises(ImportError, match=r"pip install -e \.\[eval\]"):
        snow_segment(image)


def test_porespy_import_leaves_logging_and_numpy_alone():
    code = (
        "import logging, numpy as np\n"
        "err = np.geterr()\n"
        "from particleseg.baselines import import_porespy\n"
        "import_porespy()\n"
        "assert np.geterr() == err, np.geterr()\n"
        "assert not logging.getLogger().handlers, logging.getLogger().handlers\n"
        "assert logging.getLogger('porespy').level == logging.ERROR\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def clusters():
    """Two small labelled volumes whose best SNOW parameters differ from the defaults."""
    rng = np.random.default_rng(5)
    volumes = []
    for seed in (1, 2):
        centers = [(12, 12, 12), (12, 12, 27), (27, 14, 20), (27, 29, 12), (26, 28, 28)]
        centers = [tuple(np.asarray(c) + rng.uniform(-1.5, 1.5, 3)) for c in centers]
        volumes.append(spheres(centers, [7.5, 8, 8.5, 6.5, 7.5], noise=0.1, seed=seed))
    return volumes


def test_tuning_picks_the_best_of_the_grid_and_round_trips(tmp_path):
    volumes = clusters()
    images, labels = zip(*volumes, strict=True)
    grid = {"threshold_offsets": (-0.05, 0.1), "sigmas": (0.4, 2.0), "r_maxes": (2, 5)}
    result = tune_snow(images, labels, **grid, min_size=8, progress=False)

    assert set(result) == {"params", "score", "metric", "grid"}
    assert set(result["params"]) == set(SNOW_PARAM_KEYS)
    assert result["metric"] == "f1_instance" and result["params"]["min_size"] == 8
    # brute force: every combination scored by snow_segment itself, in grid order
    brute = {}
    for offset, sigma, r_max in itertools.product(*grid.values()):
        scores = [
            evaluate_instances(
                snow_segment(i, threshold_offset=offset, sigma=sigma, r_max=r_max), r
            )["f1_instance"]
            for i, r in volumes
        ]
        brute[offset, sigma, r_max] = float(np.mean(scores))
    rows = {(g["threshold_offset"], g["sigma"], g["r_max"]): g["score"] for g in result["grid"]}
    assert list(rows) == list(brute)
    for combo, score in brute.items():
        assert rows[combo] == pytest.approx(score, abs=1e-12)
    best = max(brute, key=brute.get)  # the first of equal maxima, as the tuner breaks ties
    assert (result["params"]["threshold_offset"], result["params"]["sigma"]) == best[:2]
    assert result["params"]["r_max"] == best[2]
    assert result["score"] == pytest.approx(brute[best], abs=1e-12)
    assert len(set(brute.values())) > 1  # the grid matters on these volumes

    path = save_params(tmp_path / "snow_params.json", result)
    assert json.loads(path.read_text())["params"] == result["params"]
    loaded = load_params(path, "snow")
    assert loaded == result
    again = snow_segment(images[0], **loaded["params"])
    np.testing.assert_array_equal(again, snow_segment(images[0], **result["params"]))
    with pytest.raises(ValueError, match=r"unknown ThreshWater parameters.*a SNOW parameter"):
        load_params(path)  # a SNOW file read as ThreshWater's
    with pytest.raises(ValueError, match="unknown baseline"):
        load_params(path, "nope")


def test_tuning_bad_input():
    image, ref = two_touching_spheres()
    with pytest.raises(ValueError, match="r_max candidates must be integers"):
        tune_snow([image], [ref], r_maxes=(2.5,), progress=False)
    with pytest.raises(ValueError, match="r_max candidates must be >= 1"):
        tune_snow([image], [ref], r_maxes=(0, 3), progress=False)
    with pytest.raises(ValueError, match="no candidate values for sigma"):
        tune_snow([image], [ref], sigmas=(), progress=False)
    with pytest.raises(ValueError, match="min_size"):
        tune_snow([image], [ref], min_size=-3, progress=False)
    with pytest.raises(ValueError, match="1 images but 2"):
        tune_snow([image], [ref, ref], progress=False)
    with pytest.raises(ValueError, match="shape"):
        tune_snow([image], [ref[:-1]], progress=False)


def test_threshwater_tuning_shares_the_tuner():
    # the same result through the generic tuner as through the ThreshWater wrapper
    from particleseg.baselines import THRESHWATER, tune_grid

    volumes = clusters()
    images, labels = zip(*volumes, strict=True)
    grid = {"threshold_offsets": (0.0,), "noise_erosions": (0, 1), "seed_erosions": (2, 3)}
    wrapped = tune_threshwater(images, labels, **grid, progress=False)
    generic = tune_grid(THRESHWATER, images, labels, grid, progress=False)
    assert wrapped == generic
    assert THRESHWATER.tune(images, labels, **grid, connectivity=1, progress=False) == wrapped
    with pytest.raises(ValueError, match="unknown ThreshWater grid options"):
        THRESHWATER.tune(images, labels, **grid, sigmas=(1,), progress=False)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from particleseg.synth.dataset import build_dataset

    folder = tmp_path_factory.mktemp("synth")
    scene = {"size_median_px": 8, "size_range_px": [4, 16], "packing": 0.2}
    split = {"n": 1, "shape": [24, 56, 56], "scene": scene, "ct": {"photons": 2000}}
    splits = {"train": split, "id_test": split, "ood_test": split}
    build_dataset(folder, splits, mode="fast", seed=1, progress=False)
    return folder


SMALL_GRID = [
    "baseline.tune.threshold_offsets=[0.0]",
    "baseline.tune.sigmas=[0.4]",
    "baseline.tune.r_maxes=[3,4]",
    "baseline.tune.max_samples=1",
]


def test_evaluate_snow_as_a_user_runs_it(demo, tmp_path):
    out = tmp_path / "run"
    command = [sys.executable, "evaluate.py", f"dataset={demo}", "baseline=snow"]
    result = subprocess.run(
        [*command, f"output_dir={out}", f"hydra.run.dir={tmp_path / 'hydra'}", *SMALL_GRID],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "SNOW on" in result.stdout and "f1_instance" in result.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["method"] == "SNOW"
    assert set(summary["splits"]) == {"id_test", "ood_test", "all"}
    assert 0.0 < summary["splits"]["all"]["mean"]["f1_instance"] <= 1.0
    assert (out / "per_sample.csv").read_text().count("\n") == 3  # header + 2 samples
    assert (out / "f1_instance.png").stat().st_size > 1000
    params = load_params(out / "snow_params.json", "snow")
    assert params["params"]["r_max"] in (3, 4) and len(params["grid"]) == 2

    # the saved parameters are reused without tuning, and give the same scores
    again = tmp_path / "again"
    result = subprocess.run(
        [*command, f"output_dir={again}", f"hydra.run.dir={tmp_path / 'hydra2'}"]
        + [f"baseline.params_file={out / 'snow_params.json'}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert not (again / "snow_params.json").exists()
    assert json.loads((again / "summary.json").read_text())["splits"] == summary["splits"]

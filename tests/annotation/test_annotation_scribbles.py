import time

import numpy as np
import pytest
from annotation_helpers import dice, random_balls, stripe_scribbles, two_phase

from particleseg.annotation import (
    FeatureSettings,
    predict_semantic,
    train_scribble_classifier,
    update_scribble_classifier,
    voxel_features,
)
from particleseg.annotation.scribbles import features_at


@pytest.fixture(scope="module")
def ct_sample():
    """A realistic synthetic micro-CT scan (resin cylinder, particles, CT noise and blur)."""
    from particleseg.synth import make_sample
    from particleseg.synth.sample import CT, SCENE

    scene = dict(SCENE, size_median_px=20)
    image, labels, _ = make_sample((40, 80, 80), scene, CT, "fast", 7)
    return image, labels > 0


def test_sparse_scribbles_give_dice_over_0_9(ct_sample):
    image, truth = ct_sample
    # particle strokes inside the particles, background strokes along their edges
    scribbles = stripe_scribbles(
        truth, slices=[5, 15, 25, 35], every=3, erode=1, every_bg=4, band=3
    )
    assert 0 < (scribbles > 0).mean() < 0.01
    assert set(np.unique(scribbles)) == {0, 1, 2}
    t = time.perf_counter()
    model = train_scribble_classifier(image, scribbles, n_estimators=30)
    semantic = predict_semantic(model, image)
    print(f"train + predict {image.shape}: {time.perf_counter() - t:.2f} s")
    assert semantic.dtype == np.uint8 and semantic.shape == image.shape
    assert set(np.unique(semantic)) <= {1, 2}
    score = dice(semantic == 1, truth)
    print(f"dice {score:.3f} with {(scribbles > 0).mean():.2%} of the voxels scribbled")
    assert score >= 0.9


def test_refinement_helps_where_first_scribbles_were_poor():
    # bright and dim particles; the first scribbles only show bright ones as "particle"
    labels = random_balls((32, 64, 64), 14, (4, 7), seed=1)
    n = int(labels.max())
    brightness = np.where(np.arange(1, n + 1) % 2 == 0, 1.0, 0.45).astype(np.float32)
    image = two_phase(labels, brightness, noise=0.12, seed=1)
    truth = labels > 0
    bright = np.isin(labels, np.flatnonzero(brightness == 1.0) + 1)
    dim = truth & ~bright
    first = stripe_scribbles(truth, slices=range(0, 32, 3), every=3, erode=1)
    first[(first == 1) & dim] = 0
    model = train_scribble_classifier(image, first, sigmas=(1, 2), n_estimators=30)
    d1 = dice(predict_semantic(model, image) == 1, truth)
    extra = stripe_scribbles(truth, slices=range(1, 32, 3), every=3, erode=1)
    extra[(extra == 1) & ~dim] = 0
    extra[extra == 2] = 0
    refined = update_scribble_classifier(model, image, extra)
    d2 = dice(predict_semantic(refined, image) == 1, truth)
    print(f"dice first {d1:.3f} -> refined {d2:.3f}")
    assert refined.n_scribbled == model.n_scribbled + int((extra > 0).sum())
    assert d1 < 0.9
    assert d2 >= d1
    assert d2 >= 0.9


def test_blocked_prediction_equals_single_block():
    labels = random_balls((40, 48, 56), 10, (3, 6), seed=2)
    image = two_phase(labels, noise=0.3, seed=2)
    scribbles = stripe_scribbles(labels > 0, slices=[8, 20, 32], every=4, erode=1)
    model = train_scribble_classifier(image, scribbles, sigmas=(1, 2), n_estimators=10)
    halo = model.settings.halo
    assert halo >= 4 * 2
    whole = predict_semantic(model, image, block_shape=image.shape)
    blocked = predict_semantic(model, image, block_shape=(16, 20, 24))
    assert halo < 16  # the blocks really cut the volume inside the halo reach
    np.testing.assert_array_equal(blocked, whole)
    # and the features themselves are bitwise equal
    feats = voxel_features(image, model.settings)
    idx = np.flatnonzero(scribbles)
    np.testing.assert_array_equal(
        features_at(image, idx, model.settings, block_shape=(8, 8, 8)),
        feats.reshape(-1, feats.shape[-1])[idx],
    )


def test_update_skips_known_voxels_and_takes_relabels():
    labels = random_balls((24, 32, 32), 5, (3, 5), seed=3)
    image = two_phase(labels, seed=3)
    scribbles = stripe_scribbles(labels > 0, slices=[6, 12, 18], every=4, erode=1)
    model = train_scribble_classifier(image, scribbles, sigmas=(1, 2), n_estimators=5)
    same = update_scribble_classifier(model, image, scribbles)
    assert same.n_scribbled == model.n_scribbled
    np.testing.assert_array_equal(same.features, model.features)
    relabel = scribbles.copy()
    first = np.flatnonzero(scribbles == 2)[0]
    relabel.flat[first] = 1
    changed = update_scribble_classifier(model, image, relabel)
    assert changed.n_scribbled == model.n_scribbled
    assert changed.targets[np.searchsorted(changed.indices, first)] == 1
    assert np.all(np.diff(changed.indices) > 0)


def test_feature_names_and_halo():
    s = FeatureSettings((2, 1))
    assert s.sigmas == (1.0, 2.0)
    assert len(s.names) == s.n_features == 1 + 9 * 2
    assert s.halo >= 4 * 2


@pytest.mark.parametrize(
    ("scribbles", "match"),
    [
        (np.zeros((8, 8, 8), np.uint8), "at least 2 classes"),
        (np.ones((8, 8, 8), np.uint8), "at least 2 classes"),
        (np.zeros((8, 8, 9), np.uint8), "shape mismatch"),
        (np.full((8, 8, 8), -1, np.int32), "non-negative"),
        (np.full((8, 8, 8), 300, np.int32), "1..255"),
    ],
)
def test_bad_scribbles_are_clear_errors(scribbles, match):
    image = np.random.default_rng(0).random((8, 8, 8)).astype(np.float32)
    with pytest.raises(ValueError, match=match):
        train_scribble_classifier(image, scribbles, sigmas=(1,))


def test_update_needs_the_same_image_shape():
    image = np.random.default_rng(0).random((8, 8, 8)).astype(np.float32)
    scribbles = np.zeros((8, 8, 8), np.uint8)
    scribbles[0], scribbles[-1] = 1, 2
    model = train_scribble_classifier(image, scribbles, sigmas=(1,), n_estimators=2)
    with pytest.raises(ValueError, match="same image"):
        update_scribble_classifier(model, image[:4], scribbles[:4])


def test_custom_classifier_is_cloned():
    from sklearn.ensemble import ExtraTreesClassifier

    image = np.random.default_rng(0).random((8, 8, 8)).astype(np.float32)
    scribbles = np.zeros((8, 8, 8), np.uint8)
    scribbles[0], scribbles[-1] = 1, 2
    template = ExtraTreesClassifier(n_estimators=3, random_state=0)
    model = train_scribble_classifier(image, scribbles, sigmas=(1,), classifier=template)
    assert isinstance(model.classifier, ExtraTreesClassifier)
    assert model.classifier is not template and not hasattr(template, "classes_")


def test_lazy_volumes_work(tmp_path):
    from particleseg.io import read_volume, write_volume

    labels = random_balls((16, 24, 24), 3, (3, 5), seed=6)
    image = two_phase(labels, seed=6)
    write_volume(tmp_path / "scan.zarr", image, chunks=(8, 8, 8))
    lazy = read_volume(tmp_path / "scan.zarr")
    scribbles = stripe_scribbles(labels > 0, slices=[4, 8, 12], every=3, erode=1)
    model = train_scribble_classifier(lazy, scribbles, sigmas=(1,), n_estimators=5)
    reference = train_scribble_classifier(image, scribbles, sigmas=(1,), n_estimators=5)
    np.testing.assert_array_equal(model.features, reference.features)
    np.testing.assert_array_equal(
        predict_semantic(model, lazy, block_shape=(8, 8, 8)), predict_semantic(reference, image)
    )

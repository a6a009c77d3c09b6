"""The evaluation stage's helpers: finding a prediction, scoring one sample, naming its scans."""

import numpy as np
import pytest

from particleseg.evaluation import find_prediction, sample_digest, scans_digest, score_sample
from particleseg.metrics import evaluate_instances


def test_find_prediction_takes_a_flat_file_or_a_per_sample_folder(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((2, 2, 2), np.uint8))
    (tmp_path / "b").mkdir()
    np.save(tmp_path / "b" / "instances.npy", np.zeros((2, 2, 2), np.uint8))
    assert find_prediction(tmp_path, "a") == tmp_path / "a.npy"
    assert find_prediction(tmp_path, "b") == tmp_path / "b" / "instances.npy"
    with pytest.raises(ValueError, match=r"no prediction for sample 'c' .*c\.zarr.*c/instances"):
        find_prediction(tmp_path, "c")


def test_score_sample_on_a_hand_made_case():
    reference = np.zeros((4, 8, 8), np.int32)
    reference[:, :4, :4], reference[:, 4:, 4:] = 1, 2
    prediction = reference.copy()
    prediction[:, 4:, 4:] = 0  # particle 2 missed
    scores = score_sample(prediction, reference, None)
    assert scores["n_ref"] == 2 and scores["n_pred"] == 1
    assert scores["f1"] == pytest.approx(2 / 3)  # 1 TP, 0 FP, 1 FN
    assert {k: scores[k] for k in evaluate_instances(prediction, reference)} == (
        evaluate_instances(prediction, reference)
    )
    assert scores["count_rel_error"] == pytest.approx(-0.5)  # (1 - 2) / 2 particles


def test_sample_digest_names_the_content_not_the_memory_layout():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 60000, (5, 6, 7), dtype=np.uint16)
    labels = rng.integers(0, 4, (5, 6, 7), dtype=np.uint32)
    digest = sample_digest(image, labels)
    assert sample_digest(np.asfortranarray(image), labels[:, :, :].copy()) == digest
    assert sample_digest(image[::-1][::-1], labels) == digest  # a view of the same values
    changed = image.copy()
    changed[2, 3, 4] ^= 1  # one bit of one voxel
    assert sample_digest(changed, labels) != digest
    relabelled = labels.copy()
    relabelled[0, 0, 0] = 9
    assert sample_digest(image, relabelled) != digest
    assert sample_digest(image.astype(np.int32), labels) != digest  # same values, other dtype
    assert sample_digest(image.reshape(5, 7, 6), labels.reshape(5, 7, 6)) != digest


def test_scans_digest_ignores_the_order_and_sees_a_renamed_sample():
    pairs = [("a", "1" * 64), ("b", "2" * 64)]
    assert scans_digest(pairs) == scans_digest(pairs[::-1])
    assert scans_digest(pairs) != scans_digest([("a", "1" * 64), ("c", "2" * 64)])
    assert scans_digest(pairs) != scans_digest(pairs[:1])

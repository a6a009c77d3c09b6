"""The evaluation stage's helpers: finding a prediction, scoring one sample."""

import numpy as np
import pytest

from particleseg.evaluation import find_prediction, score_sample
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

"""Examples of each outcome are found on a toy case built to hold exactly one of each."""

import numpy as np

from particleseg.metrics.examples import find_examples


def toy():
    """Reference: 6 boxes. Prediction: boxes 1+2 merged, box 3 split, box 4 missed, 5 and 6 exact
    (5 and 6 touch each other)."""
    ref = np.zeros((10, 40, 60), np.uint16)
    pred = np.zeros_like(ref)
    ref[2:8, 2:10, 2:10], ref[2:8, 2:10, 10:18] = 1, 2  # touching pair, merged in pred
    pred[2:8, 2:10, 2:18] = 7
    ref[2:8, 20:30, 2:12] = 3  # split in two halves
    pred[2:8, 20:25, 2:12], pred[2:8, 25:30, 2:12] = 8, 9
    ref[4:6, 32:34, 30:32] = 4  # small, missed
    ref[2:8, 2:10, 30:40], ref[2:8, 2:10, 40:50] = 5, 6  # touching, both found
    pred[2:8, 2:10, 30:40], pred[2:8, 2:10, 40:50] = 10, 11
    return pred, ref


def test_each_kind_is_found_where_it_is():
    pred, ref = toy()
    found = {e["kind"]: e for e in find_examples(pred, ref, per_kind=1)}
    assert found["merger"]["pred_ids"] == [7] and found["merger"]["ref_ids"] == [1, 2]
    assert pred[found["merger"]["center"]] == 7
    assert found["splitter"]["ref_ids"] == [3] and found["splitter"]["pred_ids"] == [8, 9]
    assert ref[found["splitter"]["center"]] == 3
    assert found["missed"]["ref_ids"] == [4] and found["missed"]["size"] == 8
    assert found["success"]["ref_ids"][0] in (5, 6) and found["success"]["dice"] == 1.0
    assert found["success"]["size"] == 480


def test_nothing_to_show_gives_no_examples_of_that_kind():
    ref = np.zeros((4, 8, 8), np.uint8)
    ref[1:3, 1:4, 1:4] = 1
    found = find_examples(ref.copy(), ref)
    assert [e["kind"] for e in found] == []  # one isolated, perfect particle: not "touching"

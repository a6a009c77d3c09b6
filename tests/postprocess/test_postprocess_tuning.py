"""The post-processing grid search: it picks what an exhaustive evaluation says is best."""

import numpy as np
import pytest

from particleseg.metrics import evaluate_instances
from particleseg.postprocess.tuning import instances_on_scan_grid, tune_postprocess
from particleseg.targets import instance_to_border_core


def balls_with_specks(shape=(24, 40, 40)):
    """Reference: four balls. Prediction: the same plus eight 2-voxel specks in the background."""
    zz, yy, xx = np.indices(shape)
    ref = np.zeros(shape, np.uint32)
    for i, (z, y, x) in enumerate([(12, 10, 10), (12, 10, 30), (12, 30, 10), (12, 30, 30)]):
        ref[(zz - z) ** 2 + (yy - y) ** 2 + (xx - x) ** 2 <= 36] = i + 1
    border_core = instance_to_border_core(ref, border_thickness=1)
    for k in range(8):
        border_core[2, 2 + 4 * k, 20:22] = 2  # specks of border: each its own particle
    return border_core, ref


def test_the_filter_that_removes_the_specks_wins():
    border_core, ref = balls_with_specks()
    grid = {"min_relative_size": [0.001, 0.1]}
    result = tune_postprocess([border_core], [ref], grid=grid)
    assert result["params"] == {"min_relative_size": 0.1}
    assert result["score"] == 1.0 and result["n_scans"] == 1
    low = next(r for r in result["table"] if r["min_relative_size"] == 0.001)
    assert low["n_pred"] == 12 and low["f1_instance"] < 1.0


def test_table_equals_scoring_each_combination_directly():
    border_core, ref = balls_with_specks()
    grid = {"small_core_distance": [1.0, 2.0], "min_relative_size": [0.001, 0.1]}
    result = tune_postprocess([border_core, border_core], [ref, ref], grid=grid)
    assert len(result["table"]) == 4
    for row in result["table"]:
        pred = instances_on_scan_grid(
            border_core,
            ref.shape,
            small_core_distance=row["small_core_distance"],
            min_relative_size=row["min_relative_size"],
        )
        assert row["f1_instance"] == pytest.approx(evaluate_instances(pred, ref)["f1_instance"])


def test_network_grid_is_mapped_back_to_the_scan_grid():
    border_core, ref = balls_with_specks()
    big = np.repeat(ref, 2, axis=2)  # the scan is twice as wide as the network grid
    pred = instances_on_scan_grid(border_core, big.shape, min_relative_size=0.1)
    assert pred.shape == big.shape
    assert evaluate_instances(pred, big)["f1_instance"] == 1.0


def test_bad_arguments_are_named():
    border_core, ref = balls_with_specks()
    with pytest.raises(ValueError, match="one reference per border-core map"):
        tune_postprocess([border_core], [])
    with pytest.raises(ValueError, match="unknown grid keys"):
        tune_postprocess([border_core], [ref], grid={"halo": [8]})

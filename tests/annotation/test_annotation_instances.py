import numpy as np
import pytest
from annotation_helpers import balls

from particleseg.annotation import label_instances


def test_components_of_a_class_map():
    labels = balls((20, 30, 40), [(10, 10, 10), (10, 15, 30)], [5, 6])
    semantic = np.where(labels > 0, 1, 2).astype(np.uint8)
    out = label_instances(semantic, foreground_class=1)
    assert out.dtype == np.uint32
    assert out.max() == 2
    np.testing.assert_array_equal(out > 0, labels > 0)
    # a bool mask works the same
    np.testing.assert_array_equal(label_instances(labels > 0), out)


def test_split_touching_separates_two_overlapping_balls():
    labels = balls((24, 24, 44), [(12, 12, 12), (12, 12, 30)], [9, 9])
    mask = labels > 0
    assert label_instances(mask).max() == 1
    out = label_instances(mask, split_touching=True, h=2.0)
    assert out.max() == 2
    for i in (1, 2):
        part = labels == i
        values, counts = np.unique(out[part], return_counts=True)
        assert counts.max() / part.sum() > 0.9


def test_min_size_drops_specks_and_ids_stay_consecutive():
    mask = np.zeros((10, 10, 10), bool)
    mask[1:5, 1:5, 1:5] = True
    mask[8, 8, 8] = True
    mask[6:9, 1:4, 1:4] = True
    out = label_instances(mask, min_size=2)
    assert out.max() == 2
    assert out[8, 8, 8] == 0
    assert set(np.unique(out)) == {0, 1, 2}


def test_bad_input():
    with pytest.raises(ValueError, match="3D"):
        label_instances(np.zeros((4, 4), bool))
    with pytest.raises(ValueError, match="connectivity"):
        label_instances(np.zeros((4, 4, 4), bool), connectivity=4)

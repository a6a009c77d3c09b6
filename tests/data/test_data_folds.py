import numpy as np
import pytest

from particleseg.data.folds import group_kfold, split_fold


def test_folds_partition_and_keep_groups_together():
    rng = np.random.default_rng(0)
    groups = [f"g{k}" for k in rng.integers(0, 9, size=40)]
    folds = group_kfold(groups, n_folds=5, seed=3)
    everything = np.sort(np.concatenate(folds))
    assert np.array_equal(everything, np.arange(40))
    fold_of = {}
    for f, idx in enumerate(folds):
        for i in idx:
            assert fold_of.setdefault(groups[i], f) == f  # a group never spans two folds
    # balanced: sizes differ by at most the largest group
    sizes = [len(f) for f in folds]
    largest = max(np.unique(groups, return_counts=True)[1])
    assert max(sizes) - min(sizes) <= largest


def test_one_sample_per_group_is_plain_kfold():
    groups = [f"s{i}" for i in range(10)]
    folds = group_kfold(groups, n_folds=5)
    assert sorted(len(f) for f in folds) == [2] * 5


def test_split_fold_train_and_val_disjoint_and_seeded():
    groups = [f"s{i // 2}" for i in range(12)]
    train, val = split_fold(groups, 1, n_folds=3, seed=7)
    assert not set(train) & set(val)
    assert len(train) + len(val) == 12
    again = split_fold(groups, 1, n_folds=3, seed=7)
    assert np.array_equal(again[1], val)
    t_all, v_all = split_fold(groups, "all", n_folds=3)
    assert np.array_equal(t_all, np.arange(12)) and np.array_equal(v_all, np.arange(12))


@pytest.mark.parametrize(
    ("groups", "fold", "n_folds", "match"),
    [
        (["a", "b"], 0, 5, "cannot make 5 folds from 2 sample group"),
        (["a", "b", "c"], 3, 3, "fold must be in 0..2"),
        (["a", "b", "c"], "last", 3, "fold must be an integer"),
        (["a", "b", "c"], 0, 1, "n_folds must be an integer >= 2"),
    ],
)
def test_bad_folds(groups, fold, n_folds, match):
    with pytest.raises(ValueError, match=match):
        split_fold(groups, fold, n_folds)

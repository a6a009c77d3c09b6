"""ParticleDataModule's choice of training and validation scans: a fold, or the val split."""

import pytest

from particleseg.data.datamodule import ParticleDataModule
from particleseg.synth.dataset import build_dataset

SPLIT = {
    "n": 3,
    "shape": [16, 24, 24],
    "scene": {"size_median_px": 6, "size_range_px": [4, 9], "packing": 0.2},
    "ct": {"photons": 3000},
}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pools") / "ds"
    build_dataset(folder, {"train": SPLIT, "val": {**SPLIT, "n": 2}}, seed=3, progress=False)
    return folder


def module(dataset_dir, **kw):
    return ParticleDataModule(
        dataset_dir=str(dataset_dir),
        target_particle_size=8,
        border_thickness=1,
        patch_size=[16, 16, 16],
        n_folds=3,
        **kw,
    )


def test_a_fold_splits_the_training_split(dataset):
    train, val = module(dataset, fold=0).fold_entries()
    assert len(train) + len(val) == 3 and not {e.name for e in train} & {e.name for e in val}
    assert {e.split for e in train + val} == {"train"}


def test_val_split_validates_on_its_own_scans_and_trains_on_all(dataset):
    train, val = module(dataset, fold=0, val_split="val").fold_entries()
    assert [e.split for e in train] == ["train"] * 3 and [e.split for e in val] == ["val"] * 2
    assert not {str(e.image) for e in train} & {str(e.image) for e in val}


@pytest.mark.parametrize("split", ["id_test", "ood_test", "train"])
def test_a_val_split_other_than_val_is_refused(dataset, split):
    with pytest.raises(ValueError, match=f"val_split must be 'val' or null, got '{split}'"):
        module(dataset, val_split=split).fold_entries()


def test_an_empty_val_split_is_refused(tmp_path):
    build_dataset(tmp_path / "ds", {"train": {**SPLIT, "n": 1}}, seed=5, progress=False)
    with pytest.raises(ValueError, match=r"dataset.json: no 'val' samples"):
        module(tmp_path / "ds", val_split="val").fold_entries()

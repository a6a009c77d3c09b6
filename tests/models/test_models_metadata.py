"""The model file's metadata: what the writer stores, the reader gives back, checked."""

import pytest

from particleseg.models.metadata import (
    CHECKPOINT_KEY,
    model_metadata,
    read_model_metadata,
)

NET = {"_target_": "particleseg.models.UNet", "in_channels": 1}
NORM = {"scheme": "global_zscore", "mean": 100.0, "std": 20.0}


def written(**optional):
    meta = model_metadata(
        net_config=NET,
        normalization=NORM,
        target_particle_size=8,
        border_thickness=1,
        patch_size=(16, 16, 16),
        **optional,
    )
    return {CHECKPOINT_KEY: meta}


def test_what_is_written_reads_back_typed():
    got = read_model_metadata(written(postprocess={"min_relative_size": 0.1}), "m.ckpt")
    assert got.net_config == NET
    assert got.normalization["scheme"] == "global_zscore"
    assert (got.target_particle_size, got.border_thickness) == (8.0, 1)
    assert got.patch_size == (16, 16, 16)
    assert got.postprocess == {"min_relative_size": 0.1}
    assert got.size_band is None and got.input_reference == {} and got.provenance == {}
    # older readers find the z-score's statistics where they look for them
    assert written()[CHECKPOINT_KEY]["intensity_stats"] == {"mean": 100.0, "std": 20.0}


def test_a_file_with_only_the_old_zscore_fields_reads_as_a_global_zscore():
    old = written()
    del old[CHECKPOINT_KEY]["normalization"]
    assert read_model_metadata(old, "old.ckpt").normalization["scheme"] == "global_zscore"


def test_unknown_fields_and_bad_files_are_refused_by_name():
    with pytest.raises(ValueError, match=r"unknown fields \['colour'\]"):
        written(colour="red")
    with pytest.raises(ValueError, match="m.ckpt: no particleseg metadata"):
        read_model_metadata({"state_dict": {}}, "m.ckpt")
    bad = written()
    bad[CHECKPOINT_KEY]["patch_size"] = None
    with pytest.raises(ValueError, match="m.ckpt"):
        read_model_metadata(bad, "m.ckpt")

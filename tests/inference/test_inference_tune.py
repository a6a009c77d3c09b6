"""Tuning a model's thresholds on a labelled split, end to end, and storing them in the model."""

from __future__ import annotations

import json

import pytest
from inference_helpers import labelled_dataset

from particleseg.inference.export import export_model
from particleseg.inference.model import load_checkpoint
from particleseg.inference.tune import main


@pytest.fixture(scope="module")
def val_dataset(tmp_path_factory):
    return labelled_dataset(tmp_path_factory.mktemp("val"), "train")


def test_tune_writes_the_best_thresholds_and_export_stores_them(
    tiny_checkpoint, val_dataset, tmp_path, capsys
):
    out = tmp_path / "tuned.json"
    grid = '{"min_relative_size": [0.005, 0.5], "small_core_distance": [1.0, 2.0]}'
    main([str(tiny_checkpoint), str(val_dataset), str(out), "--grid", grid])
    result = json.loads(out.read_text())
    assert len(result["table"]) == 4 and result["n_scans"] == 2
    best = max(row["f1_instance"] for row in result["table"])
    assert result["score"] == best and set(result["params"]) == {
        "min_relative_size",
        "small_core_distance",
    }
    assert result["samples"] == ["train_000", "train_001"]
    assert "best f1_instance" in capsys.readouterr().out
    # the second run reuses predict's finished outputs (complete folders are kept)
    main([str(tiny_checkpoint), str(val_dataset), str(out), "--grid", grid])
    assert json.loads(out.read_text())["table"] == result["table"]
    model = export_model(tiny_checkpoint, tmp_path / "m.ckpt", postprocess=result["params"])
    assert load_checkpoint(model).postprocess == result["params"]


def test_tune_refuses_a_split_without_scans(tiny_checkpoint, val_dataset, tmp_path, capsys):
    for split, message in [
        ("id_test", "tuning needs labelled scans in split 'id_test' (none there)"),
        ("x", "unknown split 'x'"),
    ]:
        with pytest.raises(SystemExit) as exit_info:
            main(
                [str(tiny_checkpoint), str(val_dataset), str(tmp_path / "t.json"), "--split", split]
            )
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "t.json").exists()

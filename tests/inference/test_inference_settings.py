"""Predict's inference and output defaults: set once in their config groups, read by the code."""

import pytest
from omegaconf import OmegaConf

from particleseg.config import CONF_DIR
from particleseg.inference.settings import (
    INFERENCE_DEFAULTS,
    OUTPUT_DEFAULTS,
    resolve_inference,
    resolve_outputs,
)


def compose(name, overrides=()):
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name=name, overrides=list(overrides))


def test_predict_and_validation_compose_the_defaults_the_code_uses():
    cfg = compose("predict")
    assert OmegaConf.to_container(cfg.inference) == INFERENCE_DEFAULTS
    assert OmegaConf.to_container(cfg.outputs) == OUTPUT_DEFAULTS
    train = compose("train", ["inference.overlap=0.25"])
    assert train.model.module.val_overlap == 0.25  # validation windows as predict's


def test_output_settings_are_completed_and_a_typo_is_refused():
    assert resolve_outputs({"overlay": False}) == {**OUTPUT_DEFAULTS, "overlay": False}
    with pytest.raises(ValueError, match=r"unknown outputs setting\(s\) \['ome_zar'\]"):
        resolve_outputs({"ome_zar": False})


def test_partial_settings_are_completed_and_none_takes_the_default():
    got = resolve_inference({"chunk_size": 64, "tta": None})
    assert got == {**INFERENCE_DEFAULTS, "chunk_size": 64}
    assert resolve_inference(None) == INFERENCE_DEFAULTS


def test_an_unknown_or_replaced_setting_is_refused_by_name():
    with pytest.raises(ValueError, match=r"'autocast'.*now inference.precision"):
        resolve_inference({"autocast": True})
    with pytest.raises(ValueError, match=r"\['chunk'\]"):
        resolve_inference({"chunk": 64})
    with pytest.raises(ValueError, match="inference.engine must be one of"):
        resolve_inference({"engine": "onnx"})

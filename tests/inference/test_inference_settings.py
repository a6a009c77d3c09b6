"""Predict's inference defaults: set once in code, shown unchanged in predict.yaml."""

import pytest
from omegaconf import OmegaConf

from particleseg.config import CONF_DIR
from particleseg.inference.settings import INFERENCE_DEFAULTS, resolve_inference


def test_predict_yaml_shows_the_code_defaults():
    shown = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "predict" / "predict.yaml").inference)
    assert shown == INFERENCE_DEFAULTS


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

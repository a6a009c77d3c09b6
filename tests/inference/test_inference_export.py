"""A model exported from a checkpoint loads without the training state and predicts alike."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from inference_helpers import blobs

from particleseg.inference.export import export_model, main
from particleseg.inference.model import load_checkpoint
from particleseg.inference.sliding_window import predict_probabilities
from particleseg.transforms.intensity import zscore


def probabilities(model, image):
    x = torch.from_numpy(zscore(image, 100.0, 20.0))[None, None]
    return predict_probabilities(model.net, x, model.patch_size)[0].numpy()


@pytest.mark.parametrize("dtype,atol", [("float32", 1e-6), ("float16", 2e-3), ("bfloat16", 2e-2)])
def test_exported_model_predicts_like_the_checkpoint(tiny_checkpoint, tmp_path, dtype, atol):
    out = export_model(tiny_checkpoint, tmp_path / "model.ckpt", dtype)
    original, exported = load_checkpoint(tiny_checkpoint), load_checkpoint(out)
    assert exported.patch_size == original.patch_size
    assert exported.normalization == original.normalization
    assert all(p.dtype == torch.float32 for p in exported.net.parameters())
    image = blobs((20, 20, 20), 4, 4)
    a, b = probabilities(original, image), probabilities(exported, image)
    np.testing.assert_allclose(b, a, atol=atol)
    saved = torch.load(out, weights_only=True)
    assert saved["particleseg"]["exported_from"]["storage_dtype"] == dtype
    assert set(saved) == {"state_dict", "particleseg"}  # no optimizer or loop state


def test_export_refuses_foreign_files_and_bad_dtype(tiny_checkpoint, tmp_path, capsys):
    torch.save({"state_dict": {}}, tmp_path / "other.ckpt")
    with pytest.raises(ValueError, match="no particleseg metadata"):
        export_model(tmp_path / "other.ckpt", tmp_path / "out.ckpt")
    with pytest.raises(ValueError, match="dtype must be one of"):
        export_model(tiny_checkpoint, tmp_path / "out.ckpt", "int8")
    assert not (tmp_path / "out.ckpt").exists()
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path / "other.ckpt"), str(tmp_path / "out.ckpt")])
    assert exit_info.value.code == 2 and "other.ckpt" in capsys.readouterr().err


def test_tuned_thresholds_travel_with_the_model(tiny_checkpoint, tmp_path):
    tuned = tmp_path / "tuned.json"
    tuned.write_text('{"params": {"min_relative_size": 0.05}, "score": 0.9}')
    main([str(tiny_checkpoint), str(tmp_path / "model.ckpt"), "--postprocess", str(tuned)])
    assert load_checkpoint(tmp_path / "model.ckpt").postprocess == {"min_relative_size": 0.05}
    assert load_checkpoint(tiny_checkpoint).postprocess == {}

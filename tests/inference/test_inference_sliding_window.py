"""The in-memory sliding window (validation, particle_size=model) is predict's window code.

Checked against MONAI's ``sliding_window_inference`` (an independent implementation of the same
grid and Gaussian weights) and against predict's chunked network stage on the same scan.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import zarr
from inference_helpers import blobs, run
from monai.inferers import sliding_window_inference

from particleseg.inference.model import load_checkpoint
from particleseg.inference.sliding_window import predict_probabilities
from particleseg.transforms.intensity import zscore


@pytest.mark.parametrize("shape", [(24, 30, 27), (10, 20, 40), (16, 16, 16)])
def test_equals_monai_sliding_window(tiny_checkpoint, shape):
    model = load_checkpoint(tiny_checkpoint)
    x = torch.from_numpy(zscore(blobs(shape, 6, 4), 100.0, 20.0))[None, None]
    ours = predict_probabilities(model.net, x, model.patch_size, sw_batch_size=2)
    with torch.no_grad():
        monai = sliding_window_inference(
            x,
            roi_size=model.patch_size,
            sw_batch_size=1,
            predictor=lambda w: torch.softmax(model.net(w), dim=1),
            overlap=0.5,
            mode="gaussian",
            sigma_scale=0.125,
            padding_mode="constant",
            cval=0.0,
        )
    assert ours.shape == (1, 3, *shape)
    torch.testing.assert_close(ours, monai, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ours.sum(1), torch.ones(1, *shape))


def test_validation_and_predict_give_the_same_map(tiny_checkpoint, tmp_path):
    """At zoom 1 (particle size = the model's target) predict's border-core map is the argmax
    of the in-memory probabilities of the normalized scan, voxel for voxel."""
    scan = blobs((30, 34, 31), 25, 4.5)
    np.save(tmp_path / "scan.npy", scan)
    run(tmp_path / "scan.npy", tmp_path / "out", tiny_checkpoint, 8.0)
    predicted = zarr.open_array(str(tmp_path / "out" / "border_core.zarr"))[...]
    model = load_checkpoint(tiny_checkpoint)
    x = torch.from_numpy(zscore(scan, 100.0, 20.0))[None, None]
    probs = predict_probabilities(model.net, x, model.patch_size)[0]
    np.testing.assert_array_equal(predicted, probs.argmax(0).numpy())


def test_tta_and_bad_input(tiny_checkpoint):
    model = load_checkpoint(tiny_checkpoint)
    x = torch.from_numpy(zscore(blobs((20, 20, 20), 4, 4), 100.0, 20.0))[None, None]
    plain = predict_probabilities(model.net, x, model.patch_size)
    mirrored = predict_probabilities(model.net, x.flip(2, 4), model.patch_size, tta=True)
    flipped_back = mirrored.flip(2, 4)
    tta = predict_probabilities(model.net, x, model.patch_size, tta=True)
    torch.testing.assert_close(flipped_back, tta, atol=1e-5, rtol=1e-5)  # mirror-equivariant
    assert not torch.allclose(plain, tta)
    with pytest.raises(ValueError, match=r"\(B, 1, Z, Y, X\)"):
        predict_probabilities(model.net, x[0], model.patch_size)
    with pytest.raises(ValueError, match="overlap"):
        predict_probabilities(model.net, x, model.patch_size, overlap=1.0)

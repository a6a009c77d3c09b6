"""The window weights: MONAI's Gaussian importance map, value for value, without MONAI."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from monai.data.utils import compute_importance_map

from particleseg.inference.windows import gaussian_weights


@pytest.mark.parametrize(
    ("patch", "sigma_scale"),
    [((16, 16, 16), 0.125), ((96, 96, 96), 0.125), ((20, 33, 8), 0.125), ((5, 7, 9), 0.05)],
)
def test_gaussian_weights_equal_monai_importance_map(patch, sigma_scale):
    ours = gaussian_weights(patch, sigma_scale)
    theirs = compute_importance_map(patch, mode="gaussian", sigma_scale=sigma_scale)
    assert ours.dtype == torch.float32 and ours.shape == patch
    assert torch.equal(ours, theirs.to(torch.float32))
    assert float(ours.min()) >= 1e-3  # the narrow sigma of the last case reaches the floor


def test_predict_does_not_import_monai():
    # MONAI takes 1-2 s to import: predict's start-up has no use for it
    code = "import sys, particleseg.inference.pipeline; print('monai' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"

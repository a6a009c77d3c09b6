"""Fixtures for the inference tests."""

from __future__ import annotations

import pytest
from inference_helpers import write_checkpoint


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """A tiny randomly initialised U-Net checkpoint (patch 16^3, target size 8 voxels)."""
    return write_checkpoint(tmp_path_factory.mktemp("model") / "tiny.ckpt")

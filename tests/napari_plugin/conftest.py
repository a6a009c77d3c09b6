"""Fixtures of the napari plugin tests: a tiny model (the inference tests' helper)."""

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "inference"))

from inference_helpers import blobs, write_checkpoint  # noqa: E402


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """A tiny randomly initialised U-Net that predicts some cores (target size 8 voxels)."""
    return write_checkpoint(tmp_path_factory.mktemp("model") / "tiny.ckpt", bias_core=2.0)


@pytest.fixture
def scan(tmp_path):
    """A 24^3 uint16 scan of bright blobs, with its spacing and particle size in a sidecar."""
    import json

    import tifffile

    path = tmp_path / "scan.tif"
    tifffile.imwrite(path, blobs((24, 24, 24), 10, 4))
    path.with_name("scan.meta.json").write_text(
        json.dumps({"spacing": [2.0, 1.0, 1.0], "particle_size_px": 8})
    )
    return path

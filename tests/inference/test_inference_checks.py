"""Predict's checks at the door (issue 18): each bad scan is refused with a message naming the
file and the problem, leaving no output; doubtful results carry warnings in summary.json."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from inference_helpers import blobs, run

from particleseg.inference.checks import result_warnings


def float_scan(tmp_path, name="scan.tif"):
    image = blobs((20, 20, 20), 8, 4).astype(np.float32)
    tifffile.imwrite(tmp_path / name, image)
    return tmp_path / name, image


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_one_non_finite_voxel_is_refused_and_leaves_no_output(tiny_checkpoint, tmp_path, bad):
    path, image = float_scan(tmp_path)
    image[13, 4, 5] = bad
    tifffile.imwrite(path, image)
    with pytest.raises(ValueError, match=r"scan.tif: image contains non-finite .*first at z=13"):
        run(path, tmp_path / "out", tiny_checkpoint, 8.0)
    assert not (tmp_path / "out").exists()


def test_constant_scan_is_refused(tiny_checkpoint, tmp_path):
    np.save(tmp_path / "flat.npy", np.full((20, 20, 20), 7, np.uint16))
    with pytest.raises(ValueError, match=r"flat.npy: .*constant"):
        run(tmp_path / "flat.npy", tmp_path / "out", tiny_checkpoint, 8.0)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("shape", [(5, 5, 5), (4, 40, 40)])
def test_scan_thinner_than_one_particle_is_refused(tiny_checkpoint, tmp_path, shape):
    np.save(tmp_path / "thin.npy", blobs(shape, 3, 2))
    with pytest.raises(
        ValueError, match=r"thin.npy: the scan of shape .* thinner than one particle"
    ):
        run(tmp_path / "thin.npy", tmp_path / "out", tiny_checkpoint, 8.0)
    assert not (tmp_path / "out").exists()


def test_grid_thinner_than_a_window_is_padded_with_a_warning(tiny_checkpoint, tmp_path):
    np.save(tmp_path / "slab.npy", blobs((10, 40, 40), 12, 4))  # network grid 10 < patch 16
    summary = run(tmp_path / "slab.npy", tmp_path / "out", tiny_checkpoint, 8.0)
    assert any("thinner than one window" in w and "z (10 < 16)" in w for w in summary["warnings"])


def test_a_clean_run_has_no_warnings(tiny_checkpoint, tmp_path):
    tifffile.imwrite(tmp_path / "scan.tif", blobs((20, 20, 20), 8, 4))
    summary = run(tmp_path / "scan.tif", tmp_path / "out", tiny_checkpoint, 8.0)
    assert summary["particles"] > 1 and summary["warnings"] == []


def test_zero_or_one_particle_results_are_warned(tmp_path):
    from particleseg.inference.inputs import resolve_scan

    np.save(tmp_path / "s.npy", blobs((20, 20, 20), 3, 3))
    scan = resolve_scan(tmp_path / "s.npy", particle_size_px=8.0)
    assert "no particle found" in result_warnings(scan, 0)[0]
    assert "single particle" in result_warnings(scan, 1)[0]
    assert result_warnings(scan, 2) == []


def test_a_scan_unlike_the_models_reference_scans_is_warned(tiny_checkpoint, tmp_path):
    from particleseg.inference.export import main as export
    from particleseg.inference.model import load_checkpoint
    from particleseg.io.dataset import write_dataset_json

    folder = tmp_path / "data"
    (folder / "images").mkdir(parents=True)
    samples = []
    for i in range(3):  # bright balls in a dark matrix, like blobs()
        np.save(folder / "images" / f"s{i}.npy", blobs((20, 20, 20), 8, 4, seed=i))
        np.save(folder / "images" / f"l{i}.npy", np.zeros((20, 20, 20), np.uint16))
        samples.append(
            {
                "name": f"s{i}",
                "image": f"images/s{i}.npy",
                "label": f"images/l{i}.npy",
                "split": "train",
                "spacing": [1.0, 1.0, 1.0],
                "particle_size_px": 8.0,
            }
        )
    write_dataset_json(folder, "tiny", samples)
    model = tmp_path / "model.ckpt"
    export([str(tiny_checkpoint), str(model), "--reference", str(folder)])
    reference = load_checkpoint(model).input_reference
    assert reference["names"] == ["s0", "s1", "s2"] and reference["threshold"] > 0

    tifffile.imwrite(tmp_path / "like.tif", blobs((20, 20, 20), 8, 4, seed=7))
    like = run(tmp_path / "like.tif", tmp_path / "out_like", model, 8.0)
    assert like["input_reference"]["available"] and not like["input_reference"]["far"]
    assert not any("histogram" in w for w in like["warnings"])

    inverted = 220 - blobs((20, 20, 20), 8, 4, seed=7)  # dark balls in a bright matrix
    tifffile.imwrite(tmp_path / "unlike.tif", inverted)
    unlike = run(tmp_path / "unlike.tif", tmp_path / "out_unlike", model, 8.0)
    assert unlike["input_reference"]["far"]
    assert any("grey-value histogram" in w and "s" in w for w in unlike["warnings"])

    plain = run(tmp_path / "like.tif", tmp_path / "out_plain", tiny_checkpoint, 8.0)
    assert plain["input_reference"] == {"available": False}

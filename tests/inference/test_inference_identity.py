"""Result identity (issue 18): a complete output answers only the input and settings it was made
from; anything else is refused with a message naming what differs."""

from __future__ import annotations

import json
import os

import pytest
import tifffile
from inference_helpers import blobs, run

from particleseg.config import path_key
from particleseg.inference.run_state import differences, fingerprint


@pytest.fixture
def done(tiny_checkpoint, tmp_path):
    tifffile.imwrite(tmp_path / "scan.tif", blobs((20, 20, 20), 8, 4))
    out = tmp_path / "out"
    summary = run(tmp_path / "scan.tif", out, tiny_checkpoint, 8.0)
    return tmp_path / "scan.tif", out, summary


def test_summary_records_the_fingerprint_of_input_model_and_settings(done):
    scan, out, summary = done
    recorded = json.loads((out / "summary.json").read_text())["fingerprint"]
    assert recorded == summary["fingerprint"]
    assert recorded["input"]["path"] == str(scan.resolve())
    assert recorded["input"]["bytes"] == scan.stat().st_size
    assert len(recorded["model_sha256"]) == 64
    assert recorded["settings"]["postprocess"]["small_core_fraction"] == 0.95


def test_other_particle_size_into_a_complete_folder_is_refused(done, tiny_checkpoint):
    scan, out, _ = done
    with pytest.raises(ValueError, match=r"out: holds a complete result .*particle_size_px"):
        run(scan, out, tiny_checkpoint, 6.0)


def test_another_scan_with_the_same_name_is_refused(done, tiny_checkpoint, tmp_path):
    _, out, _ = done
    (tmp_path / "x").mkdir()
    other = tmp_path / "x" / "scan.tif"
    tifffile.imwrite(other, blobs((20, 20, 20), 9, 4, seed=3))
    with pytest.raises(ValueError, match=r"complete result .*input\.path"):
        run(other, out, tiny_checkpoint, 8.0)


def test_a_rewritten_input_is_refused(done, tiny_checkpoint):
    scan, out, _ = done
    stamp = scan.stat().st_mtime_ns
    tifffile.imwrite(scan, blobs((20, 20, 20), 9, 4, seed=5))
    os.utime(scan, ns=(stamp, stamp))  # same time: the sampled bytes still tell
    with pytest.raises(ValueError, match=r"input\.sample_sha256"):
        run(scan, out, tiny_checkpoint, 8.0)


def test_other_postprocessing_is_refused_and_overwrite_replaces(done, tiny_checkpoint):
    scan, out, first = done
    post = {"halo": 4, "small_core_distance": 1.0, "small_core_fraction": 0.5}
    with pytest.raises(ValueError, match=r"settings\.postprocess\.small_core_fraction"):
        run(scan, out, tiny_checkpoint, 8.0, postprocess=post)
    redo = run(scan, out, tiny_checkpoint, 8.0, postprocess=post, overwrite=True)
    assert redo["fingerprint"]["settings"]["postprocess"]["small_core_fraction"] == 0.5
    assert redo["fingerprint"]["input"] == first["fingerprint"]["input"]


def test_a_result_without_fingerprint_is_not_trusted(done, tiny_checkpoint):
    scan, out, _ = done
    doc = json.loads((out / "summary.json").read_text())
    del doc["fingerprint"]
    (out / "summary.json").write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="without a fingerprint.*overwrite=true"):
        run(scan, out, tiny_checkpoint, 8.0)


def test_output_that_is_a_file_or_not_writable_is_refused(tiny_checkpoint, tmp_path):
    tifffile.imwrite(tmp_path / "scan.tif", blobs((20, 20, 20), 8, 4))
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match=r"file: the output must be a folder"):
        run(tmp_path / "scan.tif", tmp_path / "file", tiny_checkpoint, 8.0)
    with pytest.raises(ValueError, match=r"file/sub: cannot write the output folder"):
        run(tmp_path / "scan.tif", tmp_path / "file" / "sub", tiny_checkpoint, 8.0)


def test_differences_name_nested_keys():
    old = {"a": 1, "s": {"p": {"x": 1, "y": 2}}, "gone": 3}
    new = {"a": 1, "s": {"p": {"x": 1, "y": 5}}, "new": 4}
    assert differences(old, new) == ["gone", "new", "s.p.y"]
    assert differences(old, old) == []


def test_default_output_names_differ_for_inputs_with_one_stem(tmp_path):
    a, b = path_key(str(tmp_path / "a" / "scan.tif")), path_key(str(tmp_path / "b" / "scan.tif"))
    assert a.startswith("scan-") and b.startswith("scan-") and a != b
    assert path_key(None, "sample") == "sample"
    assert path_key(str(tmp_path / "a" / "scan.tif")) == a  # stable


def test_an_int8_run_is_keyed_on_its_int8_weights_too(tmp_path):
    """Quantizing the same model again gives other int8 weights: a run resumed or reused with
    them must not pass for the first one's (fp32 and bf16 runs do not depend on that file)."""
    from types import SimpleNamespace

    (tmp_path / "scan.npy").write_bytes(b"scan")
    (tmp_path / "m.ckpt").write_bytes(b"model")
    scan = SimpleNamespace(path=tmp_path / "scan.npy", shape=(4, 4, 4), particle_size_px=(2, 2, 2))
    model = SimpleNamespace(path=tmp_path / "m.ckpt")
    plan = SimpleNamespace(network_shape=(4, 4, 4), chunk_size=(4, 4, 4))

    def facts(precision):
        return fingerprint(scan, model, plan, {"inference": {"precision": precision}})

    (tmp_path / "m.int8.bin").write_bytes(b"first calibration")
    first = facts("int8")
    (tmp_path / "m.int8.bin").write_bytes(b"second calibration")
    assert differences(first, facts("int8")) == ["int8_sha256"]
    assert "int8_sha256" not in facts("bf16")
    assert differences(facts("bf16"), facts("bf16")) == []

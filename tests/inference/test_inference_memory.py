"""The peak-memory estimate: flat in the scan's size, refusing settings that cannot fit."""

import pytest

from particleseg.inference import memory
from particleseg.inference.memory import check_memory, estimate_peak, settings_that_fit

PATCH = (64, 64, 64)


def test_stages_follow_the_settings_not_the_scan():
    base = 300 * 2**20
    peak, stages = estimate_peak(base, {"chunk_size": 128}, 8, 2, PATCH, (1.5,) * 3)
    assert peak == base + stages["network"] + max(stages["instances"], stages["resample"])
    # the network stage: the chunk's region and one window's activations
    region = (128 + 64) ** 3 * memory.NETWORK_BYTES_PER_VOXEL
    assert stages["network"] == region + 64**3 * memory.ACTIVATION_BYTES_PER_VOXEL
    # the instance stage: per worker the larger of a halo'd block and the far-voxel region
    far = max(2**23, 4 * 128**3) * memory.FAR_BYTES_PER_VOXEL
    per_worker = max(144**3 * memory.INSTANCE_BYTES_PER_VOXEL, far)
    assert stages["instances"] == 2 * per_worker
    one = estimate_peak(base, {"chunk_size": 128}, 8, 1, PATCH, (1.5,) * 3)[1]
    assert one["instances"] * 2 == stages["instances"]
    # smaller chunks, a smaller network stage; a larger zoom, a larger resample source box
    small = estimate_peak(base, {"chunk_size": 64}, 8, 2, PATCH, (1.5,) * 3)[1]
    assert small["network"] < stages["network"]
    zoomed = estimate_peak(base, {"chunk_size": 128}, 8, 2, PATCH, (3.0,) * 3)[1]
    assert zoomed["resample"] > stages["resample"]


def test_settings_that_fit_are_smaller_and_do_fit():
    base = 300 * 2**20
    inference = {"chunk_size": 192}
    need = estimate_peak(base, inference, 8, 4, PATCH, (1.0,) * 3)[0] - base
    fits = settings_that_fit(base, need // 2, inference, 8, 4, PATCH, (1.0,) * 3)
    assert fits
    for hint in fits:
        chunk, workers = (int(part.split("=")[1]) for part in hint.split())
        got = estimate_peak(base, {"chunk_size": chunk}, 8, workers, PATCH, (1.0,) * 3)[0]
        assert got - base <= need // 2
    assert settings_that_fit(base, 1, inference, 8, 4, PATCH, (1.0,) * 3) == []


def test_check_memory_names_the_scan_and_what_fits(monkeypatch, tmp_path):
    scan = tmp_path / "scan.tif"
    monkeypatch.setattr(memory, "available_bytes", lambda: 10 * 2**30)
    facts = check_memory(scan, {"chunk_size": 128}, 8, {"num_workers": 2}, PATCH, (1.0,) * 3)
    assert facts["memory_available_bytes"] == 10 * 2**30
    assert facts["peak_memory_bytes"] > max(facts["memory_by_stage_bytes"].values())
    # room for one worker's stages, not for four
    one_worker = estimate_peak(0, {"chunk_size": 128}, 8, 1, PATCH, (1.0,) * 3)[0]
    monkeypatch.setattr(memory, "available_bytes", lambda: one_worker)
    with pytest.raises(ValueError, match=r"scan\.tif: predict would need about .* GiB") as err:
        check_memory(scan, {"chunk_size": 128}, 8, {"num_workers": 4}, PATCH, (1.0,) * 3)
    assert "dask.num_workers=" in str(err.value) and "force=true" in str(err.value)
    monkeypatch.setattr(memory, "available_bytes", lambda: 2**20)
    with pytest.raises(ValueError, match="no smaller chunk or fewer workers fit"):
        check_memory(scan, {"chunk_size": 128}, 8, {"num_workers": 4}, PATCH, (1.0,) * 3)
    monkeypatch.setattr(memory, "available_bytes", lambda: None)  # unknown: no refusal
    assert check_memory(scan, {}, 8, {}, PATCH, (1.0,) * 3)["memory_available_bytes"] is None

"""predict.py as a user runs it: killed with SIGKILL at several moments and run again, it gives
the output of an uninterrupted run; two DDP processes (gloo) give the output of one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile
import zarr
from inference_helpers import blobs, write_checkpoint

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    tifffile.imwrite(d / "scan.tif", blobs((48, 50, 45), 60, 5))
    write_checkpoint(d / "tiny.ckpt", bias_core=0.5)
    return d


def command(case: Path, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        str(ROOT / "predict.py"),
        f"input={case / 'scan.tif'}",
        f"checkpoint={case / 'tiny.ckpt'}",
        "particle_size_px=10",
        f"output={out}",
        "inference.chunk_size=16",
        "trainer.enable_progress_bar=false",
        *extra,
    ]


def env():
    e = dict(os.environ, PYTHONUNBUFFERED="1")
    for key in ("LOCAL_RANK", "NODE_RANK", "WORLD_SIZE", "RANK"):
        e.pop(key, None)
    return e


def predict(case, out, *extra):
    done = subprocess.run(
        command(case, out, *extra),
        cwd=ROOT,
        env=env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return zarr.open_array(str(out / "instances.zarr"))[...]


def kill_when_seen(case: Path, out: Path, kill_when: str) -> None:
    """Start predict into ``out`` and SIGKILL it once ``out / kill_when`` exists (skip the test
    if the run finishes first)."""
    proc = subprocess.Popen(
        command(case, out),
        cwd=ROOT,
        env=env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    target = out / kill_when
    deadline = time.monotonic() + 240
    while not target.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    if (out / "summary.json").exists():
        pytest.skip(f"the run finished before {kill_when} was seen")  # too fast to kill here


@pytest.fixture(scope="module")
def reference(case):
    return predict(case, case / "reference")


@pytest.mark.slow  # 21 s per engine: two processes (the default suite keeps under 10 minutes)
@pytest.mark.parametrize("engine", ["openvino", "torch"])
def test_two_ddp_processes_equal_one(case, engine):
    settings = (f"inference.engine={engine}", "inference.precision=fp32")
    reference = predict(case, case / f"one-{engine}", *settings)
    out = case / f"ddp-{engine}"
    labels = predict(
        case,
        out,
        *settings,
        "trainer.devices=2",
        "trainer.strategy=ddp",
        "trainer.accelerator=cpu",
    )
    assert reference.max() > 100
    np.testing.assert_array_equal(labels, reference)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["windows"]["engine"] == {"engine": engine, "precision": "fp32"}


@pytest.mark.parametrize(
    "kill_when",
    [
        ".work/done/3",  # in the middle of the network stage
        # between the network and the instance stage, during the resampling (slow: 20 s each)
        pytest.param(".work/stage-network.done", marks=pytest.mark.slow),
        pytest.param(".work/stage-instances.done", marks=pytest.mark.slow),
        ".work/stage-filter.done",  # before the results are moved and summarized
    ],
)
def test_sigkill_then_same_command_resumes_to_identical_output(case, reference, kill_when):
    out = case / ("killed-" + kill_when.replace("/", "_").replace(".", ""))
    kill_when_seen(case, out, kill_when)
    assert not (out / "instances.tif").exists()
    labels = predict(case, out)
    np.testing.assert_array_equal(labels, reference)
    windows = json.loads((out / "summary.json").read_text())["windows"]
    assert windows["forward_passes"] == windows["plain_sliding_window"]
    if kill_when == ".work/done/3":  # the resumed run skipped the chunks already done
        assert windows["chunks_computed_last_run"] < windows["chunks"]
    np.testing.assert_array_equal(tifffile.imread(out / "instances.tif"), reference)
    assert not (out / ".work").exists()


@pytest.mark.slow  # 21 s: spawned worker processes
def test_spawned_dataloader_workers_give_identical_output(case, reference):
    labels = predict(case, case / "workers", "inference.num_workers=1")
    np.testing.assert_array_equal(labels, reference)


def test_a_run_begun_with_another_engine_is_not_resumed_silently(case):
    """inference.engine=auto resolves by machine: a run killed on a machine with OpenVINO and
    resumed on one without would mix two engines' chunks. Simulated by recording the other
    engine in the unfinished run's engine.json: the same command must refuse (exit 2, naming
    the folder and both engines) and leave the chunks as they were."""
    out = case / "other-engine"
    kill_when_seen(case, out, ".work/done/3")
    record = out / ".work" / "engine.json"
    began = json.loads(record.read_text())
    other = {"engine": {"openvino": "torch"}.get(began["engine"], "openvino"), "precision": "fp32"}
    record.write_text(json.dumps(other))
    done_before = sorted(p.name for p in (out / ".work" / "done").iterdir())
    refused = subprocess.run(
        command(case, out), cwd=ROOT, env=env(), capture_output=True, text=True, timeout=300
    )
    assert refused.returncode == 2, refused.stdout[-2000:] + refused.stderr[-2000:]
    assert "Traceback" not in refused.stderr
    assert str(out) in refused.stderr and f"{other['engine']} fp32" in refused.stderr
    assert f"{began['engine']} {began['precision']}" in refused.stderr
    assert not (out / "summary.json").exists()
    assert sorted(p.name for p in (out / ".work" / "done").iterdir()) == done_before

"""The "Segment particles" widget, headless: runs predict, shows progress, cancels, resumes."""

import json
import threading

import numpy as np
import pytest
import zarr

pytest.importorskip("napari")
pytest.importorskip("magicgui")

from particleseg.napari_plugin.predict_widget import (  # noqa: E402
    PredictCancelled,
    PredictTool,
    predict_overrides,
    predict_steps,
)


def tool_for(scan, out, model, size="8"):
    from napari.components import ViewerModel

    tool = PredictTool(ViewerModel())
    tool.image.value, tool.out.value, tool.size.value, tool.model.value = scan, out, size, model
    return tool


@pytest.mark.slow  # the worker-thread test below runs the panel to a result too
def test_widget_runs_predict_and_opens_the_result_with_scale(scan, tmp_path, tiny_model):
    out = tmp_path / "out"
    tool = tool_for(scan, out, str(tiny_model))
    tool.run(blocking=True)
    assert tool.status.value == f"done: {out}", tool.status.value
    summary = json.loads((out / "summary.json").read_text())
    assert summary["particle_size"] | {"estimate": None} == {
        "used_px_zyx": [8.0, 8.0, 8.0],
        "source": "particle_size_px",  # the panel's field, as the command's override
        "estimate": None,
    }
    layer = tool.viewer.layers["out instances"]
    np.testing.assert_array_equal(layer.scale, [2.0, 1.0, 1.0])
    labels = zarr.open_array(str(out / "instances.zarr"))[...]
    np.testing.assert_array_equal(
        np.asarray(layer.data[0] if layer.multiscale else layer.data), labels
    )
    assert tool.progress.value == tool.progress.max >= 1
    assert tool.run_button.enabled and not tool.cancel_button.enabled


@pytest.mark.slow  # 15 s; the worker-thread test below cancels and resumes too
def test_cancel_stops_between_chunks_and_the_same_settings_resume(scan, tmp_path, tiny_model):
    out = tmp_path / "out"
    overrides = predict_overrides(scan, out, "8", str(tiny_model))
    overrides += ["inference.chunk_size=16"]  # several chunks of the 24^3 network grid
    cancel = threading.Event()
    seen = []
    steps = predict_steps(overrides, cancel)
    with pytest.raises(PredictCancelled, match="resume"):
        for stage, done, total in steps:
            seen.append((stage, done, total))
            if stage == "network" and done == 1:
                cancel.set()
    total = seen[-1][2]
    assert total > 1 and seen[-1][1] < total  # stopped before the last chunk
    assert not (out / "summary.json").exists()  # nothing that looks complete
    cancel.clear()
    steps = predict_steps(overrides, cancel)
    try:
        while True:
            next(steps)
    except StopIteration as stop:
        assert stop.value == out
    summary = json.loads((out / "summary.json").read_text())
    assert summary["windows"]["chunks_computed_last_run"] < total


def test_bad_fields_are_shown_in_the_panel_not_raised(scan, tmp_path, tiny_model):
    tool = tool_for(tmp_path / "missing.tif", tmp_path / "out", str(tiny_model))
    tool.run(blocking=True)
    assert tool.status.value.startswith("error:") and "missing.tif" in tool.status.value
    tool = tool_for(scan, tmp_path / "out", str(tiny_model), size="large")
    tool.run(blocking=True)
    assert "expected 'model', 'auto' or a diameter" in tool.status.value
    tool = tool_for(scan, tmp_path / "out", str(tmp_path / "no_model.ckpt"))
    tool.run(blocking=True)
    assert tool.status.value.startswith("error:") and "no_model.ckpt" in tool.status.value
    assert not (tmp_path / "out" / "summary.json").exists()


def test_overrides_name_the_size_choice_or_the_diameter(scan):
    assert "particle_size=model" in predict_overrides(scan, None, "model")
    assert "particle_size_px=12.5" in predict_overrides(scan, None, " 12.5 ")
    assert not any(o.startswith("output=") for o in predict_overrides(scan, None, "auto"))
    with pytest.raises(ValueError, match="diameter"):
        predict_overrides(scan, None, "-3")


def wait_for(tool, seconds=300):
    """Run Qt's event loop until the worker has finished (its handlers re-enable Run)."""
    import time

    from qtpy.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    end = time.monotonic() + seconds
    while not tool.run_button.enabled and time.monotonic() < end:
        app.processEvents()
        time.sleep(0.02)
    app.processEvents()
    assert tool.run_button.enabled, f"still running after {seconds} s: {tool.status.value}"


def test_in_a_worker_thread_cancel_then_run_again(scan, tmp_path, tiny_model):
    from qtpy.QtWidgets import QApplication

    QApplication.instance() or QApplication([])
    out = tmp_path / "out"
    tool = tool_for(scan, out, str(tiny_model))
    tool.run()  # returns at once: predict runs in napari's worker thread
    assert not tool.run_button.enabled and tool.cancel_button.enabled
    tool.cancel_button.clicked()  # before the first chunk: the network stage stops at its start
    wait_for(tool)
    assert "cancelled" in tool.status.value and not (out / "summary.json").exists()
    tool.run()
    wait_for(tool)
    assert tool.status.value == f"done: {out}"
    layer = tool.viewer.layers["out instances"]
    np.testing.assert_array_equal(layer.scale, [2.0, 1.0, 1.0])
    labels = zarr.open_array(str(out / "instances.zarr"))[...]
    assert not layer.multiscale  # 24^3: the pyramid has one level
    np.testing.assert_array_equal(np.asarray(layer.data), labels)
    assert tool.progress.value == tool.progress.max >= 1

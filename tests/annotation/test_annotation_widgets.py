"""The napari tools, driven headless (QT_QPA_PLATFORM=offscreen).

The tools run in a ``napari.Viewer(show=False)`` where OpenGL works; where it does not (a machine
without a display or GPU driver: napari's canvas cannot even add a layer there) they run in a
``napari.components.ViewerModel`` (same layers and dims, no canvas) and the screenshots are drawn
by ``render_slice``. Screenshots go to pytest's tmp_path; with PARTICLESEG_UPDATE_SCREENSHOTS=1
they are written to docs/annotation/ instead (the pictures of docs/annotation.md).
"""

import os
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from annotation_helpers import (  # noqa: E402
    dice,
    random_balls,
    stripe_scribbles,
    touching_pair,
    two_phase,
)

napari = pytest.importorskip("napari")
pytest.importorskip("magicgui")

from particleseg.annotation.screenshots import opengl_available, save_screenshot  # noqa: E402
from particleseg.annotation.widgets import (  # noqa: E402
    BORDER_NAME,
    INSTANCES_NAME,
    MARKERS_NAME,
    PREVIEW_NAME,
    add_annotation_tools,
    launch,
)
from particleseg.io import load_dataset, write_volume  # noqa: E402

DOCS = Path(__file__).resolve().parents[2] / "docs" / "annotation"
MAX_PNG_BYTES = 300_000


@pytest.fixture
def shots(tmp_path):
    return DOCS if os.environ.get("PARTICLESEG_UPDATE_SCREENSHOTS") == "1" else tmp_path


def _new_viewer():
    """A hidden napari.Viewer if OpenGL works here, else a ViewerModel."""
    from napari.components import ViewerModel

    return napari.Viewer(show=False) if opengl_available() else ViewerModel()


@pytest.fixture
def viewer():
    v = _new_viewer()
    yield v
    if hasattr(v, "close"):
        v.close()


@pytest.fixture(scope="module")
def ct_scan():
    from particleseg.synth import make_sample
    from particleseg.synth.sample import CT, SCENE

    scene = dict(SCENE, size_median_px=18, packing=0.3)
    image, labels, _ = make_sample((24, 112, 112), scene, CT, "fast", 11)
    return image, labels


def _check_png(path):
    from matplotlib.image import imread

    assert path.is_file() and path.stat().st_size < MAX_PNG_BYTES
    picture = imread(path)
    assert picture.shape[0] > 100 and picture.shape[1] > 200
    assert picture[..., :3].std() > 0.05  # not blank


def _scribble_session(viewer, image, truth, sigmas, trees):
    """Drive the scribble tool: new layer, paint, train, refine; return (tools, layers)."""
    tools = add_annotation_tools(viewer)
    layer = viewer.add_image(image, name="scan", metadata={"spacing": [0.01] * 3, "unit": "mm"})
    tools.scribble.image.value = layer
    scribbles = tools.scribble.new_scribble_layer()
    assert scribbles.data.shape == image.shape and scribbles.data.dtype == np.uint8
    z = image.shape[0]
    scribbles.data = stripe_scribbles(
        truth, slices=[z // 4, z // 2, 3 * z // 4], every=3, erode=1, every_bg=4, band=3
    )
    tools.scribble.sigmas.value = sigmas
    tools.scribble.n_estimators.value = trees
    preview = tools.scribble.train()
    assert preview.name == PREVIEW_NAME
    first = tools.scribble.model
    # refinement: a second "Train" adds the new strokes to the same classifier
    more = np.asarray(scribbles.data).copy()
    extra_slice = z // 2 + 1
    assert truth[extra_slice].any()
    more[extra_slice][(more[extra_slice] == 0) & truth[extra_slice]] = 1
    scribbles.data = more
    tools.scribble.train()
    assert tools.scribble.model.n_scribbled > first.n_scribbled
    return tools, layer, scribbles, preview


def test_scribble_tool_train_refine_accept_save(viewer, tmp_path, monkeypatch):
    labels = random_balls((20, 48, 48), 8, (3, 6), seed=5)
    truth = labels > 0
    image = two_phase(labels, noise=0.2, seed=5)
    tools, layer, _, preview = _scribble_session(viewer, image, truth, "1, 2", 10)
    assert dice(np.asarray(preview.data) == 1, truth) > 0.9
    tools.scribble.min_size.value = 5
    instances = tools.scribble.accept()
    assert instances.name == INSTANCES_NAME
    assert abs(int(np.asarray(instances.data).max()) - int(labels.max())) <= 1
    monkeypatch.chdir(tmp_path)
    tools.save.root.line_edit.value = "data/mine"  # as typed by a user
    tools.save.labels.value = instances
    assert tools.save.spacing.value == "0.01, 0.01, 0.01" and tools.save.name.value == "scan"
    tools.save.save()
    entry = load_dataset(tmp_path / "data" / "mine").sample("scan")
    assert entry.metadata.particle_size_px > 0 and entry.metadata.spacing == (0.01,) * 3
    assert "saved scan" in tools.save.status.value
    tools.scribble.reset()
    assert tools.scribble.model is None


@pytest.mark.slow
def test_scribble_screenshots_on_a_ct_scan(viewer, ct_scan, shots, tmp_path, monkeypatch):
    image, labels = ct_scan
    truth = labels > 0
    tools, layer, scribbles, preview = _scribble_session(viewer, image, truth, "1, 2, 4, 8", 30)
    assert dice(np.asarray(preview.data) == 1, truth) > 0.85
    tools.scribble.split_touching.value = True
    tools.scribble.min_size.value = 20
    instances = tools.scribble.accept()
    viewer.dims.set_point(0, 12)
    preview.visible, instances.visible = True, False
    _check_png(save_screenshot(viewer, shots / "scribble_preview.png", tools.scribble.widget))
    preview.visible, scribbles.visible, instances.visible = False, False, True
    _check_png(save_screenshot(viewer, shots / "instances.png", tools.scribble.widget))
    monkeypatch.chdir(tmp_path)
    tools.save.root.line_edit.value = "data/mine"  # as typed by a user
    tools.save.labels.value = instances
    tools.save.save()
    _check_png(save_screenshot(viewer, shots / "save_sample.png", tools.save.widget))


def test_split_tool(viewer, shots):
    labels, truth_a, truth_b, ca, cb, contact = touching_pair(r=14, gap=1.5, pad=6)
    image = two_phase(labels, noise=0.15)
    tools = add_annotation_tools(viewer)
    viewer.add_image(image, name="scan")
    layer = viewer.add_labels(labels, name=INSTANCES_NAME)
    tools.split.labels.value = layer
    markers, border = tools.split.new_layers()
    assert markers.name == MARKERS_NAME and border.name == BORDER_NAME
    markers.data = np.array([ca, cb], float)
    border.add_paths([np.array([(ca[0], ca[1] - 14, contact), (ca[0], ca[1] + 14, contact)])])
    viewer.dims.set_point(0, ca[0])
    _check_png(save_screenshot(viewer, shots / "split_before.png", tools.split.widget))
    assert tools.split.split() == 2  # particle id 0: the id under the first marker
    out = np.asarray(layer.data)
    assert (out == 1).sum() and ((out == 3) & truth_b).sum() / truth_b.sum() > 0.9
    assert len(markers.data) == 0 and len(border.data) == 0
    _check_png(save_screenshot(viewer, shots / "split_after.png", tools.split.widget))
    tools.split.undo()
    np.testing.assert_array_equal(np.asarray(layer.data), labels)
    # a bad click reports in the status line instead of raising in the GUI
    tools.split.buttons["Split"].changed.emit(True)
    assert tools.split.status.value.startswith("error:")


def test_launch_opens_files(tmp_path):
    labels, *_ = touching_pair(r=6)
    image = two_phase(labels)
    write_volume(tmp_path / "scan.tif", image, spacing=(0.5, 0.5, 0.5))
    write_volume(tmp_path / "labels.tif", labels)
    v = _new_viewer()
    tools = launch(tmp_path / "scan.tif", labels=tmp_path / "labels.tif", show=False, viewer=v)
    try:
        assert [layer.name for layer in tools.viewer.layers] == ["image", INSTANCES_NAME]
        assert tools.scribble.image.value is tools.viewer.layers["image"]
        assert tools.save.spacing.value == "0.5, 0.5, 0.5" and tools.save.name.value == "scan"
    finally:
        if hasattr(v, "close"):
            v.close()

"""Phase maps of every kind of scene, and scenes without a resin cylinder."""

import cc3d
import numpy as np
import pytest
import scipy.ndimage as ndi

from particleseg.synth.granular import GranularParams, render_granular
from particleseg.synth.phases import AIR, MATERIAL0, PORE, VOID
from particleseg.synth.scene import SceneParams, render_scene

SMALL = dict(size_median_px=8.0, size_range_px=(3.0, 16.0), n_bubbles=1)
GRAINS = dict(size_median_px=8.0, size_range_px=(3.0, 20.0), inclusion_prob=0.3, pore_prob=0.3)
KINDS = {
    "cylinder": lambda: render_scene((24, 48, 48), SceneParams(pore_prob=0.5, **SMALL), 1),
    "cylinder_open_water": lambda: render_scene(
        (24, 48, 48), SceneParams(container="none", resin_mu=0.004, packing=0.3, **SMALL), 2
    ),
    "cylinder_open_air": lambda: render_scene(
        (24, 48, 48), SceneParams(container="none", resin_mu=0.0, packing=0.3, **SMALL), 3
    ),
    "granular": lambda: render_granular((24, 48, 48), GranularParams(**GRAINS), 4),
    "granular_container": lambda: render_granular(
        (24, 48, 48), GranularParams(container="cylinder", matrix_mu=0.004, **GRAINS), 5
    ),
}


@pytest.fixture(scope="module")
def scenes():
    return {name: make() for name, make in KINDS.items()}


def assert_phases_match_labels(scene):
    """Unlabelled voxels are never a mineral; labelled voxels are a mineral or a pore."""
    phases, labels = scene.phases, scene.labels
    assert phases.dtype == np.uint8 and phases.shape == labels.shape
    assert not np.any(phases[labels == 0] >= MATERIAL0)
    code = phases[labels > 0]
    assert np.all((code == PORE) | (code >= MATERIAL0))
    assert int(phases.max()) < MATERIAL0 + len(scene.info["phase_mu"])


@pytest.mark.parametrize("kind", list(KINDS))
def test_phase_map_consistent_with_labels_for_every_kind(scenes, kind):
    scene = scenes[kind]
    n = scene.info["n_particles"]
    assert n > 0 and np.array_equal(np.unique(scene.labels), np.arange(n + 1))
    assert cc3d.connected_components(scene.labels, connectivity=6).max() == n
    assert_phases_match_labels(scene)
    assert scene.mu.dtype == np.float32 and np.isfinite(scene.mu).all() and scene.mu.min() >= 0


@pytest.mark.parametrize("kind", ["cylinder_open_water", "cylinder_open_air", "granular"])
def test_no_container_has_no_air_and_particles_cut_by_all_faces(scenes, kind):
    scene = scenes[kind]
    assert not np.any(scene.phases == AIR), "the matrix fills the field of view"
    labels = scene.labels
    faces = {
        "y0": labels[:, 0],
        "y1": labels[:, -1],
        "x0": labels[:, :, 0],
        "x1": labels[:, :, -1],
        "z0": labels[0],
        "z1": labels[-1],
    }
    for name, face in faces.items():
        assert face.any(), f"no particle cut by face {name}"
    if kind.startswith("cylinder"):
        assert scene.info["container"] == "none" and scene.info["cylinder_radius_px"] is None
        assert any(scene.info["cut_by_z_face"])


def test_open_matrix_attenuation_fills_the_field_of_view(scenes):
    for name, matrix_mu in (("cylinder_open_water", 0.004), ("cylinder_open_air", 0.0)):
        scene = scenes[name]
        objects = (scene.labels > 0) | scene.void_mask
        far = ndi.distance_transform_edt(~objects) > 2
        assert far[:, [0, -1]].any() and far[:, :, [0, -1]].any(), "matrix at the Y/X edges"
        assert np.mean(np.isclose(scene.mu[far], matrix_mu, atol=1e-6)) > 0.99
    air = scenes["cylinder_open_air"]
    assert air.void_mask.any() and not np.any(air.phases == VOID), "a bubble in air is matrix"


def test_container_cylinder_keeps_air_outside(scenes):
    for name in ("cylinder", "granular_container"):
        scene = scenes[name]
        z, y, x = scene.labels.shape
        yy, xx = np.ogrid[:y, :x]
        r = np.hypot(yy - (y - 1) / 2, xx - (x - 1) / 2)
        radius = scene.info["cylinder_radius_px"]
        assert np.all(scene.phases[:, r > radius + 0.5] == AIR)
        assert not (scene.labels > 0)[:, r > radius + 0.5].any()
        assert np.all(scene.mu[:, r > radius + 0.5] == 0)


def test_default_scene_records_its_container():
    scene = render_scene((16, 32, 32), SceneParams(**SMALL, packing=0.1), 0)
    assert scene.info["container"] == "cylinder" and scene.info["cylinder_radius_px"] > 0


def test_bad_container_is_a_value_error_naming_it():
    with pytest.raises(ValueError, match="container"):
        SceneParams(container="box")

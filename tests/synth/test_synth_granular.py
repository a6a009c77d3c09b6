"""Dense granular packings (particleseg.synth.granular)."""

import cc3d
import numpy as np
import pytest

from particleseg.synth.granular import GranularParams, render_granular
from particleseg.synth.phases import MATERIAL0, PORE

SHAPE = (32, 64, 64)
BASE = dict(size_median_px=9.0, size_sigma=0.3, size_range_px=(3.0, 24.0))
TOLERANCE = 0.02  # achieved grain fraction vs target


def _contacts(labels):
    """Independent count: distinct face-adjacent neighbours of each label."""
    neighbours = {}
    for axis in range(3):
        a = np.moveaxis(labels, axis, 0)
        x, y = a[:-1].ravel(), a[1:].ravel()
        m = (x > 0) & (y > 0) & (x != y)
        for u, v in set(zip(x[m].tolist(), y[m].tolist(), strict=True)):
            neighbours.setdefault(u, set()).add(v)
            neighbours.setdefault(v, set()).add(u)
    return neighbours


@pytest.fixture(scope="module")
def packings():
    return {
        target: render_granular(SHAPE, GranularParams(packing=target, **BASE), 7)
        for target in (0.45, 0.6)
    }


@pytest.mark.parametrize("target", [0.45, 0.6])
def test_packing_fraction_reaches_the_target(packings, target):
    scene = packings[target]
    achieved = scene.info["packing_fraction"]
    assert abs(achieved - target) <= TOLERANCE
    assert scene.info["packing_target"] == target
    # the reported fraction is the grain occupancy: labels agree to within partial volume
    assert abs((scene.labels > 0).mean() - achieved) < 0.05


@pytest.mark.parametrize("target", [0.45, 0.6])
def test_grains_touch_several_neighbours(packings, target):
    scene = packings[target]
    info, n = scene.info, scene.info["n_particles"]
    neighbours = _contacts(scene.labels)
    contacts = np.array([len(neighbours.get(k, ())) for k in range(1, n + 1)])
    assert info["contacts"] == contacts.tolist()
    assert info["touching_fraction"] == pytest.approx((contacts > 0).mean())
    assert info["contacts_per_particle"] == pytest.approx(contacts.mean())
    assert info["touching_fraction"] >= 0.8, "most grains touch a neighbour"
    inner = ~np.array(info["cut_by_face"])
    assert inner.sum() >= 10 and contacts[inner].mean() >= 3.0, "several contacts per grain"


def test_labels_consecutive_and_one_piece_per_grain(packings):
    for scene in packings.values():
        labels, n = scene.labels, scene.info["n_particles"]
        assert labels.dtype == np.uint32 and labels.shape == SHAPE
        assert n > 30 and np.array_equal(np.unique(labels), np.arange(n + 1))
        assert cc3d.connected_components(labels, connectivity=6).max() == n
        sizes = np.bincount(labels.ravel())[1:]
        assert scene.info["voxel_count"] == sizes.tolist()
        for key in ("mu", "inclusion_mu", "family", "diameter_px", "features", "cut_by_face"):
            assert len(scene.info[key]) == n
        assert set(scene.info["family"]) <= {"angular", "rounded"}


def test_attenuation_has_partial_volume_and_the_matrix(packings):
    scene = packings[0.45]
    mu, labels = scene.mu, scene.labels
    assert mu.dtype == np.float32 and np.isfinite(mu).all() and mu.min() >= 0
    lo, hi = GranularParams().material_mu_range
    assert mu.max() <= hi + 1e-6
    background = mu[labels == 0]
    assert np.mean(background == 0) > 0.5, "air between the grains"
    assert np.any((background > 0.1 * lo) & (background < hi)), "partial volume at edges"
    assert np.any(mu[labels > 0] < 0.9 * min(scene.info["mu"])), "and inside the label edges"


def test_same_seed_same_packing_and_other_seed_differs():
    params = GranularParams(**BASE)
    a = render_granular((16, 40, 40), params, 3)
    b = render_granular((16, 40, 40), params, 3)
    c = render_granular((16, 40, 40), params, 4)
    np.testing.assert_array_equal(a.mu, b.mu)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.phases, b.phases)
    assert not np.array_equal(a.labels, c.labels)


def test_inclusions_pores_and_materials_in_the_phase_map():
    params = GranularParams(inclusion_prob=1.0, pore_prob=1.0, n_materials=4, **BASE)
    scene = render_granular((24, 48, 48), params, 1)
    codes = scene.phases[scene.labels > 0]
    assert np.any(codes == PORE), "pores are coded PORE"
    assert len(np.unique(codes[codes >= MATERIAL0])) >= 3, "hosts and inclusions"
    mus = scene.info["phase_mu"]
    assert mus == sorted(mus) and int(scene.phases.max()) < MATERIAL0 + len(mus)
    assert any(f == ("inclusion", "pores") for f in scene.info["features"])


def test_water_matrix_and_container():
    params = GranularParams(container="cylinder", matrix_mu=0.004, cylinder_margin_px=3, **BASE)
    scene = render_granular((16, 48, 48), params, 2)
    assert scene.info["container"] == "cylinder"
    assert scene.info["cylinder_radius_px"] == pytest.approx(21.0)
    assert scene.info["matrix_mu"] == scene.info["resin_mu"] == 0.004
    assert abs(scene.info["packing_fraction"] - params.packing) <= TOLERANCE


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("packing", 0.9),
        ("packing", "dense"),
        ("size_median_px", 0),
        ("size_sigma", -0.1),
        ("size_range_px", (10, 5)),
        ("rounded_fraction", 1.5),
        ("rounding_range", (0.5, 0.2)),
        ("ball_range", (0.1, 3.0)),
        ("max_facets", 99),
        ("contact_share", 0.0),
        ("max_gap", -1.0),
        ("gap_scale", 0.0),
        ("material_mu_range", (0.0, 0.04)),
        ("n_materials", -1),
        ("n_materials", 2.5),
        ("matrix_mu", -0.001),
        ("inclusion_prob", 2.0),
        ("pore_prob", -0.5),
        ("container", "box"),
        ("cylinder_margin_px", -1),
        ("seed_fraction", 0.95),
        ("relax_sweeps", -1),
        ("max_grains", 0),
    ],
)
def test_bad_params_name_the_field(field, value):
    with pytest.raises(ValueError, match=f"GranularParams.{field}"):
        GranularParams(**{field: value})


def test_bad_shape_seed_and_container_fit():
    with pytest.raises(ValueError, match="shape"):
        render_granular((4, 32, 32), GranularParams(**BASE))
    with pytest.raises(ValueError, match="rng"):
        render_granular((16, 32, 32), GranularParams(**BASE), rng="seed")
    with pytest.raises(ValueError, match="cylinder_margin_px"):
        render_granular((16, 32, 32), GranularParams(container="cylinder", cylinder_margin_px=14))

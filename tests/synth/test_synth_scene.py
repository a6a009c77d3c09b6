import cc3d
import numpy as np
import pytest

from particleseg.synth.particles import FAMILIES, render_particle
from particleseg.synth.scene import Scene, SceneParams, render_scene, touching_particles

SMALL = dict(size_median_px=10.0, size_sigma=0.3, size_range_px=(4.0, 30.0))


def _touching_ids(labels):
    """Independent check: ids with a 6-neighbour of another non-zero id."""
    ids = set()
    for axis in range(3):
        a = np.moveaxis(labels, axis, 0)
        x, y = a[:-1].ravel(), a[1:].ravel()
        m = (x > 0) & (y > 0) & (x != y)
        ids |= set(x[m].tolist()) | set(y[m].tolist())
    return ids


def _inertia_axes(mask):
    """Standard deviations along the principal axes, largest first."""
    c = np.argwhere(mask).astype(float)
    return np.sqrt(np.sort(np.linalg.eigvalsh(np.cov((c - c.mean(0)).T)))[::-1])


@pytest.fixture(scope="module")
def scenes():
    """Two 96^3 scenes of small particles, 5% and 30% of them touching."""
    return {
        f: render_scene((96, 96, 96), SceneParams(touching_fraction=f, **SMALL), 11)
        for f in (0.05, 0.3)
    }


@pytest.fixture(scope="module")
def featured():
    params = SceneParams(
        size_median_px=16.0,
        size_range_px=(10.0, 30.0),
        multiphase_prob=1.0,
        crack_prob=1.0,
        pore_prob=1.0,
        n_materials=0,
    )
    return render_scene((64, 80, 80), params, 5)


def test_scene_arrays_and_labels(scenes):
    scene = scenes[0.05]
    assert isinstance(scene, Scene)
    assert scene.mu.dtype == np.float32 and scene.mu.shape == (96, 96, 96)
    assert scene.labels.dtype == np.uint32 and scene.labels.shape == (96, 96, 96)
    n = scene.info["n_particles"]
    assert n > 100
    assert np.array_equal(np.unique(scene.labels), np.arange(n + 1))
    pieces = cc3d.connected_components(scene.labels, connectivity=6)
    assert int(pieces.max()) == n, "every label must be one 6-connected piece"
    assert np.isfinite(scene.mu).all() and scene.mu.min() >= 0
    assert scene.mu.max() <= SceneParams().material_mu_range[1] + 1e-6
    keys = ("mu", "family", "diameter_px", "features", "voxel_count", "intended_voxel_count")
    for key in (*keys, "cut_by_z_face"):
        assert len(scene.info[key]) == n


def test_labels_inside_resin_and_off_voids(scenes):
    for scene in scenes.values():
        z, y, x = scene.labels.shape
        yy, xx = np.ogrid[:y, :x]
        r = np.hypot(yy - (y - 1) / 2, xx - (x - 1) / 2)
        radius = scene.info["cylinder_radius_px"]
        labelled = (scene.labels > 0).any(axis=0)
        assert r[labelled].max() <= radius - 0.5
        assert np.all(scene.mu[:, r > radius + 0.5] == 0), "air outside the resin cylinder"
        assert scene.info["void_voxels"] > 0 and scene.info["n_bubbles"] > 0
        assert scene.info["void_voxels"] == int(scene.void_mask.sum())
        assert not np.any(scene.void_mask & (scene.labels > 0))
        assert scene.mu[scene.void_mask].max() <= 0.5 * SceneParams().resin_mu + 1e-6
        resin = (scene.labels == 0) & ~scene.void_mask & (r < radius - 1)[None]
        assert np.median(scene.mu[resin]) == pytest.approx(SceneParams().resin_mu, rel=1e-5)


@pytest.mark.parametrize("fraction", [0.05, 0.3])
def test_touching_fraction_is_achieved(scenes, fraction):
    scene = scenes[fraction]
    n = scene.info["n_particles"]
    touching = _touching_ids(scene.labels)
    assert len(touching) / n == pytest.approx(scene.info["touching_fraction"])
    assert abs(len(touching) / n - fraction) <= 0.03
    flags = touching_particles(scene.labels)
    assert set(np.flatnonzero(flags).tolist()) == touching
    for a, b in scene.info["touching_pairs"]:  # each pair shares a face
        m = np.isin(scene.labels, [a, b])
        pieces = cc3d.connected_components(m, connectivity=6)
        assert len(np.unique(pieces[m])) == 1


def test_particles_are_not_clipped_by_others(scenes):
    for scene in scenes.values():
        info = scene.info
        counts = np.bincount(scene.labels.ravel(), minlength=info["n_particles"] + 1)[1:]
        np.testing.assert_array_equal(counts, info["voxel_count"])
        whole = ~np.array(info["cut_by_z_face"])
        assert whole.sum() > 0.7 * len(whole)
        intended = np.array(info["intended_voxel_count"])
        np.testing.assert_array_equal(counts[whole], intended[whole])
        assert np.all(counts[~whole] < intended[~whole])
        d = np.array(info["diameter_px"])[whole]
        ratio = np.cbrt(6 * counts[whole] / np.pi) / d
        assert np.all(np.abs(ratio - 1) < 0.15), ratio.min()
        assert np.median(np.abs(ratio - 1)) < 0.03


def test_packing_is_close_to_requested(scenes):
    for scene in scenes.values():
        assert scene.info["packing_fraction"] == pytest.approx(0.25, abs=0.04)


def test_same_seed_same_scene_different_seed_different():
    params = SceneParams(touching_fraction=0.2, **SMALL)
    a = render_scene((48, 56, 56), params, 3)
    b = render_scene((48, 56, 56), params, np.random.default_rng(3))
    c = render_scene((48, 56, 56), params, 4)
    np.testing.assert_array_equal(a.mu, b.mu)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert a.info == b.info
    assert not np.array_equal(a.labels, c.labels)
    assert not np.array_equal(a.mu, c.mu)


def test_no_cut_at_z_faces_keeps_particles_whole():
    scene = render_scene((40, 48, 48), SceneParams(cut_at_z_faces=False, **SMALL), 2)
    assert scene.info["n_particles"] > 5
    assert not scene.labels[0].any() and not scene.labels[-1].any()
    assert not any(scene.info["cut_by_z_face"])


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_renders_at_its_size(family):
    d = 22.0
    p = render_particle(family, d, 7)
    assert p.family == family and p.features == ()
    assert p.occupancy.dtype == np.float32 and p.mu.dtype == np.float32
    assert p.occupancy.min() >= 0 and p.occupancy.max() <= 1
    assert 0 < p.occupancy.mean() < 1, "partial volume at the edges"
    assert (0 < p.occupancy).sum() > (p.occupancy == 1).sum() * 0.1
    assert p.mask.any() and int(cc3d.connected_components(p.mask, connectivity=6).max()) == 1
    assert np.cbrt(6 * p.occupancy.sum() / np.pi) == pytest.approx(d, rel=0.05)
    assert np.cbrt(6 * p.mask.sum() / np.pi) == pytest.approx(d, rel=0.25)


@pytest.mark.parametrize("aspect", [3.0, 6.0])
def test_needle_and_flake_have_the_requested_aspect(aspect):
    for seed in range(3):
        needle = render_particle("needle", 30.0, seed, aspect=aspect)
        a, b, _ = _inertia_axes(needle.mask)
        assert a / b == pytest.approx(aspect, rel=0.15)
        flake = render_particle("flake", 30.0, seed, aspect=aspect)
        _, b, c = _inertia_axes(flake.mask)
        assert b / c == pytest.approx(aspect, rel=0.2)


def test_round_families_are_not_elongated():
    for family in ("polyhedron", "star", "ellipsoid"):
        a, _, c = _inertia_axes(render_particle(family, 24.0, 1).mask)
        assert a / c < 2.5


def test_internal_features_change_mu_but_not_the_label():
    plain = render_particle("ellipsoid", 30.0, 3, mu=1.0)
    inner = plain.occupancy == 1
    assert np.allclose(plain.mu[inner], 1.0)

    p = render_particle("ellipsoid", 30.0, 3, mu=1.0, inclusion_mu=3.0)
    assert p.features == ("inclusion",)
    assert np.any(np.isclose(p.mu[p.occupancy == 1], 3.0))
    assert np.any(np.isclose(p.mu[p.occupancy == 1], 1.0))

    p = render_particle("ellipsoid", 30.0, 3, mu=1.0, crack=True)
    assert p.features == ("crack",)
    assert np.any(p.mask & (p.mu < 0.6))
    porous = render_particle("ellipsoid", 30.0, 3, mu=1.0, n_pores=3)
    assert porous.features == ("pores",)
    assert np.any(porous.mask & (porous.mu < 0.2))
    mixed = render_particle("star", 30.0, 4, inclusion_mu=2.0, crack=True, n_pores=2)
    assert mixed.features == ("inclusion", "crack", "pores")
    for q in (porous, mixed):
        assert int(cc3d.connected_components(q.mask, connectivity=6).max()) == 1
        assert np.all(q.occupancy[q.mask] >= 0.5), "the label is the envelope"
        assert np.cbrt(6 * q.occupancy.sum() / np.pi) == pytest.approx(30.0, rel=0.05)


def test_scene_features_present_when_certain(featured):
    info = featured.info
    n = info["n_particles"]
    assert n >= 10
    assert int(cc3d.connected_components(featured.labels, connectivity=6).max()) == n
    feats = info["features"]
    assert sum("inclusion" in f for f in feats) > 0.8 * n
    assert sum("crack" in f for f in feats) > 0.8 * n
    assert sum("pores" in f for f in feats) > 0.5 * n
    host = np.array([0.0, *info["mu"]], np.float32)[featured.labels]
    lab = featured.labels > 0
    # empty cracks and pores inside labels, inclusions brighter or darker than the host
    assert np.mean(featured.mu[lab] < 0.5 * host[lab]) > 0.005
    incl = np.array([0.0, *[m or 0.0 for m in info["inclusion_mu"]]], np.float32)
    at_incl = lab & np.isclose(featured.mu, incl[featured.labels], rtol=1e-4)
    assert len(np.unique(featured.labels[at_incl])) > 0.5 * n


def test_params_validation():
    with pytest.raises(ValueError, match="touching_fraction"):
        SceneParams(touching_fraction=1.5)
    with pytest.raises(ValueError, match="min_gap_px"):
        SceneParams(min_gap_px=0.5)
    with pytest.raises(ValueError, match="shape_weights"):
        SceneParams(shape_weights={"cube": 1.0})
    with pytest.raises(ValueError, match="size_range_px"):
        SceneParams(size_range_px=(10.0, 3.0))
    assert SceneParams(size_range_px=[3, 50]).size_range_px == (3.0, 50.0)
    with pytest.raises(ValueError, match="shape"):
        render_scene((32, 32), SceneParams())
    with pytest.raises(ValueError, match="rng"):
        render_scene((16, 32, 32), SceneParams(), "seed")
    with pytest.raises(ValueError, match="cylinder"):
        render_scene((16, 12, 12), SceneParams(cylinder_margin_px=4))
    with pytest.raises(ValueError, match="family"):
        render_particle("cube", 10.0, 0)
    with pytest.raises(ValueError, match="diameter"):
        render_particle("star", -1.0, 0)

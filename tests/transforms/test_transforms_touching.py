import pickle

import numpy as np
import pytest
import torch

from particleseg.synth import packed_ellipsoids
from particleseg.targets import instance_to_border_core
from particleseg.transforms.particle_templates import ParticleTemplate, extract_particles
from particleseg.transforms.touching import PasteResult, RandTouchingPasted, paste_touching


# ---------------------------------------------------------------- generated volumes
def paint_ellipsoids(shape, specs):
    """Paint ellipsoids (centre, semi-axes) in order, later ones over earlier ones."""
    labels = np.zeros(shape, np.uint32)
    grid = np.indices(shape, dtype=np.float32)
    for i, (centre, axes) in enumerate(specs, start=1):
        r2 = sum(((grid[k] - centre[k]) / axes[k]) ** 2 for k in range(3))
        labels[r2 <= 1.0] = i
    return labels


def make_image(labels, seed):
    rng = np.random.default_rng(seed)
    image = (labels > 0).astype(np.float32) * 0.8 + 0.1
    return (image + rng.normal(0, 0.05, labels.shape)).astype(np.float32)


def make_patch(thickness, shape=(40, 40, 40)):
    specs = [
        ((14, 14, 12), (7, 7, 7)),
        ((14, 14, 25), (6, 6, 7)),  # overlaps the first: the two touch
        ((28, 27, 22), (6, 5, 7)),
        ((37, 5, 5), (4, 4, 4)),  # cut by the patch edge
    ]
    instances = paint_ellipsoids(shape, specs)
    image = make_image(instances, seed=1)
    return image, instances, instance_to_border_core(instances, thickness)


def make_source(thickness):
    specs = [
        ((12, 12, 12), (5, 6, 5)),
        ((30, 30, 28), (7, 6, 8)),
        ((30, 30, 41), (5, 5, 6)),  # touches the previous one
        ((2, 24, 24), (5, 5, 5)),  # touches the volume edge
        ((12, 36, 10), (2, 2, 2)),  # bounding box of 125 voxels
    ]
    instances = paint_ellipsoids((48, 48, 52), specs)
    image = make_image(instances, seed=2)
    return image, instances, instance_to_border_core(instances, thickness)


@pytest.fixture(scope="module")
def templates():
    return {t: extract_particles(*make_source(t)) for t in (1, 2, 3)}


def face_adjacent(a, b):
    """Whether a voxel of mask ``a`` shares a face with a voxel of mask ``b``."""
    for axis in range(3):
        lo = [slice(None)] * 3
        hi = [slice(None)] * 3
        lo[axis] = slice(None, -1)
        hi[axis] = slice(1, None)
        lo, hi = tuple(lo), tuple(hi)
        if np.any(a[lo] & b[hi]) or np.any(a[hi] & b[lo]):
            return True
    return False


def shifted(array, offset, shape):
    """``array`` placed with its first voxel at ``offset`` in a zero volume of ``shape``."""
    out = np.zeros(shape, array.dtype)
    lo = np.array(offset)
    hi = lo + np.array(array.shape)
    a = np.maximum(lo, 0)
    b = np.minimum(hi, shape)
    out[tuple(slice(x, y) for x, y in zip(a, b, strict=True))] = array[
        tuple(slice(x, y) for x, y in zip(a - lo, b - lo, strict=True))
    ]
    return out


def shifted_mask(template, offset, shape):
    return shifted(template.mask, offset, shape)


def paste(thickness, templates, seed, template_index=None):
    image, instances, border_core = make_patch(thickness)
    rng = np.random.default_rng(seed)
    ts = templates[thickness]
    template = ts[seed % len(ts) if template_index is None else template_index]
    result = paste_touching(
        image, instances, border_core, template, rng, border_thickness=thickness
    )
    return (image, instances, border_core), template, result


# ---------------------------------------------------------------- paste_touching
@pytest.mark.parametrize("thickness", [1, 2, 3])
@pytest.mark.parametrize("seed", range(4))
def test_pasted_particle_touches_target(templates, thickness, seed):
    (image, instances, _), _, result = paste(thickness, templates, seed)
    assert isinstance(result, PasteResult)
    pasted = result.instances == result.pasted_id
    target = instances == result.target_id
    assert pasted.any()
    assert not np.any(pasted & target), "the pasted particle overlaps its target"
    assert np.array_equal(result.instances == result.target_id, target), "target changed"
    assert face_adjacent(pasted, target)


@pytest.mark.parametrize("thickness", [1, 2, 3])
@pytest.mark.parametrize("seed", range(4))
def test_labels_consistent(templates, thickness, seed):
    (_, instances, _), template, result = paste(thickness, templates, seed)
    assert result is not None
    assert result.instances.dtype == np.uint32
    assert result.border_core.dtype == np.uint8
    assert result.pasted_id == int(instances.max()) + 1
    expected = instance_to_border_core(result.instances, thickness)
    assert np.array_equal(result.border_core, expected)
    pasted = shifted_mask(template, result.offset, instances.shape)
    assert np.array_equal(result.instances == result.pasted_id, pasted)
    assert np.array_equal(result.instances[~pasted], instances[~pasted])


@pytest.mark.parametrize("with_template_phases", [True, False])
def test_paste_carries_the_particle_phases(with_template_phases):
    """D's voxels get D's phases (or the first mineral code); every other voxel keeps its own."""
    thickness = 2
    image, instances, border_core = make_patch(thickness)
    phases = np.where(instances > 0, 4 + instances % 3, 1).astype(np.uint8)
    source, source_instances, source_bc = make_source(thickness)
    source_phases = np.where(source_instances > 0, 7 + source_instances, 1).astype(np.uint8)
    found = extract_particles(
        source,
        source_instances,
        source_bc,
        phases=source_phases if with_template_phases else None,
    )
    for seed, template in enumerate(found):
        rng = np.random.default_rng(seed)
        result = paste_touching(
            image, instances, border_core, template, rng, thickness, phases=phases
        )
        assert result is not None
        pasted = result.instances == result.pasted_id
        assert result.phases.dtype == np.uint8
        assert np.array_equal(result.phases[~pasted], phases[~pasted])
        if with_template_phases:
            expected = shifted(template.phases, result.offset, instances.shape)
            assert np.array_equal(result.phases[pasted], expected[pasted])
            assert set(np.unique(result.phases[pasted])) <= set(range(8, 14))
        else:
            assert np.all(result.phases[pasted] == 4)  # MATERIAL0
    assert paste_touching(image, instances, border_core, found[0], rng, thickness).phases is None
    with pytest.raises(ValueError, match="phases must have the shape"):
        paste_touching(image, instances, border_core, found[0], rng, phases=phases[:-1])


def test_labels_consistent_in_a_crowded_patch():
    """D often covers part of a third particle Q: Q then gets a border against D."""
    thickness = 2
    covered_a_third = 0
    for seed in range(8):
        instances = packed_ellipsoids((40, 40, 40), n=30, semi_axes=(4.0, 8.0), seed=seed)
        border_core = instance_to_border_core(instances, thickness)
        image = make_image(instances, seed)
        source = packed_ellipsoids((48, 48, 48), n=12, semi_axes=(5.0, 8.0), seed=100 + seed)
        templates = extract_particles(
            make_image(source, seed), source, instance_to_border_core(source, thickness)
        )
        rng = np.random.default_rng(seed)
        result = paste_touching(
            image, instances, border_core, templates[0], rng, border_thickness=thickness
        )
        assert result is not None
        assert np.array_equal(
            result.border_core, instance_to_border_core(result.instances, thickness)
        )
        pasted = result.instances == result.pasted_id
        target = instances == result.target_id
        assert face_adjacent(pasted, target)
        assert not np.any(pasted & target)
        covered_a_third += bool(np.any(instances[pasted] > 0))
    assert covered_a_third > 0


def test_image_blending(templates):
    (image, instances, border_core), template, result = paste(3, templates, seed=5)
    assert result is not None
    assert result.image.dtype == np.float32
    pasted = shifted_mask(template, result.offset, image.shape)
    # D's voxels carry D's image exactly.
    lo = np.array(result.offset)
    crop = tuple(
        slice(max(a, 0), min(a + n, s))
        for a, n, s in zip(lo, template.shape, image.shape, strict=True)
    )
    tcrop = tuple(slice(c.start - a, c.stop - a) for c, a in zip(crop, lo, strict=True))
    inside = template.mask[tcrop]
    np.testing.assert_array_equal(result.image[crop][inside], template.image[tcrop][inside])
    # Outside the template's box nothing changes.
    box = np.zeros(image.shape, bool)
    box[crop] = True
    np.testing.assert_array_equal(result.image[~box], image[~box])
    # Just outside D the image is a blend of the patch and the template images.
    shell = box & ~pasted & (result.image != image)
    assert shell.any()
    t_image = np.full(image.shape, np.nan, np.float32)
    t_image[crop] = template.image[tcrop]
    low = np.minimum(image, t_image)[shell]
    high = np.maximum(image, t_image)[shell]
    assert np.all((result.image[shell] >= low - 1e-6) & (result.image[shell] <= high + 1e-6))
    # The inputs were not modified.
    for before, after in zip(make_patch(3), (image, instances, border_core), strict=True):
        np.testing.assert_array_equal(before, after)


def test_pasted_voxels_inside_patch_only(templates):
    """With a low min_inside_fraction the template may be cut by the patch edge."""
    image, instances, border_core = make_patch(2, shape=(24, 40, 40))
    found_cut = False
    for seed in range(20):
        template = templates[2][seed % len(templates[2])]
        result = paste_touching(
            image,
            instances,
            border_core,
            template,
            np.random.default_rng(seed),
            border_thickness=2,
            min_inside_fraction=0.3,
        )
        if result is None:
            continue
        pasted = shifted_mask(template, result.offset, image.shape)
        n_inside = int((result.instances == result.pasted_id).sum())
        assert np.array_equal(result.instances == result.pasted_id, pasted)
        assert n_inside >= 0.3 * template.mask.sum()
        assert np.array_equal(result.border_core, instance_to_border_core(result.instances, 2))
        found_cut |= n_inside < template.mask.sum()
    assert found_cut


def test_reproducible(templates):
    a = paste(2, templates, seed=3)[2]
    b = paste(2, templates, seed=3)[2]
    assert a.offset == b.offset and a.target_id == b.target_id
    np.testing.assert_array_equal(a.image, b.image)


def test_none_without_particles(templates):
    shape = (20, 20, 20)
    result = paste_touching(
        np.zeros(shape, np.float32),
        np.zeros(shape, np.uint32),
        np.zeros(shape, np.uint8),
        templates[3][0],
        np.random.default_rng(0),
    )
    assert result is None


def test_none_when_no_placement(templates):
    # The template cannot fit its whole self in a patch this thin.
    image, instances, border_core = make_patch(3, shape=(4, 40, 40))
    result = paste_touching(
        image,
        instances,
        border_core,
        templates[3][1],
        np.random.default_rng(0),
        min_inside_fraction=1.0,
    )
    assert result is None


def test_paste_rejects_bad_input(templates):
    image, instances, border_core = make_patch(3)
    with pytest.raises(ValueError, match="same shape"):
        paste_touching(image[1:], instances, border_core, templates[3][0], np.random.default_rng())
    with pytest.raises(ValueError, match="integer"):
        paste_touching(
            image,
            instances.astype(np.float32),
            border_core,
            templates[3][0],
            np.random.default_rng(),
        )
    with pytest.raises(ValueError, match="max_tries"):
        paste_touching(
            image, instances, border_core, templates[3][0], np.random.default_rng(), max_tries=0
        )


# ---------------------------------------------------------------- extract_particles
def test_extract_particles_skips_edge_and_small():
    image, instances, border_core = make_source(3)
    templates = extract_particles(image, instances, border_core, margin=2)
    # Particles 1, 2 and 3 are whole and large; 4 touches the edge; 5 has a small box.
    sizes = sorted(int(t.mask.sum()) for t in templates)
    expected = sorted(int((instances == i).sum()) for i in (1, 2, 3))
    assert sizes == expected
    for t, label in zip(templates, (1, 2, 3), strict=True):
        assert t.image.dtype == np.float32 and t.mask.dtype == bool
        assert t.border_core.dtype == np.uint8
        assert np.all(t.border_core[~t.mask] == 0)
        assert np.all(t.border_core[t.mask] > 0)
        # The mask sits in the crop with the margin on every side.
        idx = np.argwhere(t.mask)
        assert np.all(idx.min(axis=0) == 2)
        assert np.all(np.array(t.shape) - 1 - idx.max(axis=0) == 2)
        # Border-core and image are those of the source at the same place.
        where = np.argwhere(instances == label)
        lo = where.min(axis=0) - 2
        box = tuple(slice(a, a + n) for a, n in zip(lo, t.shape, strict=True))
        np.testing.assert_array_equal(t.image, image[box])
        np.testing.assert_array_equal(t.mask, instances[box] == label)
        np.testing.assert_array_equal(t.border_core[t.mask], border_core[box][t.mask])

    assert len(extract_particles(image, instances, border_core, min_bbox_voxels=100)) == 4
    assert len(extract_particles(image, instances, border_core, min_bbox_voxels=10**6)) == 0


def test_extract_particles_subset_is_seeded():
    image, instances, border_core = make_source(3)
    a = extract_particles(image, instances, border_core, max_particles=2, seed=7)
    b = extract_particles(image, instances, border_core, max_particles=2, seed=7)
    assert len(a) == 2
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.mask, y.mask)


def test_template_validates():
    with pytest.raises(ValueError, match="same shape"):
        ParticleTemplate(np.zeros((3, 3, 3)), np.ones((3, 3, 2), bool), np.zeros((3, 3, 3)))
    with pytest.raises(ValueError, match="empty"):
        ParticleTemplate(np.zeros((3, 3, 3)), np.zeros((3, 3, 3), bool), np.zeros((3, 3, 3)))


# ---------------------------------------------------------------- RandTouchingPasted
def sample(kind="numpy", thickness=3):
    image, instances, border_core = make_patch(thickness)
    d = {"image": image[None], "label": border_core[None], "instance": instances[None]}
    if kind == "torch":
        d = {k: torch.from_numpy(v.copy()) for k, v in d.items()}
    return d


def test_transform_prob_zero_changes_nothing(templates):
    t = RandTouchingPasted(templates[3], prob=0.0)
    d = sample()
    out = t(d)
    for k in d:
        assert out[k] is d[k]


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_transform_prob_one_pastes(templates, kind):
    t = RandTouchingPasted(templates[3], prob=1.0, border_thickness=3).set_random_state(0)
    d = sample(kind)
    before = {k: (v.clone() if kind == "torch" else v.copy()) for k, v in d.items()}
    out = t(d)
    for k in d:
        assert type(out[k]) is type(d[k])
        assert out[k].dtype == d[k].dtype
        assert tuple(out[k].shape) == tuple(d[k].shape)
        np.testing.assert_array_equal(np.asarray(d[k]), np.asarray(before[k]))
    instances = np.asarray(out["instance"])[0]
    assert instances.max() == np.asarray(d["instance"]).max() + 1
    np.testing.assert_array_equal(
        np.asarray(out["label"])[0], instance_to_border_core(instances, 3)
    )
    assert not np.array_equal(np.asarray(out["image"]), np.asarray(d["image"]))


def test_transform_reproducible_and_picklable(templates):
    t = RandTouchingPasted(templates[3], prob=0.7)
    t2 = pickle.loads(pickle.dumps(t))
    t.set_random_state(42)
    t2.set_random_state(42)
    for _ in range(4):
        a, b = t(sample()), t2(sample())
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])


def test_transform_leaves_empty_patch_alone(templates):
    t = RandTouchingPasted(templates[3], prob=1.0).set_random_state(0)
    shape = (1, 16, 16, 16)
    d = {
        "image": np.zeros(shape, np.float32),
        "label": np.zeros(shape, np.uint8),
        "instance": np.zeros(shape, np.uint32),
    }
    out = t(d)
    for k in d:
        assert out[k] is d[k]


def test_transform_rejects_bad_arguments(templates):
    with pytest.raises(ValueError, match="templates"):
        RandTouchingPasted([], prob=1.0)
    t = RandTouchingPasted(templates[3], prob=1.0)
    with pytest.raises(ValueError, match=r"\(1, Z, Y, X\)"):
        d = sample()
        t({k: v[0] for k, v in d.items()})

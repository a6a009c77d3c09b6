import numpy as np
import pytest
import scipy.ndimage as ndi

from particleseg.synth import packed_ellipsoids
from particleseg.targets import (
    border_core_to_instance,
    demote_small_cores,
    filter_small_particles,
    instance_to_border_core,
)

SIX = ndi.generate_binary_structure(3, 1)


# ---------------------------------------------------------------- brute-force references
def brute_instance_to_border_core(labels, thickness, spacing=None):
    out = np.zeros(labels.shape, np.uint8)
    for lab in np.unique(labels[labels > 0]):
        m = labels == lab
        d = ndi.distance_transform_edt(m, sampling=spacing)  # the array edge is not background
        out[m] = np.where(d[m] > thickness, 1, 2)
    return out


def brute_kept_cores(bc, spacing, near=1.0, frac=0.95, deep=3.0):
    """Cores labelled 6-connected, thin ones removed, read literally off the definition."""
    cores, n = ndi.label(bc == 1, structure=SIX)
    kept = []
    for lab in range(1, n + 1):
        m = cores == lab
        d = ndi.distance_transform_edt(m, sampling=spacing)[m]
        thin = np.mean(d <= near) >= frac and not np.any(d >= deep)
        if not thin:
            kept.append(lab)
    return cores, kept


def check_nearest_core_assignment(bc, result, spacing=(1.0, 1.0, 1.0)):
    """Every voxel went to a nearest core of its own component, or its coreless component."""
    fg = bc > 0
    assert result.dtype == np.uint32
    assert np.array_equal(result > 0, fg)
    ids = np.unique(result[fg])
    assert np.array_equal(ids, np.arange(1, len(ids) + 1)), "ids must be 1..N consecutive"

    comps, _ = ndi.label(fg, structure=SIX)
    cores, kept = brute_kept_cores(bc, spacing)
    dist_to = {lab: ndi.distance_transform_edt(cores != lab, sampling=spacing) for lab in kept}
    core_of_id = {}
    for lab in kept:
        got = np.unique(result[cores == lab])
        assert len(got) == 1, f"core {lab} split over ids {got}"
        core_of_id[int(got[0])] = lab
    assert len(core_of_id) == len(kept), "two cores merged into one id"
    comp_of_core = {lab: comps[cores == lab][0] for lab in kept}

    for c in range(1, comps.max() + 1):
        in_c = comps == c
        own = [lab for lab in kept if comp_of_core[lab] == c]
        if not own:  # a component without a core is one particle of its own
            got = np.unique(result[in_c])
            assert len(got) == 1 and int(got[0]) not in core_of_id
            continue
        best = np.min([dist_to[lab][in_c] for lab in own], axis=0)
        chosen = np.array([core_of_id.get(int(i), -1) for i in result[in_c]])
        assert np.all(chosen > 0), "a voxel of a component with cores was not given a core"
        chosen_d = np.array(
            [dist_to[lab][tuple(p)] for lab, p in zip(chosen, np.argwhere(in_c), strict=True)]
        )
        # squared distances are float32 inside: exact for isotropic integer offsets
        np.testing.assert_allclose(chosen_d, best, rtol=1e-6, atol=1e-9)


def noisy_border_core(seed, shape=(28, 30, 32), thickness=2):
    """A round-trip map with noise: stray cores, holes, coreless blobs."""
    rng = np.random.default_rng(seed)
    labels = packed_ellipsoids(shape, 25, semi_axes=(3, 8), seed=seed)
    bc = instance_to_border_core(labels, thickness)
    r = rng.random(shape)
    bc[(r < 0.03) & (bc == 2)] = 1
    bc[(r > 0.97) & (bc == 1)] = 2
    bc[(r > 0.5) & (r < 0.505)] = 0
    blob = (slice(1, 4), slice(1, 5), slice(shape[2] - 5, shape[2] - 1))
    bc[blob] = 2  # a coreless blob in a corner
    return bc


# ---------------------------------------------------------------- instance_to_border_core
@pytest.mark.parametrize("thickness", [1, 2, 2.5, 3])
@pytest.mark.parametrize("spacing", [None, (2.0, 1.0, 0.5)])
def test_instance_to_border_core_matches_brute_force(thickness, spacing):
    labels = packed_ellipsoids((30, 34, 38), 25, semi_axes=(3, 9), seed=3)
    got = instance_to_border_core(labels, thickness, spacing=spacing)
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, brute_instance_to_border_core(labels, thickness, spacing))


def test_cut_face_has_no_border():
    labels = np.zeros((20, 20, 20), np.uint32)
    labels[:10] = 1  # a slab cut by the z=0 face
    bc = instance_to_border_core(labels, 3)
    assert np.all(bc[0, 4:-4, 4:-4] == 1), "cut face must stay core"
    assert np.all(bc[9] == 2), "the particle's real face is border"


def test_touching_particles_get_border_on_contact():
    labels = np.zeros((12, 12, 24), np.uint32)
    labels[2:10, 2:10, 2:12] = 1
    labels[2:10, 2:10, 12:22] = 2
    bc = instance_to_border_core(labels, 1)
    assert np.all(bc[3:9, 3:9, 11] == 2) and np.all(bc[3:9, 3:9, 12] == 2)
    assert np.all(bc[3:9, 3:9, 10] == 1)


# ---------------------------------------------------------------- border_core_to_instance
@pytest.mark.parametrize("seed", range(6))
def test_border_core_to_instance_nearest_core_of_own_component(seed):
    bc = noisy_border_core(seed)
    check_nearest_core_assignment(bc, border_core_to_instance(bc))


def test_border_core_to_instance_anisotropic():
    bc = noisy_border_core(11)
    spacing = (1.5, 1.0, 0.75)
    check_nearest_core_assignment(bc, border_core_to_instance(bc, spacing=spacing), spacing)


def test_nearest_core_across_a_gap_is_not_taken():
    # Component A: a small core at the far left and a long border arm reaching right up to
    # component B (a big block with a core), separated by one background voxel.
    bc = np.zeros((9, 9, 40), np.uint8)
    bc[1:8, 1:8, 0:7] = 2
    bc[2:7, 2:7, 1:6] = 1  # A's core
    bc[4, 4, 7:24] = 2  # A's arm
    bc[1:8, 1:8, 25:40] = 2
    bc[2:7, 2:7, 26:39] = 1  # B's core
    out = border_core_to_instance(bc)
    assert out[4, 4, 23] == out[4, 4, 3] != out[4, 4, 30]
    check_nearest_core_assignment(bc, out)


def test_nearest_core_far_along_a_long_arm():
    # The arm is longer than the local search reaches (32 voxels): the full scan must decide.
    bc = np.zeros((9, 9, 90), np.uint8)
    bc[1:8, 1:8, 0:7] = 2
    bc[2:7, 2:7, 1:6] = 1
    bc[4, 4, 7:74] = 2
    bc[1:8, 1:8, 75:90] = 2
    bc[2:7, 2:7, 76:89] = 1
    out = border_core_to_instance(bc)
    assert out[4, 4, 73] == out[4, 4, 3] != out[4, 4, 80]
    check_nearest_core_assignment(bc, out)


def test_round_trip_recovers_touching_particles():
    labels = packed_ellipsoids((64, 64, 64), 60, semi_axes=(5, 10), seed=5)
    back = border_core_to_instance(instance_to_border_core(labels, 2))
    assert back.max() == labels.max()
    # each reference particle has a predicted particle with IoU >= 0.9
    n = int(labels.max())
    inter = np.zeros((n + 1, int(back.max()) + 1))
    np.add.at(inter, (labels.ravel(), back.ravel()), 1)
    sizes_r, sizes_p = inter.sum(1), inter.sum(0)
    iou = inter / (sizes_r[:, None] + sizes_p[None, :] - inter + 1e-9)
    assert np.mean(iou[1:, 1:].max(1) >= 0.9) == 1.0


def test_small_cores_are_demoted():
    bc = np.full((16, 16, 30), 2, np.uint8)
    bc[3:13, 3:13, 3:13] = 1  # a real core, deep enough
    bc[7, 7, 20] = 1  # a one-voxel core: all surface, nothing deep -> thin
    bc[6:9, 6:9, 24:26] = 1  # 3x3x2: all voxels on the surface -> thin
    cores, _ = ndi.label(bc == 1, structure=SIX)
    kept = demote_small_cores(cores.astype(np.uint32))
    assert kept.max() == 1 and np.array_equal(kept > 0, cores == 1)
    out = border_core_to_instance(bc)
    assert out.max() == 1, "thin cores must not become particles of their own"


def test_memory_order_does_not_change_the_result():
    # A Fortran-ordered map once skipped the small-core rule (an in-place relabel hit a copy).
    bc = noisy_border_core(4)
    expected = border_core_to_instance(bc)
    np.testing.assert_array_equal(border_core_to_instance(np.asfortranarray(bc)), expected)
    view = border_core_to_instance(np.ascontiguousarray(bc.transpose(2, 1, 0)).transpose(2, 1, 0))
    np.testing.assert_array_equal(view, expected)


def test_coreless_component_is_one_particle_and_ids_consecutive():
    bc = np.zeros((10, 10, 30), np.uint8)
    bc[2:8, 2:8, 2:8] = 2  # coreless
    bc[1:9, 1:9, 12:28] = 2
    bc[2:8, 2:8, 13:27] = 1
    out = border_core_to_instance(bc)
    assert sorted(np.unique(out)) == [0, 1, 2]
    assert len(np.unique(out[2:8, 2:8, 2:8])) == 1


def test_more_than_65535_particles_do_not_wrap():
    bc = np.zeros((84, 84, 84), np.uint8)
    bc[::2, ::2, ::2] = 2  # 42^3 = 74,088 isolated one-voxel particles
    out = border_core_to_instance(bc)
    assert out.dtype == np.uint32
    assert out.max() == 42**3 == len(np.unique(out)) - 1


def test_deterministic():
    bc = noisy_border_core(2)
    np.testing.assert_array_equal(border_core_to_instance(bc), border_core_to_instance(bc))


def test_empty_and_all_background():
    out = border_core_to_instance(np.zeros((5, 6, 7), np.uint8))
    assert out.dtype == np.uint32 and out.max() == 0


@pytest.mark.parametrize(
    ("array", "match"),
    [
        (np.zeros((5, 5), np.uint8), "3D"),
        (np.zeros((2, 5, 5, 5), np.uint8), "3D"),
        (np.zeros((5, 5, 5), np.float32), "integer"),
        (np.full((5, 5, 5), 3, np.uint8), "0 .background., 1 .core. or 2"),
    ],
)
def test_bad_border_core_input(array, match):
    with pytest.raises(ValueError, match=match):
        border_core_to_instance(array)


def test_bad_labels_input():
    with pytest.raises(ValueError, match="non-negative"):
        instance_to_border_core(np.full((4, 4, 4), -1, np.int32))
    with pytest.raises(ValueError, match="3D"):
        instance_to_border_core(np.zeros((4, 4), np.uint32))


# ---------------------------------------------------------------- filter_small_particles
def test_filter_small_particles_relative_to_existing_particles():
    labels = np.zeros((10, 10, 40), np.uint32)
    labels[:, :, 0:10] = 2  # 1000 voxels
    labels[:, :, 12:22] = 5  # 1000 voxels
    labels[0, 0, 30] = 7  # 1 voxel; mean over existing ids = 667 -> 1 < 0.005*667
    labels[0:2, 0:2, 32] = 9  # 4 voxels: kept (4 >= 3.3)
    out = filter_small_particles(labels, 0.005)
    assert out.dtype == np.uint32
    assert sorted(np.unique(out)) == [0, 1, 2, 3]
    assert out[0, 0, 30] == 0
    # the order of surviving ids is kept
    assert out[0, 0, 0] == 1 and out[0, 0, 15] == 2 and out[0, 0, 32] == 3


def test_filter_small_particles_empty():
    out = filter_small_particles(np.zeros((3, 3, 3), np.uint16))
    assert out.max() == 0 and out.dtype == np.uint32

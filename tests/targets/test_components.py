import cc3d
import numpy as np
import pytest
import scipy.ndimage as ndi

from particleseg.targets._components import label_components


def random_map(shape, seed):
    """Values 0/1/2 in blobs of a few voxels (so components span rows, planes and Z chunks)."""
    rng = np.random.default_rng(seed)
    coarse = rng.choice([0, 1, 2], size=tuple(max(1, s // 2) for s in shape), p=[0.4, 0.3, 0.3])
    fine = np.kron(coarse, np.ones((2, 2, 2), np.uint8))[tuple(slice(0, s) for s in shape)]
    fine = np.pad(fine, [(0, s - f) for s, f in zip(shape, fine.shape, strict=True)])
    flip = rng.random(shape) < 0.15
    return np.where(flip, rng.choice([0, 1, 2], size=shape), fine).astype(np.uint8)


@pytest.mark.parametrize("connectivity", [6, 18, 26])
@pytest.mark.parametrize("value", [None, 1, 2])
def test_same_labels_as_cc3d(connectivity, value):
    """Voxel for voxel the labels cc3d gives (same components, same numbering), over many
    shapes: thin ones, more Z planes than Z chunks, one voxel."""
    rng = np.random.default_rng(connectivity)
    for case in range(40):
        shape = tuple(int(s) for s in rng.integers(1, 30, 3))
        volume = random_map(shape, case)
        mask = volume != 0 if value is None else volume == value
        expected, n_expected = cc3d.connected_components(
            mask, connectivity=connectivity, out_dtype=np.uint32, return_N=True
        )
        labels, n = label_components(volume, value, connectivity)
        assert labels.dtype == np.uint32
        assert n == n_expected
        np.testing.assert_array_equal(labels, expected, err_msg=f"{shape}")


def test_same_partition_as_scipy_numbered_in_raster_order():
    """An independent check: scipy's components, renumbered by first voxel in raster order."""
    volume = random_map((37, 23, 41), 5)
    for connectivity, rank in ((6, 1), (18, 2), (26, 3)):
        structure = ndi.generate_binary_structure(3, rank)
        scipy_labels, n_scipy = ndi.label(volume == 1, structure)
        labels, n = label_components(volume, 1, connectivity)
        assert n == n_scipy
        flat = scipy_labels.ravel()
        _, first = np.unique(flat, return_index=True)
        order = flat[np.sort(first)]
        order = order[order != 0]
        renumber = np.zeros(n + 1, np.uint32)
        renumber[order] = np.arange(1, n + 1)
        np.testing.assert_array_equal(labels, renumber[scipy_labels])


def test_edge_and_corner_contacts():
    """Two cubes meeting at an edge are one under 18 and 26; at a corner only under 26."""
    edge = np.zeros((6, 6, 6), np.uint8)
    edge[0:2, 0:2, 0:2] = 1
    edge[0:2, 2:4, 2:4] = 1
    corner = np.zeros((6, 6, 6), np.uint8)
    corner[0:2, 0:2, 0:2] = 1
    corner[2:4, 2:4, 2:4] = 1
    assert [label_components(edge, 1, c)[1] for c in (6, 18, 26)] == [2, 1, 1]
    assert [label_components(corner, 1, c)[1] for c in (6, 18, 26)] == [2, 2, 1]


def test_component_joined_only_far_down_in_z():
    """A U whose arms meet only in the last plane: joins across every Z chunk are kept."""
    volume = np.zeros((64, 3, 9), np.uint8)
    volume[:, 1, 1] = 1
    volume[:, 1, 7] = 1
    volume[-1, 1, 1:8] = 1
    labels, n = label_components(volume, None, 6)
    assert n == 1
    assert np.all(labels[volume != 0] == 1)


def test_empty_full_bool_and_fortran_input():
    assert label_components(np.zeros((3, 4, 5), np.uint8))[1] == 0
    labels, n = label_components(np.ones((3, 4, 5), bool))
    assert n == 1 and np.all(labels == 1)
    volume = random_map((9, 10, 11), 3)
    labels, _ = label_components(np.asfortranarray(volume), 2, 6)
    np.testing.assert_array_equal(labels, label_components(volume, 2, 6)[0])
    assert label_components(volume.astype(bool), True, 6)[1] == label_components(volume)[1]


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="connectivity must be 6, 18 or 26"):
        label_components(np.zeros((2, 2, 2), np.uint8), None, 8)
    with pytest.raises(ValueError, match=r"3D \(Z, Y, X\), got shape \(4, 4\)"):
        label_components(np.zeros((4, 4), np.uint8))

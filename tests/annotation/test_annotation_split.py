import time

import numpy as np
import pytest
from annotation_helpers import iou, touching_pair

from particleseg.annotation import Plane, geodesic_distance, split_particle
from particleseg.annotation.split import rasterise_polyline


@pytest.fixture(scope="module")
def pair():
    return touching_pair(r=12, gap=1.6)


def _check_split(labels, out, truth_a, truth_b):
    new_id = int(labels.max()) + 1
    assert iou(out == 1, truth_a) >= 0.9
    assert iou(out == new_id, truth_b) >= 0.9
    # nothing but the particle changed, and the particle's voxels all got one of the two ids
    outside = labels != 1
    np.testing.assert_array_equal(out[outside], labels[outside])
    assert set(np.unique(out[labels == 1])) == {1, new_id}
    assert out.dtype == labels.dtype


def test_split_along_a_border_drawn_in_one_slice(pair):
    labels, truth_a, truth_b, ca, cb, contact = pair
    z = ca[0]
    border = [(z, ca[1] - 12, contact), (z, ca[1] + 12, contact)]
    out = split_particle(labels, 1, [ca, cb], border)
    _check_split(labels, out, truth_a, truth_b)
    assert np.array_equal(labels > 0, out > 0)


def test_split_along_a_plane(pair):
    labels, truth_a, truth_b, ca, cb, contact = pair
    out = split_particle(labels, 1, [ca, cb], Plane((ca[0], ca[1], contact), (0, 0, 1)))
    _check_split(labels, out, truth_a, truth_b)


def test_split_with_a_marker_array_and_several_polylines(pair):
    labels, truth_a, truth_b, ca, cb, contact = pair
    markers = np.zeros(labels.shape, np.uint16)
    markers[ca[0], ca[1], ca[2] - 2 : ca[2] + 2] = 7
    markers[cb] = 9
    z = ca[0]
    lines = [
        np.array([(z, ca[1] - 12, contact), (z, ca[1], contact)]),
        np.array([(z + 3, ca[1], contact), (z + 3, ca[1] + 12, contact)]),
    ]
    out = split_particle(labels, 1, markers, lines)
    _check_split(labels, out, truth_a, truth_b)


def test_second_marker_gets_the_first_new_id_and_three_parts_work():
    from annotation_helpers import balls

    labels = balls((20, 20, 50), [(10, 10, 10), (10, 10, 24), (10, 10, 38)], [8, 8, 8]) > 0
    labels = labels.astype(np.uint8) * 5
    border = [np.array([(10, 0, 17), (10, 19, 17)]), np.array([(10, 0, 31), (10, 19, 31)])]
    out = split_particle(labels, 5, [(10, 10, 10), (10, 10, 24), (10, 10, 38)], border)
    assert out[10, 10, 10] == 5 and out[10, 10, 24] == 6 and out[10, 10, 38] == 7
    assert set(np.unique(out[10, 10, 18:31])) == {6}
    assert out.dtype == np.uint8


def test_ids_widen_when_they_do_not_fit():
    labels = np.zeros((8, 8, 16), np.uint8)
    labels[2:6, 2:6, 2:14] = 255
    out = split_particle(labels, 255, [(4, 4, 3), (4, 4, 12)], Plane((4, 4, 8), (0, 0, 1)))
    assert out.dtype == np.uint32 and out.max() == 256


@pytest.mark.parametrize(
    ("pid", "markers", "border", "match"),
    [
        (9, [(16, 16, 16), (16, 16, 30)], [(16, 10, 22)], "absent"),
        (1, [(16, 16, 16)], [(16, 10, 22)], ">= 2 markers"),
        (1, [(16, 16, 16), (1, 1, 1)], [(16, 10, 22)], "outside particle"),
        (1, [(16, 16, 16), (16, 16, 16.2)], [(16, 10, 22)], "same voxel"),
        (1, [(16, 16, 16), (16, 16, 30)], [], "border: empty"),
        (1, [(16, 16, 16), (16, 16, 30)], [(0, 0, 0), (0, 0, 1)], "does not cross"),
        (1, [(16, 16, 16), (16, 16, 30)], [(1, 2)], "z, y, x"),
    ],
)
def test_clear_errors(pair, pid, markers, border, match):
    labels = pair[0]
    with pytest.raises(ValueError, match=match):
        split_particle(labels, pid, markers, border)


def test_geodesic_distance_goes_around_a_wall():
    mask = np.ones((1, 9, 9), bool)
    mask[0, 0:8, 4] = False  # a wall with a gap at the bottom row
    src = np.zeros_like(mask)
    src[0, 0, 0] = True
    d = geodesic_distance(mask, src)
    assert d[0, 0, 8] > 8 + 6  # straight line 8, but the path goes around the wall
    assert np.isinf(d[0, 0, 4])


def test_rasterised_polyline_is_connected():
    vox = rasterise_polyline(np.array([(0, 0, 0), (0, 5, 5), (3, 5, 9)]))
    steps = np.abs(np.diff(vox, axis=0)).max(axis=1)
    assert steps.max() <= 1


def test_timing_two_touching_particles_of_60_cubed():
    labels, truth_a, truth_b, ca, cb, contact = touching_pair(r=30, gap=1.6, extra=False)
    border = [(ca[0], ca[1] - 30, contact), (ca[0], ca[1] + 30, contact)]
    t = time.perf_counter()
    out = split_particle(labels, 1, [ca, cb], border)
    seconds = time.perf_counter() - t
    print(
        f"split_particle, two touching 60^3 particles ({int((labels == 1).sum())} voxels): "
        f"{seconds:.2f} s"
    )
    assert iou(out == 1, truth_a) >= 0.9 and iou(out == 2, truth_b) >= 0.9

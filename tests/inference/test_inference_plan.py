"""Chunk plan: the windows are MONAI's, each computed once, and every voxel's windows are its
own chunk's or its contributors'."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from monai.data.utils import dense_patch_slices
from monai.inferers.utils import _get_scan_interval

from particleseg.inference.plan import DIRECTIONS, plan_chunks, window_starts


def monai_starts(shape, patch, overlap):
    padded = [max(n, p) for n, p in zip(shape, patch, strict=True)]
    interval = _get_scan_interval(padded, patch, 3, (overlap,) * 3)
    slices = dense_patch_slices(padded, patch, interval)
    return sorted(tuple(s.start for s in sl) for sl in slices)


CASES = [
    ((40, 50, 45), (16, 16, 16), 16, 0.5),
    ((40, 50, 45), (16, 16, 16), 40, 0.5),
    ((70, 33, 9), (16, 16, 16), 24, 0.5),  # x shorter than the patch: padded
    ((64, 64, 64), (16, 32, 16), 32, 0.5),
    ((37, 21, 50), (8, 8, 8), 8, 0.25),
    ((16, 16, 16), (16, 16, 16), 16, 0.5),  # one window exactly
]


@pytest.mark.parametrize("shape,patch,chunk,overlap", CASES)
def test_windows_are_monai_windows_each_once(shape, patch, chunk, overlap):
    plan = plan_chunks(shape, patch, chunk, overlap)
    owned = [tuple(w) for c in range(plan.n_chunks) for w in plan.windows(c).tolist()]
    assert sorted(owned) == monai_starts(shape, patch, overlap)
    assert len(owned) == len(set(owned)) == plan.n_windows


@pytest.mark.parametrize("shape,patch,chunk,overlap", CASES)
def test_each_voxel_gets_all_its_windows_from_its_chunk_and_contributors(
    shape, patch, chunk, overlap
):
    plan = plan_chunks(shape, patch, chunk, overlap)
    covered = np.zeros(plan.padded_shape, np.int32)  # windows per voxel, the reference
    for w in monai_starts(shape, patch, overlap):
        covered[tuple(slice(s, s + p) for s, p in zip(w, patch, strict=True))] += 1
    got = np.zeros(plan.padded_shape, np.int32)
    for c in range(plan.n_chunks):
        (i0, i1), (e0, e1) = plan.interior(c), plan.extent(c)
        assert all(a <= b for a, b in zip(e1, plan.padded_shape, strict=True))
        mine = np.zeros([b - a for a, b in zip(e0, e1, strict=True)], np.int32)
        for w in plan.windows(c) - np.asarray(e0):
            mine[tuple(slice(s, s + p) for s, p in zip(w, patch, strict=True))] += 1
        # what the chunk keeps (interior) plus what it hands on (pieces) is all it computed
        kept = mine[tuple(slice(0, b - a) for a, b in zip(i0, i1, strict=True))]
        got[tuple(slice(a, b) for a, b in zip(i0, i1, strict=True))] += kept
        handed = kept.sum()
        for d in DIRECTIONS:
            region = plan.piece(c, d)
            if region is None:
                continue
            lo, hi = region
            n = plan.index([p + o for p, o in zip(plan.position(c), d, strict=True)])
            assert n is not None and (c, d) in plan.contributors(n)
            part = mine[tuple(slice(a - s, b - s) for a, b, s in zip(lo, hi, e0, strict=True))]
            got[tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))] += part
            handed += part.sum()
            # a piece lands inside the neighbour's interior
            n0, n1 = plan.interior(n)
            assert all(a >= s and b <= t for a, b, s, t in zip(lo, hi, n0, n1, strict=True))
        assert handed == mine.sum()
    np.testing.assert_array_equal(got, covered)


def test_chunks_tile_the_grid_and_are_multiples_of_the_step():
    plan = plan_chunks((100, 90, 80), (32, 32, 32), 50, 0.5)
    assert plan.chunk_size == (64, 64, 64)  # rounded up to a multiple of the step (16), >= patch
    cells = [plan.interior(c) for c in range(plan.n_chunks)]
    volume = sum(np.prod(np.subtract(b, a)) for a, b in cells)
    assert volume == np.prod(plan.padded_shape)
    for (a, b), (c, d) in itertools.combinations(cells, 2):
        assert any(max(x, z) >= min(y, w) for x, y, z, w in zip(a, b, c, d, strict=True))


def test_padding_is_symmetric_like_monai():
    plan = plan_chunks((10, 40, 7), (16, 16, 16), 16)
    assert plan.pad == (3, 0, 4)
    assert plan.padded_shape == (16, 40, 16)
    assert plan.unpadded((0, 0, 0), (16, 40, 16)) == ((0, 0, 0), (10, 40, 7))


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"network_shape": (10, 10), "patch": (4, 4, 4), "chunk_size": 8}, "network_shape"),
        ({"network_shape": (10, 10, 10), "patch": (4, 0, 4), "chunk_size": 8}, "patch"),
        ({"network_shape": (10, 10, 10), "patch": (4, 4, 4), "chunk_size": 0}, "chunk_size"),
        (
            {"network_shape": (10, 10, 10), "patch": (4, 4, 4), "chunk_size": 8, "overlap": 1},
            "overlap",
        ),
    ],
)
def test_bad_plans_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        plan_chunks(**kwargs)


def test_window_starts_refuses_short_axis():
    with pytest.raises(ValueError, match="shorter than the patch"):
        window_starts(5, 8, 0.5)

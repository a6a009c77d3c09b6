import subprocess
import sys

import numpy as np
import pytest

from particleseg.metrics import overlap as overlap_module
from particleseg.metrics import overlap_table


def _naive_table(pred, ref):
    pairs = {}
    for p in np.unique(pred):
        for r in np.unique(ref):
            if p and r:
                n = int(((pred == p) & (ref == r)).sum())
                if n:
                    pairs[(int(p), int(r))] = n
    return pairs


def _as_dict(table):
    return {
        (int(p), int(r)): int(c)
        for p, r, c in zip(table.pair_pred, table.pair_ref, table.pair_count, strict=True)
    }


def test_small_table_contents():
    pred = np.array([[[0, 5, 5, 9], [9, 9, 0, 0]]], dtype=np.uint16)
    ref = np.array([[[2, 2, 0, 7], [7, 0, 0, 2]]], dtype=np.int32)
    t = overlap_table(pred, ref)
    assert t.pred_ids.tolist() == [5, 9]
    assert t.pred_sizes.tolist() == [2, 3]
    assert t.ref_ids.tolist() == [2, 7]
    assert t.ref_sizes.tolist() == [3, 2]
    assert t.pair_pred.tolist() == [5, 9]
    assert t.pair_ref.tolist() == [2, 7]
    assert t.pair_count.tolist() == [1, 2]
    assert t.pair_pred_index.tolist() == [0, 1]
    assert t.pair_ref_index.tolist() == [0, 1]
    assert t.fg_intersection == 3
    assert t.fg_union == 5 + 5 - 3
    assert (t.n_pred, t.n_ref, t.n_pairs, t.fg_pred, t.fg_ref) == (2, 2, 2, 5, 5)


def test_empty_volumes():
    z = np.zeros((3, 4, 5), np.uint32)
    t = overlap_table(z, z)
    assert t.n_pred == t.n_ref == t.n_pairs == 0
    assert t.fg_intersection == t.fg_union == 0
    t = overlap_table(np.zeros((0, 4), np.uint8), np.zeros((0, 4), np.uint8))
    assert t.n_pairs == 0


def _random_pair(rng, shape=(9, 10, 11), n_pred=12, n_ref=9):
    pred = rng.choice(np.r_[0, rng.choice(10**6, n_pred, replace=False) + 1], shape)
    ref = rng.choice(np.r_[0, rng.choice(10**6, n_ref, replace=False) + 1], shape)
    return pred.astype(np.int64), ref.astype(np.uint32)


@pytest.mark.parametrize("seed", range(5))
def test_matches_naive_counts(seed):
    pred, ref = _random_pair(np.random.default_rng(seed))
    t = overlap_table(pred, ref)
    assert _as_dict(t) == _naive_table(pred, ref)
    keys = list(zip(t.pair_pred.tolist(), t.pair_ref.tolist(), strict=True))
    assert keys == sorted(keys)
    np.testing.assert_array_equal(t.pred_ids[t.pair_pred_index], t.pair_pred)
    np.testing.assert_array_equal(t.ref_ids[t.pair_ref_index], t.pair_ref)
    assert t.fg_intersection == int(((pred > 0) & (ref > 0)).sum())
    assert t.fg_union == int(((pred > 0) | (ref > 0)).sum())


@pytest.mark.parametrize("seed", range(3))
def test_sparse_and_lookup_paths_agree(seed, monkeypatch):
    pred, ref = _random_pair(np.random.default_rng(100 + seed))
    expected = overlap_table(pred, ref)
    monkeypatch.setattr(overlap_module, "DENSE_PAIR_LIMIT", 1)
    monkeypatch.setattr(overlap_module, "_LUT_LIMIT", 1)
    monkeypatch.setattr(overlap_module, "CHUNK_VOXELS", 97)
    got = overlap_table(pred, ref)
    for field in ("pred_ids", "ref_ids", "pred_sizes", "ref_sizes", "pair_pred", "pair_ref"):
        np.testing.assert_array_equal(getattr(got, field), getattr(expected, field))
    np.testing.assert_array_equal(got.pair_count, expected.pair_count)
    assert got.fg_intersection == expected.fg_intersection


def test_large_ids_and_small_chunks(monkeypatch):
    monkeypatch.setattr(overlap_module, "CHUNK_VOXELS", 5)
    ref = np.array([[1, 1, 2, 2, 0, 3]], dtype=np.uint64)
    pred = np.array([[2**40, 0, 2**40, 7, 7, 7]], dtype=np.uint64)
    t = overlap_table(pred, ref)
    assert _as_dict(t) == {(7, 2): 1, (7, 3): 1, (2**40, 1): 1, (2**40, 2): 1}


def test_non_contiguous_input():
    rng = np.random.default_rng(3)
    pred, ref = _random_pair(rng, shape=(8, 10, 12))
    t = overlap_table(pred[:, ::2, 1::3], ref[:, ::2, 1::3])
    assert _as_dict(t) == _naive_table(pred[:, ::2, 1::3], ref[:, ::2, 1::3])


def test_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(4, 5, 6\).*\(4, 5, 7\)"):
        overlap_table(np.zeros((4, 5, 6), np.uint32), np.zeros((4, 5, 7), np.uint32))


@pytest.mark.parametrize("dtype", [np.float32, np.float64, bool])
def test_non_integer_dtype_rejected(dtype):
    good = np.zeros((3, 3, 3), np.uint32)
    with pytest.raises(ValueError, match="integer"):
        overlap_table(good.astype(dtype), good)
    with pytest.raises(ValueError, match="integer"):
        overlap_table(good, good.astype(dtype))


def test_negative_ids_rejected():
    good = np.zeros((3, 3, 3), np.int16)
    bad = good.copy()
    bad[1, 1, 1] = -4
    with pytest.raises(ValueError, match="negative"):
        overlap_table(bad, good)
    with pytest.raises(ValueError, match="negative"):
        overlap_table(good, bad)


def test_metrics_never_import_torch():
    code = (
        "import sys, particleseg.metrics; "
        "assert 'torch' not in sys.modules, 'particleseg.metrics imported torch'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)

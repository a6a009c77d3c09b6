import numpy as np
import pytest

from particleseg.metrics import (
    METRIC_KEYS,
    evaluate_instances,
    evaluate_table,
    overlap_table,
    pooled_scores,
)

SCORES = ("f1", "f1_match", "f1_instance", "pq", "sq", "rq")
COUNTS = ("tp", "fp", "fn", "n_pred", "n_ref", "n_mergers", "n_splitters")
COUNTS += ("pq_tp", "pq_fp", "pq_fn")


# ---------------------------------------------------------------------------------------------
# A deliberately naive implementation: per-particle boolean masks, double loops, definitions
# read literally.
# ---------------------------------------------------------------------------------------------
def naive_metrics(pred, ref, match_threshold=0.1, merge_fraction=0.5, pq_iou=0.5):
    pred_fg = pred > 0
    ref_fg = ref > 0
    pred_ids = [int(i) for i in np.unique(pred) if i != 0]
    ref_ids = [int(i) for i in np.unique(ref) if i != 0]
    pmask = {p: pred == p for p in pred_ids}
    rmask = {r: ref == r for r in ref_ids}
    n_pred, n_ref = len(pred_ids), len(ref_ids)

    denom = int(pred_fg.sum()) + int(ref_fg.sum())
    f1 = 1.0 if denom == 0 else 2 * int((pred_fg & ref_fg).sum()) / denom

    inter = {}
    for p in pred_ids:
        for r in ref_ids:
            inter[p, r] = int((pmask[p] & rmask[r]).sum())

    def dice(p, r):
        return 2 * inter[p, r] / (int(pmask[p].sum()) + int(rmask[r].sum()))

    def iou(p, r):
        return inter[p, r] / int((pmask[p] | rmask[r]).sum())

    candidates = [(p, r) for p in pred_ids for r in ref_ids if dice(p, r) >= match_threshold]
    candidates.sort(key=lambda pr: (-dice(*pr), pr[0], pr[1]))
    matched_p, matched_r, matched_dice = set(), set(), []
    for p, r in candidates:
        if p not in matched_p and r not in matched_r:
            matched_p.add(p)
            matched_r.add(r)
            matched_dice.append(dice(p, r))
    tp = len(matched_dice)
    fp, fn = n_pred - tp, n_ref - tp

    n_mergers = merged = 0
    for p in pred_ids:
        group = [r for r in ref_ids if inter[p, r] / int(rmask[r].sum()) >= merge_fraction]
        if len(group) >= 2:
            n_mergers += 1
            merged += len(group) - 1
    n_splitters = split = 0
    for r in ref_ids:
        group = [p for p in pred_ids if inter[p, r] / int(pmask[p].sum()) >= merge_fraction]
        if len(group) >= 2:
            n_splitters += 1
            split += len(group) - 1

    pq_pairs = [iou(p, r) for p in pred_ids for r in ref_ids if iou(p, r) > pq_iou]
    pq_tp = len(pq_pairs)
    pq_fp, pq_fn = n_pred - pq_tp, n_ref - pq_tp

    if n_pred == 0 and n_ref == 0:
        f1_match = f1_instance = sq = rq = pq = 1.0
    else:
        f1_match = 2 * tp / (2 * tp + fp + fn)
        f1_instance = sum(matched_dice) / (tp + fp + fn)
        sq = sum(pq_pairs) / pq_tp if pq_tp else 0.0
        rq = pq_tp / (pq_tp + pq_fp / 2 + pq_fn / 2)
        pq = sq * rq
    return {
        "f1": f1,
        "f1_match": f1_match,
        "f1_instance": f1_instance,
        "merger_ratio": merged / n_ref if n_ref else 0.0,
        "splitter_ratio": split / n_ref if n_ref else 0.0,
        "pq": pq,
        "sq": sq,
        "rq": rq,
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "n_pred": n_pred,
        "n_ref": n_ref,
        "n_mergers": n_mergers,
        "n_splitters": n_splitters,
        "pq_tp": pq_tp,
        "pq_fp": pq_fp,
        "pq_fn": pq_fn,
        "fg_intersection": int((pred_fg & ref_fg).sum()),
        "fg_total": denom,
        "dice_sum": sum(matched_dice),
        "iou_sum": sum(pq_pairs),
        "n_merged": merged,
        "n_split": split,
    }


def assert_metrics_equal(got, expected, tol=1e-12):
    assert list(got) == list(METRIC_KEYS)
    assert set(got) == set(expected)
    for key in COUNTS:
        assert type(got[key]) is int, key
        assert got[key] == expected[key], key
    for key in (*SCORES, "merger_ratio", "splitter_ratio"):
        assert type(got[key]) is float, key
        assert got[key] == pytest.approx(expected[key], abs=tol, rel=0), key


# ---------------------------------------------------------------------------------------------
# Hand-computed toy cases.
# ---------------------------------------------------------------------------------------------
def _two_boxes():
    ref = np.zeros((6, 6, 6), np.uint32)
    ref[0:2, 0:2, 0:2] = 1  # 8 voxels
    ref[3:6, 3:6, 3:6] = 2  # 27 voxels
    return ref


def test_perfect_prediction_with_other_ids():
    ref = _two_boxes()
    pred = np.where(ref == 1, 40, np.where(ref == 2, 7, 0)).astype(np.int64)
    m = evaluate_instances(pred, ref)
    for key in SCORES:
        assert m[key] == 1.0
    assert m["merger_ratio"] == m["splitter_ratio"] == 0.0
    assert (m["tp"], m["fp"], m["fn"], m["n_pred"], m["n_ref"]) == (2, 0, 0, 2, 2)
    assert (m["pq_tp"], m["pq_fp"], m["pq_fn"], m["n_mergers"], m["n_splitters"]) == (2, 0, 0, 0, 0)


def test_merge_of_two_particles():
    ref = np.zeros((4, 4, 8), np.uint16)
    ref[0:2, 0:2, 0:2] = 1  # 8 voxels
    ref[0:2, 0:2, 4:6] = 2  # 8 voxels
    pred = (ref > 0).astype(np.uint8) * 3  # one particle of 16 voxels
    m = evaluate_instances(pred, ref)
    assert m["f1"] == 1.0
    # Both pairs have Dice 2*8/24 = 2/3; the tie goes to ref id 1.
    assert (m["tp"], m["fp"], m["fn"]) == (1, 0, 1)
    assert m["f1_match"] == pytest.approx(2 / 3, abs=1e-15)
    assert m["f1_instance"] == pytest.approx((2 / 3) / 2, abs=1e-15)
    assert m["n_mergers"] == 1
    assert m["merger_ratio"] == 0.5  # (2 - 1) / 2 reference particles
    # Half of the prediction lies in each reference particle, but one prediction is no split.
    assert m["n_splitters"] == 0 and m["splitter_ratio"] == 0.0
    # IoU = 8/16 = 0.5 is not > 0.5.
    assert (m["pq_tp"], m["pq_fp"], m["pq_fn"]) == (0, 1, 2)
    assert m["pq"] == m["sq"] == m["rq"] == 0.0


def test_pooled_scores_equal_the_images_side_by_side_in_one_volume():
    """Pooling adds counts and sums; the independent check is one volume holding all images."""
    rng = np.random.default_rng(7)
    pairs = []
    for i in range(3):
        ref = rng.integers(0, 4, (6, 7, 5 + i)).astype(np.uint32)
        pred = np.where(rng.random(ref.shape) < 0.8, ref, rng.integers(0, 5, ref.shape))
        pairs.append((pred.astype(np.uint32), ref))
    rows = [evaluate_instances(p, r) for p, r in pairs]
    gap = np.zeros((6, 7, 1), np.uint32)
    offset, preds, refs = 0, [], []
    for p, r in pairs:  # distinct ids per image, a background gap between them
        preds += [np.where(p > 0, p + offset, 0), gap]
        refs += [np.where(r > 0, r + offset, 0), gap]
        offset += 10
    whole = evaluate_instances(np.concatenate(preds, 2), np.concatenate(refs, 2))
    pooled = pooled_scores(rows)
    assert list(pooled) == list(METRIC_KEYS)
    for key in METRIC_KEYS:
        assert pooled[key] == pytest.approx(whole[key], abs=1e-12), key
    assert pooled_scores(rows[:1]) == rows[0]
    with pytest.raises(ValueError, match="no images"):
        pooled_scores([])


def test_splitter_ratio_divides_by_the_reference_particles():
    """Hand-computed: 4 reference particles, one split in two, one in three, two whole.

    Groups {a1, a2} and {b1, b2, b3}: (2 + 3) - 2 groups = 3 extra particles; P = 4 reference
    particles, so SplitterRatio = 3 / 4 (dividing by the 7 predicted ones would give 3 / 7).
    """
    ref = np.zeros((4, 4, 24), np.uint32)
    pred = np.zeros_like(ref)
    for i in range(4):
        ref[:, :, 6 * i : 6 * i + 6] = i + 1
    pred[:, :, 0:3], pred[:, :, 3:6] = 1, 2  # reference 1 in two halves
    pred[:, :, 6:8], pred[:, :, 8:10], pred[:, :, 10:12] = 3, 4, 5  # reference 2 in three
    pred[:, :, 12:18], pred[:, :, 18:24] = 6, 7  # references 3 and 4 whole
    m = evaluate_instances(pred, ref)
    assert (m["n_ref"], m["n_pred"], m["n_splitters"]) == (4, 7, 2)
    assert m["splitter_ratio"] == 3 / 4
    assert m["merger_ratio"] == 0.0


def test_split_in_three():
    ref = np.zeros((8, 5, 5), np.uint32)
    ref[1:7, 0:4, 0:4] = 5  # 96 voxels
    pred = np.zeros_like(ref)
    pred[1:3, 0:4, 0:4] = 11
    pred[3:5, 0:4, 0:4] = 12
    pred[5:7, 0:4, 0:4] = 13  # three parts of 32 voxels
    m = evaluate_instances(pred, ref)
    assert m["f1"] == 1.0
    # Each pair: Dice 2*32/128 = 0.5, IoU 1/3.
    assert (m["tp"], m["fp"], m["fn"]) == (1, 2, 0)
    assert m["f1_match"] == 0.5
    assert m["f1_instance"] == pytest.approx(0.5 / 3, abs=1e-15)
    assert m["n_splitters"] == 1
    assert m["splitter_ratio"] == 2.0  # (3 - 1) / 1 reference particle (the paper's P)
    assert m["n_mergers"] == 0 and m["merger_ratio"] == 0.0
    assert (m["pq_tp"], m["pq_fp"], m["pq_fn"]) == (0, 3, 1)
    assert m["pq"] == 0.0


def test_missed_particle():
    ref = _two_boxes()
    pred = (ref == 1).astype(np.uint32)
    m = evaluate_instances(pred, ref)
    assert m["f1"] == pytest.approx(2 * 8 / (8 + 35), abs=1e-15)
    assert (m["tp"], m["fp"], m["fn"]) == (1, 0, 1)
    assert m["f1_match"] == pytest.approx(2 / 3, abs=1e-15)
    assert m["f1_instance"] == 0.5
    assert m["sq"] == 1.0
    assert m["rq"] == pytest.approx(2 / 3, abs=1e-15)
    assert m["pq"] == pytest.approx(2 / 3, abs=1e-15)
    assert m["merger_ratio"] == m["splitter_ratio"] == 0.0


def test_match_threshold_is_inclusive():
    ref = np.zeros((1, 1, 30), np.uint32)
    ref[0, 0, 0:10] = 1
    pred = np.zeros_like(ref)
    pred[0, 0, 9:19] = 2  # 1 shared voxel: Dice = 2/20 = 0.1 exactly
    assert evaluate_instances(pred, ref)["tp"] == 1
    pred[0, 0, 19] = 2  # Dice = 2/21 < 0.1
    m = evaluate_instances(pred, ref)
    assert (m["tp"], m["fp"], m["fn"], m["f1_match"], m["f1_instance"]) == (0, 1, 1, 0.0, 0.0)
    assert evaluate_instances(pred, ref, match_threshold=0.05)["tp"] == 1


def test_greedy_prefers_higher_dice():
    ref = np.zeros((1, 1, 20), np.uint32)
    ref[0, 0, 0:10] = 1
    pred = np.zeros_like(ref)
    pred[0, 0, 0:4] = 1  # Dice 8/14
    pred[0, 0, 4:10] = 2  # Dice 12/16, matched
    m = evaluate_instances(pred, ref)
    assert (m["tp"], m["fp"], m["fn"]) == (1, 1, 0)
    assert m["f1_instance"] == pytest.approx(0.75 / 2, abs=1e-15)


def test_empty_prediction():
    ref = _two_boxes()
    m = evaluate_instances(np.zeros_like(ref), ref)
    for key in SCORES:
        assert m[key] == 0.0, key
    assert m["merger_ratio"] == m["splitter_ratio"] == 0.0
    assert (m["tp"], m["fp"], m["fn"], m["n_pred"], m["n_ref"]) == (0, 0, 2, 0, 2)
    assert (m["pq_tp"], m["pq_fp"], m["pq_fn"]) == (0, 0, 2)


def test_empty_reference():
    pred = _two_boxes()
    m = evaluate_instances(pred, np.zeros_like(pred))
    for key in SCORES:
        assert m[key] == 0.0, key
    assert m["merger_ratio"] == m["splitter_ratio"] == 0.0
    assert (m["tp"], m["fp"], m["fn"], m["n_pred"], m["n_ref"]) == (0, 2, 0, 2, 0)


def test_both_empty():
    z = np.zeros((5, 5, 5), np.uint32)
    m = evaluate_instances(z, z)
    for key in SCORES:
        assert m[key] == 1.0, key
    assert m["merger_ratio"] == m["splitter_ratio"] == 0.0
    for key in COUNTS:
        assert m[key] == 0, key


def test_non_consecutive_ids_and_dtypes():
    ref = _two_boxes()
    expected = evaluate_instances(ref, ref)
    pred = np.where(ref == 1, 2**40 + 3, np.where(ref == 2, 17, 0)).astype(np.uint64)
    ref_i8 = np.where(ref == 1, 99, np.where(ref == 2, 3, 0)).astype(np.int8)
    assert evaluate_instances(pred, ref_i8) == expected


def test_evaluate_table_reuses_table():
    ref = _two_boxes()
    pred = np.roll(ref, 1, axis=2)
    table = overlap_table(pred, ref)
    assert evaluate_table(table, match_threshold=0.3) == evaluate_instances(
        pred, ref, match_threshold=0.3
    )


# ---------------------------------------------------------------------------------------------
# Random cases against the naive implementation.
# ---------------------------------------------------------------------------------------------
def _paint(rng, shape, n, ids):
    labels = np.zeros(shape, np.int64)
    grid = np.indices(shape)
    for i in ids[:n]:
        center = rng.uniform(0, np.array(shape))
        radii = rng.uniform(1.5, 6.0, 3)
        if rng.random() < 0.5:
            inside = np.all(
                np.abs(grid - center[:, None, None, None]) <= radii[:, None, None, None], 0
            )
        else:
            d = ((grid - center[:, None, None, None]) / radii[:, None, None, None]) ** 2
            inside = d.sum(0) <= 1
        labels[inside] = i
    return labels


def _perturb(rng, ref):
    pred = ref.copy()
    ids = [int(i) for i in np.unique(ref) if i]
    if rng.random() < 0.6:
        pred = np.roll(pred, rng.integers(-2, 3), axis=int(rng.integers(3)))
    if len(ids) >= 2 and rng.random() < 0.6:  # merges
        for _ in range(rng.integers(1, 3)):
            a, b = rng.choice(ids, 2, replace=False)
            pred[pred == b] = a
    if ids and rng.random() < 0.6:  # splits in two or three along an axis
        for victim in rng.choice(ids, min(len(ids), rng.integers(1, 3)), replace=False):
            where = np.nonzero(pred == victim)
            if where[0].size == 0:
                continue
            axis = int(rng.integers(3))
            coord = where[axis]
            cuts = np.sort(rng.uniform(coord.min(), coord.max() + 1, rng.integers(1, 3)))
            part = np.searchsorted(cuts, coord)
            pred[where] = np.where(part == 0, victim, 10_000 + 100 * victim + part)
    if ids and rng.random() < 0.4:  # missed particles
        pred[pred == rng.choice(ids)] = 0
    if rng.random() < 0.4:  # spurious particles
        extra = _paint(rng, ref.shape, 2, [50_001, 50_002])
        pred[extra > 0] = extra[extra > 0]
    if rng.random() < 0.3:  # erode/dilate-like boundary noise
        flip = rng.random(ref.shape) < 0.05
        pred[flip] = 0
    # random non-consecutive relabelling
    old = np.unique(pred)
    new = np.r_[0, rng.choice(2**31, old.size - 1, replace=False) + 1]
    return new[np.searchsorted(old, pred)]


def _random_case(seed):
    rng = np.random.default_rng(seed)
    shape = tuple(int(s) for s in rng.integers(16, 25, 3))
    n = int(rng.integers(1, 14))
    ids = rng.choice(10**5, 20, replace=False) + 1
    ref = _paint(rng, shape, n, ids)
    kind = rng.random()
    if kind < 0.08:
        pred = _paint(rng, shape, int(rng.integers(1, 10)), ids[::-1])  # unrelated
    elif kind < 0.11:
        pred = np.zeros(shape, np.int64)
    elif kind < 0.13:
        pred, ref = ref, np.zeros(shape, np.int64)
    else:
        pred = _perturb(rng, ref)
    return pred, ref.astype(np.uint32)


@pytest.mark.parametrize("seed", range(50))
def test_random_cases_match_naive(seed):
    pred, ref = _random_case(seed)
    assert_metrics_equal(evaluate_instances(pred, ref), naive_metrics(pred, ref))


@pytest.mark.parametrize("seed", range(8))
def test_random_cases_other_parameters(seed):
    pred, ref = _random_case(1000 + seed)
    params = {"match_threshold": 0.5, "merge_fraction": 0.3, "pq_iou": 0.7}
    assert_metrics_equal(
        evaluate_instances(pred, ref, **params), naive_metrics(pred, ref, **params)
    )


def test_random_cases_cover_mergers_and_splitters():
    cases = [_random_case(seed) for seed in range(50)]
    results = [evaluate_instances(p, r) for p, r in cases]
    assert sum(m["n_mergers"] > 0 for m in results) >= 5
    assert sum(m["n_splitters"] > 0 for m in results) >= 5
    assert sum(0 < m["f1_match"] < 1 for m in results) >= 20


# ---------------------------------------------------------------------------------------------
# Bad input.
# ---------------------------------------------------------------------------------------------
def test_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(8, 8, 8\).*\(8, 8, 9\)"):
        evaluate_instances(np.zeros((8, 8, 8), np.uint32), np.zeros((8, 8, 9), np.uint32))


def test_float_labels_rejected():
    ref = _two_boxes()
    with pytest.raises(ValueError, match="integer"):
        evaluate_instances(ref.astype(np.float32), ref)


def test_negative_ids_rejected():
    ref = _two_boxes().astype(np.int32)
    pred = ref.copy()
    pred[0, 0, 0] = -1
    with pytest.raises(ValueError, match="negative"):
        evaluate_instances(pred, ref)


@pytest.mark.parametrize(
    "params",
    [
        {"match_threshold": 0.0},
        {"match_threshold": 1.5},
        {"merge_fraction": 0.0},
        {"merge_fraction": float("nan")},
        {"pq_iou": 0.4},
        {"pq_iou": 1.0},
    ],
)
def test_bad_parameters_rejected(params):
    ref = _two_boxes()
    with pytest.raises(ValueError, match=next(iter(params))):
        evaluate_instances(ref, ref, **params)

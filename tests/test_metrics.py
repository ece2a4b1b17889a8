"""Tests for msrn_core.metrics: checked against scikit-learn wherever it has a reference."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score, f1_score, precision_score, recall_score

from msrn_core.metrics import (
    average_precision,
    compute_all_metrics,
    format_metrics_table,
    mean_average_precision,
    per_class_ap,
    per_class_counts,
    precision_recall_f1,
    predict_labels,
    format_p_value,
    rank_correlation,
    ranks,
    sigmoid,
)

SEEDS = [0, 1, 2, 3, 4]


def _random_problem(seed: int, n: int = 60, c: int = 5, ties: str | None = None):
    """Random multi-label data in which every class has at least one positive and one negative."""
    rng = np.random.default_rng(seed)
    targets = (rng.random((n, c)) < 0.3).astype(int)
    targets[0] = 1
    targets[1] = 0
    scores = rng.random((n, c)) + 0.4 * targets  # informative but imperfect
    if ties == "round":
        scores = np.round(scores, 1)
    elif ties == "int":
        scores = rng.integers(0, 4, size=(n, c)).astype(float)
    return scores, targets


# ------------------------------------------------------------------------------------------
# AP / mAP
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("ties", [None, "round", "int"])
def test_ap_matches_sklearn(seed, ties):
    scores, targets = _random_problem(seed, ties=ties)
    if ties is None:
        assert len(np.unique(scores)) == scores.size  # really no ties
    else:
        assert len(np.unique(scores)) < scores.size / 4  # really heavy ties
    for c in range(targets.shape[1]):
        expected = average_precision_score(targets[:, c], scores[:, c])
        assert average_precision(scores[:, c], targets[:, c]) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_ap_all_tied_and_single_items(seed):
    rng = np.random.default_rng(seed)
    targets = (rng.random(20) < 0.5).astype(int)
    targets[0] = 1
    scores = np.full(20, 0.7)
    expected = average_precision_score(targets, scores)
    assert average_precision(scores, targets) == pytest.approx(expected, abs=1e-12)
    assert average_precision(np.array([0.3]), np.array([1])) == pytest.approx(1.0)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("ties", [None, "round"])
def test_map_is_mean_of_sklearn_per_class_ap(seed, ties):
    scores, targets = _random_problem(seed, ties=ties)
    expected = [average_precision_score(targets[:, c], scores[:, c]) for c in range(targets.shape[1])]
    np.testing.assert_allclose(per_class_ap(scores, targets), expected, atol=1e-12)
    assert mean_average_precision(scores, targets) == pytest.approx(np.mean(expected), abs=1e-12)


def test_accepts_torch_tensors_and_minus_one_negatives():
    scores, targets = _random_problem(7)
    expected = mean_average_precision(scores, targets)
    assert mean_average_precision(torch.tensor(scores), torch.tensor(targets)) == pytest.approx(expected)
    assert mean_average_precision(scores, np.where(targets > 0, 1, -1)) == pytest.approx(expected)


@pytest.mark.parametrize("seed", SEEDS)
def test_difficult_items_are_removed_for_ap(seed):
    scores, targets = _random_problem(seed, ties="round")
    rng = np.random.default_rng(100 + seed)
    difficult = rng.random(targets.shape) < 0.2
    difficult[0] = False  # keep a positive in every class
    assert difficult.any()
    aps = per_class_ap(scores, targets, difficult)
    for c in range(targets.shape[1]):
        keep = ~difficult[:, c]
        expected = average_precision_score(targets[keep, c], scores[keep, c])
        assert aps[c] == pytest.approx(expected, abs=1e-12)
        assert average_precision(scores[:, c], targets[:, c], difficult[:, c]) == pytest.approx(expected)
    # and it actually changes the result (otherwise the test above proves nothing)
    assert not np.allclose(aps, per_class_ap(scores, targets))


def test_class_without_positives_is_nan_and_ignored():
    scores, targets = _random_problem(3, c=4)
    targets[:, 2] = 0
    aps = per_class_ap(scores, targets)
    assert math.isnan(aps[2])
    assert not np.isnan(np.delete(aps, 2)).any()
    others = [average_precision_score(targets[:, c], scores[:, c]) for c in (0, 1, 3)]
    assert mean_average_precision(scores, targets) == pytest.approx(np.mean(others), abs=1e-12)
    assert math.isnan(average_precision(scores[:, 2], targets[:, 2]))

    names = ["cat", "dog", "unicorn", "car"]
    result = compute_all_metrics(scores, targets, class_names=names)
    assert result["undefined_classes"] == ["unicorn"]
    assert result["per_class_ap"]["unicorn"] is None
    assert result["mAP"] == pytest.approx(np.mean(others), abs=1e-12)
    json.dumps(result, allow_nan=False)  # strict JSON: no NaN anywhere


def test_positives_only_difficult_make_class_undefined():
    scores = np.array([0.9, 0.2, 0.5])
    targets = np.array([1, 0, 0])
    assert math.isnan(average_precision(scores, targets, difficult=np.array([True, False, False])))


def test_no_class_defined_gives_nan_map():
    scores = np.random.default_rng(0).random((5, 3))
    assert math.isnan(mean_average_precision(scores, np.zeros((5, 3))))


# ------------------------------------------------------------------------------------------
# threshold metrics
# ------------------------------------------------------------------------------------------
def test_threshold_metrics_hand_example():
    # 3 images x 3 classes, threshold 0.5.
    probs = np.array(
        [
            [0.9, 0.6, 0.1],   # predicts {0, 1}
            [0.2, 0.7, 0.8],   # predicts {1, 2}
            [0.4, 0.3, 0.55],  # predicts {2}
        ]
    )
    targets = np.array(
        [
            [1, 0, 0],
            [1, 1, 1],
            [0, 1, 1],
        ]
    )
    # class 0: Np=1 (img0), Nc=1, Ng=2 -> P=1,   R=1/2
    # class 1: Np=2 (img0, img1), Nc=1 (img1), Ng=2 -> P=1/2, R=1/2
    # class 2: Np=2 (img1, img2), Nc=2, Ng=2 -> P=1,   R=1
    # CP = (1 + 1/2 + 1)/3 = 5/6, CR = (1/2 + 1/2 + 1)/3 = 2/3, CF1 = 2*(5/6)(2/3)/(5/6+2/3) = 20/27
    # OP = (1+1+2)/(1+2+2) = 4/5, OR = 4/6 = 2/3, OF1 = 2*(4/5)(2/3)/(4/5+2/3) = 8/11
    counts = per_class_counts(probs, targets)
    np.testing.assert_array_equal(counts["Nc"], [1, 1, 2])
    np.testing.assert_array_equal(counts["Np"], [1, 2, 2])
    np.testing.assert_array_equal(counts["Ng"], [2, 2, 2])
    m = precision_recall_f1(probs, targets)
    assert m["CP"] == pytest.approx(5 / 6)
    assert m["CR"] == pytest.approx(2 / 3)
    assert m["CF1"] == pytest.approx(20 / 27)
    assert m["OP"] == pytest.approx(4 / 5)
    assert m["OR"] == pytest.approx(2 / 3)
    assert m["OF1"] == pytest.approx(8 / 11)


def test_threshold_is_inclusive():
    probs = np.array([[0.5, 0.49]])
    np.testing.assert_array_equal(predict_labels(probs), [[True, False]])


def test_conventions_no_prediction_and_no_positive():
    # class 0: normal (Nc=1, Np=1, Ng=1) -> P=1, R=1
    # class 1: has a positive but is never predicted -> P=0 (counted in CP), R=0
    # class 2: no positive, one false prediction -> excluded from CP and CR, counted in OP
    probs = np.array([[0.9, 0.1, 0.8], [0.1, 0.2, 0.1]])
    targets = np.array([[1, 0, 0], [0, 1, 0]])
    m = precision_recall_f1(probs, targets)
    assert m["CP"] == pytest.approx(0.5)   # (1 + 0) / 2
    assert m["CR"] == pytest.approx(0.5)   # (1 + 0) / 2
    assert m["OP"] == pytest.approx(0.5)   # 1 correct / 2 predicted
    assert m["OR"] == pytest.approx(0.5)   # 1 correct / 2 positives
    nothing = precision_recall_f1(np.zeros((2, 3)), targets)
    assert nothing["OP"] == 0.0 and nothing["CP"] == 0.0 and nothing["OF1"] == 0.0


@pytest.mark.parametrize("seed", SEEDS)
def test_overall_metrics_match_sklearn_micro(seed):
    rng = np.random.default_rng(seed)
    targets = (rng.random((80, 6)) < 0.3).astype(int)
    probs = np.clip(rng.random((80, 6)) * 0.8 + 0.3 * targets, 0, 1)
    y_pred = (probs >= 0.5).astype(int)
    m = precision_recall_f1(probs, targets)
    assert m["OP"] == pytest.approx(precision_score(targets, y_pred, average="micro"))
    assert m["OR"] == pytest.approx(recall_score(targets, y_pred, average="micro"))
    assert m["OF1"] == pytest.approx(f1_score(targets, y_pred, average="micro"))


@pytest.mark.parametrize("seed", SEEDS)
def test_per_class_metrics_match_sklearn_macro(seed):
    rng = np.random.default_rng(seed)
    targets = (rng.random((80, 6)) < 0.3).astype(int)
    probs = np.clip(rng.random((80, 6)) * 0.8 + 0.3 * targets, 0, 1)
    y_pred = (probs >= 0.5).astype(int)
    assert (targets.sum(0) > 0).all() and (y_pred.sum(0) > 0).all()
    m = precision_recall_f1(probs, targets)
    assert m["CP"] == pytest.approx(precision_score(targets, y_pred, average="macro", zero_division=0))
    assert m["CR"] == pytest.approx(recall_score(targets, y_pred, average="macro", zero_division=0))
    assert m["CF1"] == pytest.approx(2 * m["CP"] * m["CR"] / (m["CP"] + m["CR"]))
    # CF1 is the harmonic mean of the averages, which is not sklearn's macro F1
    assert m["CF1"] != pytest.approx(f1_score(targets, y_pred, average="macro"), abs=1e-9)


@pytest.mark.parametrize("seed", SEEDS)
def test_difficult_count_as_negatives_for_threshold_metrics(seed):
    rng = np.random.default_rng(seed)
    targets = (rng.random((50, 5)) < 0.4).astype(int)
    targets[0] = 1
    probs = np.clip(rng.random((50, 5)) * 0.8 + 0.3 * targets, 0, 1)
    difficult = (rng.random((50, 5)) < 0.2) & (targets == 1)
    difficult[0] = False
    zeroed = np.where(difficult, 0, targets)
    for top_k in (None, 3):
        got = precision_recall_f1(probs, targets, top_k=top_k, difficult=difficult)
        expected = precision_recall_f1(probs, zeroed, top_k=top_k)
        assert got == pytest.approx(expected)
        assert got != pytest.approx(precision_recall_f1(probs, targets, top_k=top_k))


def test_top3_keeps_three_highest_and_still_thresholds():
    probs = np.array(
        [
            [0.9, 0.8, 0.7, 0.6, 0.95, 0.1],  # 5 above 0.5 -> only classes 4, 0, 1
            [0.9, 0.4, 0.3, 0.2, 0.1, 0.05],  # top-3 = {0, 1, 2}, only class 0 passes 0.5
        ]
    )
    expected = np.array(
        [
            [True, True, False, False, True, False],
            [True, False, False, False, False, False],
        ]
    )
    np.testing.assert_array_equal(predict_labels(probs, top_k=3), expected)
    targets = np.ones_like(probs, dtype=int)
    assert per_class_counts(probs, targets, top_k=3)["Np"].sum() == 4
    assert per_class_counts(probs, targets)["Np"].sum() == 6
    m3 = precision_recall_f1(probs, targets, top_k=3)
    assert m3["OR"] == pytest.approx(4 / 12)


# ------------------------------------------------------------------------------------------
# compute_all_metrics and the table
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", SEEDS)
def test_from_logits_equals_sigmoid_probabilities(seed):
    rng = np.random.default_rng(seed)
    targets = (rng.random((40, 5)) < 0.3).astype(int)
    targets[0] = 1
    logits = rng.normal(size=(40, 5)) * 3 + 2 * targets - 1
    probs = 1.0 / (1.0 + np.exp(-logits))
    np.testing.assert_allclose(sigmoid(logits), probs, atol=1e-12)
    from_logits = compute_all_metrics(logits, targets, from_logits=True)
    from_probs = compute_all_metrics(probs, targets)
    assert from_logits["per_class_ap"] == pytest.approx(from_probs["per_class_ap"])
    assert from_logits["undefined_classes"] == from_probs["undefined_classes"]
    for key in ("mAP", "CP", "CR", "CF1", "OP", "OR", "OF1", "CP-3", "CR-3", "CF1-3", "OP-3", "OR-3", "OF1-3"):
        assert from_logits[key] == pytest.approx(from_probs[key])
    # treating logits as probabilities would differ
    wrong = compute_all_metrics(logits, targets)
    assert wrong["mAP"] == pytest.approx(from_probs["mAP"])
    assert wrong["OP"] != pytest.approx(from_probs["OP"])


def test_compute_all_metrics_keys_types_and_values():
    scores, targets = _random_problem(11, c=4)
    probs = scores / scores.max()
    result = compute_all_metrics(torch.tensor(probs), torch.tensor(targets))
    expected_keys = {
        "mAP", "per_class_ap", "CP", "CR", "CF1", "OP", "OR", "OF1",
        "CP-3", "CR-3", "CF1-3", "OP-3", "OR-3", "OF1-3", "undefined_classes",
    }
    assert set(result) == expected_keys
    assert list(result["per_class_ap"]) == ["class_0", "class_1", "class_2", "class_3"]
    for key in expected_keys - {"per_class_ap", "undefined_classes"}:
        assert type(result[key]) is float and 0.0 <= result[key] <= 1.0
    assert result["mAP"] == pytest.approx(mean_average_precision(probs, targets))
    assert result["OF1-3"] == pytest.approx(precision_recall_f1(probs, targets, top_k=3)["OF1"])
    assert result["undefined_classes"] == []
    json.dumps(result, allow_nan=False)


def test_format_metrics_table():
    results = {
        "MSRN": {"mAP": 0.8123, "CP": 0.7, "CR": 0.65, "CF1": 0.674, "OP": 0.81, "OR": 0.7,
                 "OF1": 0.751, "CF1-3": 0.6, "OF1-3": 0.66},
        "ResNet-101": {"mAP": 0.5, "CP": float("nan")},
    }
    table = format_metrics_table(results)
    lines = table.splitlines()
    assert lines[0].split() == ["Model", "mAP", "CP", "CR", "CF1", "OP", "OR", "OF1", "CF1-3", "OF1-3"]
    msrn = next(line for line in lines if line.startswith("MSRN")).split()
    assert msrn == ["MSRN", "81.2", "70.0", "65.0", "67.4", "81.0", "70.0", "75.1", "60.0", "66.0"]
    resnet = next(line for line in lines if line.startswith("ResNet-101")).split()
    assert resnet[:3] == ["ResNet-101", "50.0", "-"]


# --------------------------------------------------------------------------------------------
# the authors' threshold sweep, on examples worked out by hand
# --------------------------------------------------------------------------------------------
def test_authors_thresholds_are_their_twenty_logits():
    from msrn_core.metrics import AUTHORS_LOGIT_THRESHOLDS

    assert len(AUTHORS_LOGIT_THRESHOLDS) == 20
    assert AUTHORS_LOGIT_THRESHOLDS[0] == -1.0
    assert AUTHORS_LOGIT_THRESHOLDS[-1] == pytest.approx(0.9)
    assert np.allclose(np.diff(AUTHORS_LOGIT_THRESHOLDS), 0.1)


def test_authors_sweep_picks_the_first_threshold_with_the_best_cf1_plus_of1():
    from msrn_core.metrics import authors_threshold_metrics

    # class 0: positives at 0.35 and 0.55, negatives at -0.25 and -0.95
    # class 1: positives at 0.45 and 0.25, negatives at 0.15 and -0.55
    # t = 0.1 still predicts the 0.15 negative, t = 0.3 misses the 0.25 positive: t = 0.2 is perfect
    logits = np.array([[0.35, 0.45], [-0.25, 0.25], [0.55, 0.15], [-0.95, -0.55]])
    targets = np.array([[1, 1], [0, 1], [1, 0], [0, 0]])
    swept = authors_threshold_metrics(logits, targets)
    assert swept["threshold"] == pytest.approx(0.2)
    assert all(swept[key] == pytest.approx(1.0) for key in ("CP", "CR", "CF1", "OP", "OR", "OF1"))
    # at the tutorial's fixed threshold (logit 0, probability 0.5) class 1 predicts 3 of which 2 are right
    fixed = compute_all_metrics(logits, targets, from_logits=True)
    assert fixed["CP"] == pytest.approx((1 + 2 / 3) / 2) and fixed["OP"] == pytest.approx(4 / 5)
    both = compute_all_metrics(logits, targets, from_logits=True, thresholds="authors")
    assert both["CF1"] == pytest.approx(1.0) and both["threshold"] == pytest.approx(0.2)
    assert both["mAP"] == fixed["mAP"]


def test_authors_counting_adds_one_prediction_for_a_silent_class():
    from msrn_core.metrics import authors_threshold_metrics

    # class 1 is never predicted (every logit below -1): the authors count Np = 1 for it, so
    # OP = 1 / (1 + 1) where ours is 1 / 1; every threshold ties, the first (-1.0) is kept
    logits = np.array([[2.0, -3.0], [-2.0, -3.0]])
    targets = np.array([[1, 1], [0, 0]])
    swept = authors_threshold_metrics(logits, targets)
    assert swept["threshold"] == -1.0
    assert swept["OP"] == pytest.approx(0.5) and swept["OR"] == pytest.approx(0.5)
    assert swept["CP"] == pytest.approx(0.5) and swept["CR"] == pytest.approx(0.5)
    assert precision_recall_f1(sigmoid(logits), targets)["OP"] == pytest.approx(1.0)


def test_authors_top3_chooses_between_all_labels_and_the_top3_with_nonnegative_logits():
    from msrn_core.metrics import authors_threshold_metrics

    logits = np.array([[0.5, -0.2, -0.4, -3.0], [-3.0, 0.3, 0.2, 0.1]])
    targets = np.array([[1, 1, 0, 0], [0, 0, 1, 1]])
    # t = -1.0 predicts every label: CP = OP = 4/8, CR = OR = 1, so CF1 = OF1 = 2/3 (sum 4/3);
    # t > -1 predicts image 0's class 0 and image 1's classes 1-3: 3 of 4 right, CF1 = OF1 = 3/4
    swept = authors_threshold_metrics(logits, targets, top_k=3)
    assert swept["threshold"] == pytest.approx(-0.9)
    assert all(swept[key] == pytest.approx(0.75) for key in ("CP", "CR", "CF1", "OP", "OR", "OF1"))


def test_authors_thresholds_need_logits():
    with pytest.raises(ValueError, match="from_logits=True"):
        compute_all_metrics(np.zeros((2, 2)), np.eye(2), thresholds="authors")


# --------------------------------------------------------------------------- rank correlation
def test_rank_correlation_agrees_with_scipy_and_its_p_value_with_the_exact_null():
    from scipy.stats import spearmanr

    rng = np.random.default_rng(0)
    for seed in range(4):
        x = rng.normal(size=26)
        y = 0.5 * x + rng.normal(size=26)
        y[:3] = np.round(y[:3])  # a few ties
        x[5] = x[6]
        rho, p = rank_correlation(x, y, permutations=20_000, seed=seed)
        reference = spearmanr(x, y)
        assert rho == pytest.approx(reference.statistic, abs=1e-12)
        assert p == pytest.approx(reference.pvalue, abs=0.02)  # scipy's t approximation of the same null
    # 4 values: all 24 orders are equally likely under the null; |rho| = 1 for exactly 2 of them
    rho, p = rank_correlation([1, 2, 3, 4], [10, 20, 30, 40], permutations=40_000)
    assert rho == pytest.approx(1.0) and p == pytest.approx(2 / 24, abs=0.01)
    rho, _ = rank_correlation([1, 2, 3, 4], [1, 8, 27, 64.5][::-1])
    assert rho == pytest.approx(-1.0)  # any monotone fall


def test_ranks_share_ties_like_scipy_and_the_p_value_prints_its_resolution():
    from scipy.stats import rankdata

    values = np.array([3.0, 1.0, 3.0, 2.0, 3.0, -1.0])
    np.testing.assert_array_equal(ranks(values), rankdata(values))
    assert format_p_value(0.04213) == "p 0.042" and format_p_value(0.0001) == "p < 0.001"


def test_rank_correlation_skips_nan_pairs_and_refuses_what_it_cannot_rank():
    x = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    y = [2.0, 1.0, float("nan"), 4.0, 3.0, 6.0]
    assert rank_correlation(x, y) == pytest.approx(rank_correlation([1, 2, 4, 5, 6], [2, 1, 4, 3, 6]))
    assert all(math.isnan(v) for v in rank_correlation([1, 2, 3], [5, 5, 5]))  # a constant side
    assert all(math.isnan(v) for v in rank_correlation([1, float("nan"), 3], [1, 2, 3]))  # two pairs left
    with pytest.raises(ValueError, match="same length"):
        rank_correlation([1, 2, 3], [1, 2])

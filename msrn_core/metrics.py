"""Multi-label evaluation metrics, following the field's conventions (VOC / ML-GCN / MSRN papers).

Everything here is NumPy; torch tensors are accepted and converted with
``np.asarray(x.detach().cpu())``. All results are **fractions in [0, 1]**, not percentages
(only :func:`format_metrics_table` prints percentages).

Array conventions
-----------------
- ``scores``: shape ``(n_images, n_classes)`` (or ``(n_images,)`` for a single class). For the
  ranking metrics (AP, mAP) any monotone score works (logits or probabilities give the same
  result). For the threshold metrics they must be *probabilities*.
- ``targets``: same shape; a label is positive when its value is ``> 0`` (so both ``{0, 1}`` and
  the VOC-style ``{-1, 1}`` encodings work).
- ``difficult``: optional boolean mask of the same shape. Following VOC, difficult items are
  *removed* before computing AP, and count as *negatives* (target 0) for the threshold metrics.

Ranking metrics
---------------
- :func:`average_precision`: non-interpolated AP of one class, identical to
  ``sklearn.metrics.average_precision_score`` including its handling of tied scores (a block of
  equal scores is one threshold; its precision is taken after the whole block is included).
- :func:`per_class_ap`, :func:`mean_average_precision`: a class with no positive (after removing
  difficult items) has an undefined AP, reported as ``nan`` and left out of the mAP.

Threshold metrics (CP, CR, CF1, OP, OR, OF1)
--------------------------------------------
Per class c: ``Nc`` = correctly predicted positives, ``Np`` = predicted positives,
``Ng`` = ground-truth positives; a label is predicted when ``prob >= threshold`` (and, with
``top_k``, when it is also among the image's ``top_k`` highest scores).

- ``CP = mean_c Nc/Np``, ``CR = mean_c Nc/Ng``, ``CF1 = 2 CP CR / (CP + CR)`` (harmonic mean of
  the two averages, *not* the mean of the per-class F1 scores).
- ``OP = sum Nc / sum Np``, ``OR = sum Nc / sum Ng``, ``OF1 = 2 OP OR / (OP + OR)``.

Conventions for the degenerate cases (the ML-GCN code leaves them to 0/0):

- a class with **no predictions** (``Np = 0``) has precision **0** (as sklearn's
  ``zero_division=0``);
- a class with **no ground-truth positive** (``Ng = 0``) is *undefined* and is **excluded from both
  the CP and the CR means** (its false positives still count in OP);
- if no class is defined, CP and CR are ``nan``; ``OP = 0`` when nothing at all is predicted;
  ``OR = nan`` when there is no positive at all; an F1 whose precision and recall are both 0 is 0.

The authors' convention
-----------------------
MSRN's authors report CP ... OF1 at the best of 20 logit thresholds, chosen on the test split by
CF1 + OF1 (their ``util.py``, ``AveragePrecisionMeter.evaluation``).
:func:`authors_threshold_metrics` computes that, and ``compute_all_metrics(thresholds="authors")``
reports it; ``benchmarks/metric_conventions.py`` measures how much it raises CF1 and OF1.

Comparing classes
-----------------
:func:`rank_correlation`: Spearman's rank correlation between two per-class quantities (say, a
model's AP gain over a baseline and the class's number of training images) with a permutation
p-value, for questions such as "do rare classes gain more?" over a few dozen classes; :func:`ranks`
the rankings it correlates, :func:`format_p_value` how the tutorial prints the p-value.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

THRESHOLD_KEYS: tuple[str, ...] = ("CP", "CR", "CF1", "OP", "OR", "OF1")
TABLE_COLUMNS: tuple[str, ...] = ("mAP", "CP", "CR", "CF1", "OP", "OR", "OF1", "CF1-3", "OF1-3")


# --------------------------------------------------------------------------------------------
# input handling
# --------------------------------------------------------------------------------------------
def _to_numpy(x: Any) -> np.ndarray:
    """Return ``x`` as a NumPy array (torch tensors are detached and moved to the CPU)."""
    if hasattr(x, "detach"):
        x = x.detach().cpu()
    return np.asarray(x)


def _prepare(
    scores: Any, targets: Any, difficult: Any | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Convert and validate inputs: float scores, boolean positives, boolean difficult mask."""
    scores = _to_numpy(scores).astype(np.float64)
    targets = _to_numpy(targets)
    if scores.shape != targets.shape:
        raise ValueError(f"scores {scores.shape} and targets {targets.shape} differ in shape")
    if np.isnan(scores).any():
        raise ValueError("scores contain NaN")
    positives = targets > 0
    if difficult is None:
        hard = np.zeros(targets.shape, dtype=bool)
    else:
        hard = _to_numpy(difficult).astype(bool)
        if hard.shape != targets.shape:
            raise ValueError(f"difficult {hard.shape} and targets {targets.shape} differ in shape")
    return scores, positives, hard


def _as_2d(*arrays: np.ndarray) -> list[np.ndarray]:
    """View 1-D arrays (one class) as ``(n, 1)`` columns; leave 2-D arrays alone."""
    out = []
    for array in arrays:
        if array.ndim == 1:
            array = array[:, None]
        if array.ndim != 2:
            raise ValueError(f"expected a 1-D or 2-D array, got shape {array.shape}")
        out.append(array)
    return out


def sigmoid(x: Any) -> np.ndarray:
    """Numerically stable logistic function (no overflow warnings for large ``|x|``)."""
    x = _to_numpy(x).astype(np.float64)
    return 0.5 * (1.0 + np.tanh(0.5 * x))


# --------------------------------------------------------------------------------------------
# ranking metrics
# --------------------------------------------------------------------------------------------
def _ap_binary(scores: np.ndarray, positives: np.ndarray) -> float:
    """AP of one class from 1-D float scores and boolean labels (no difficult items left).

    Tied scores form one threshold: each block of equal scores contributes
    ``(positives in block / all positives) * precision after the block``, as in sklearn.
    """
    n_pos = int(positives.sum())
    if n_pos == 0:
        return float("nan")
    order = np.argsort(-scores, kind="stable")
    sorted_scores = scores[order]
    sorted_pos = positives[order]
    # index of the last item of each block of equal scores
    block_ends = np.r_[np.flatnonzero(np.diff(sorted_scores) != 0), sorted_scores.size - 1]
    tp = np.cumsum(sorted_pos)[block_ends]
    seen = block_ends + 1
    precision = tp / seen
    tp_in_block = np.diff(np.r_[0, tp])
    return float(np.sum(tp_in_block * precision) / n_pos)


def average_precision(scores: Any, targets: Any, difficult: Any | None = None) -> float:
    """Non-interpolated average precision of one class.

    Items are ranked by score (descending) and AP is the mean, over the positives, of the
    precision at their rank; tied scores are handled like ``sklearn.metrics.average_precision_score``
    (a block of ties is one threshold). Items with ``difficult`` set are removed first (VOC).

    Returns ``nan`` when no positive is left (AP is undefined), never 0.
    """
    scores, positives, hard = _prepare(scores, targets, difficult)
    if scores.ndim != 1:
        raise ValueError(f"average_precision expects 1-D inputs, got shape {scores.shape}")
    keep = ~hard
    return _ap_binary(scores[keep], positives[keep])


def per_class_ap(scores: Any, targets: Any, difficult: Any | None = None) -> np.ndarray:
    """AP of each column of ``(n_images, n_classes)`` arrays; ``nan`` for classes with no positive."""
    scores, positives, hard = _prepare(scores, targets, difficult)
    scores, positives, hard = _as_2d(scores, positives, hard)
    return np.array(
        [
            _ap_binary(scores[~hard[:, c], c], positives[~hard[:, c], c])
            for c in range(scores.shape[1])
        ],
        dtype=np.float64,
    )


def _nanmean(values: np.ndarray) -> float:
    """Mean of the non-nan values, ``nan`` (without a warning) when there is none."""
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else float("nan")


def mean_average_precision(scores: Any, targets: Any, difficult: Any | None = None) -> float:
    """mAP: mean of :func:`per_class_ap` over the classes with at least one positive.

    Returns ``nan`` when no class has a positive.
    """
    return _nanmean(per_class_ap(scores, targets, difficult))


# --------------------------------------------------------------------------------------------
# threshold metrics
# --------------------------------------------------------------------------------------------
def predict_labels(
    probs: Any, threshold: float = 0.5, top_k: int | None = None
) -> np.ndarray:
    """Boolean predictions: ``prob >= threshold``, restricted to each image's ``top_k`` scores.

    With ``top_k`` the ``top_k`` highest scores of an image are the candidates and each must
    still pass the threshold, so an image may predict fewer than ``top_k`` labels. Ties at the
    ``top_k`` boundary go to the lower class index.
    """
    probs = _to_numpy(probs).astype(np.float64)
    (probs,) = _as_2d(probs)
    predicted = probs >= threshold
    if top_k is not None:
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        if top_k < probs.shape[1]:
            top = np.argsort(-probs, axis=1, kind="stable")[:, :top_k]
            candidate = np.zeros_like(predicted)
            np.put_along_axis(candidate, top, True, axis=1)
            predicted &= candidate
    return predicted


def per_class_counts(
    scores: Any,
    targets: Any,
    threshold: float = 0.5,
    top_k: int | None = None,
    difficult: Any | None = None,
) -> dict[str, np.ndarray]:
    """Per-class counts and rates behind CP/CR.

    Returns arrays of length ``n_classes``: ``Nc`` (correct predictions), ``Np`` (predictions),
    ``Ng`` (ground-truth positives, difficult items counted as negatives), ``precision``
    (``Nc/Np``, 0 when ``Np = 0``) and ``recall`` (``Nc/Ng``, ``nan`` when ``Ng = 0``).
    """
    probs, positives, hard = _prepare(scores, targets, difficult)
    probs, positives, hard = _as_2d(probs, positives, hard)
    truth = positives & ~hard
    predicted = predict_labels(probs, threshold, top_k)
    n_correct = (predicted & truth).sum(axis=0)
    n_predicted = predicted.sum(axis=0)
    n_truth = truth.sum(axis=0)
    precision = np.divide(
        n_correct, n_predicted, out=np.zeros(n_correct.shape), where=n_predicted > 0
    )
    recall = np.divide(
        n_correct, n_truth, out=np.full(n_correct.shape, np.nan), where=n_truth > 0
    )
    return {"Nc": n_correct, "Np": n_predicted, "Ng": n_truth, "precision": precision, "recall": recall}


def _f1(precision: float, recall: float) -> float:
    """Harmonic mean; 0 when both are 0, ``nan`` when either is ``nan``."""
    if math.isnan(precision) or math.isnan(recall):
        return float("nan")
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def precision_recall_f1(
    scores: Any,
    targets: Any,
    threshold: float = 0.5,
    top_k: int | None = None,
    difficult: Any | None = None,
) -> dict[str, float]:
    """CP, CR, CF1, OP, OR, OF1 (fractions) for probability ``scores``.

    A label is predicted when ``prob >= threshold`` (and is among the image's ``top_k`` highest
    scores when ``top_k`` is given). Difficult items count as negatives.

    Conventions: a class with no prediction has precision 0; a class with no ground-truth
    positive is undefined and excluded from both the CP and CR means (its false positives still
    lower OP). CF1 is the harmonic mean of CP and CR, not the mean of per-class F1.
    """
    counts = per_class_counts(scores, targets, threshold, top_k, difficult)
    defined = counts["Ng"] > 0
    cp = _nanmean(np.where(defined, counts["precision"], np.nan))
    cr = _nanmean(counts["recall"])
    n_correct, n_predicted, n_truth = (int(counts[k].sum()) for k in ("Nc", "Np", "Ng"))
    op = n_correct / n_predicted if n_predicted else 0.0
    orec = n_correct / n_truth if n_truth else float("nan")
    return {
        "CP": cp,
        "CR": cr,
        "CF1": _f1(cp, cr),
        "OP": float(op),
        "OR": float(orec),
        "OF1": _f1(op, orec),
    }


# --------------------------------------------------------------------------------------------
# the authors' threshold sweep (MSRN's util.py, AveragePrecisionMeter.evaluation)
# --------------------------------------------------------------------------------------------
# The 20 logit thresholds the authors try, -1.0, -0.9, ..., 0.9, computed as their code does
# (x * 0.1 + -1, so 0.2 is 0.20000000000000018).
AUTHORS_LOGIT_THRESHOLDS: tuple[float, ...] = tuple(x * 0.1 + -1 for x in range(20))
THRESHOLD_RULES: tuple[str, ...] = ("fixed", "authors")  # compute_all_metrics(thresholds=...)


def _authors_counts_metrics(predicted: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """CP ... OF1 with the authors' counting: a class with no prediction counts Np = 1 (also in OP's
    denominator), and a class with no positive makes CR, hence CF1, nan."""
    n_classes = truth.shape[1]
    n_correct = (predicted & truth).sum(axis=0).astype(np.float64)
    n_truth = truth.sum(axis=0).astype(np.float64)
    n_predicted = np.maximum(predicted.sum(axis=0), 1).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        op = n_correct.sum() / n_predicted.sum()
        orec = n_correct.sum() / n_truth.sum()
        cp = np.sum(n_correct / n_predicted) / n_classes
        cr = np.sum(n_correct / n_truth) / n_classes
        return {"CP": float(cp), "CR": float(cr), "CF1": float(2 * cp * cr / (cp + cr)),
                "OP": float(op), "OR": float(orec), "OF1": float(2 * op * orec / (op + orec))}


def _authors_sweep(scores: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """The threshold of :data:`AUTHORS_LOGIT_THRESHOLDS` with the highest CF1 + OF1 (the first on a
    tie; a nan sum never wins), and the metrics there; all 0 and threshold nan if none wins."""
    best = dict.fromkeys(THRESHOLD_KEYS, 0.0) | {"threshold": float("nan")}
    for threshold in AUTHORS_LOGIT_THRESHOLDS:
        values = _authors_counts_metrics(scores >= threshold, truth)
        if values["CF1"] + values["OF1"] > best["CF1"] + best["OF1"]:
            best = values | {"threshold": threshold}
    return best


def authors_threshold_metrics(logits: Any, targets: Any, difficult: Any | None = None,
                              top_k: int | None = None) -> dict[str, float]:
    """CP, CR, CF1, OP, OR, OF1 as MSRN's authors compute them (their ``util.py``,
    ``AveragePrecisionMeter.evaluation``, ``overall`` and ``overall_topk``), plus ``threshold``.

    Over the *evaluated* images, the logits are thresholded at each of
    :data:`AUTHORS_LOGIT_THRESHOLDS` (a label is predicted when ``logit >= t``) and the threshold
    with the highest CF1 + OF1 is kept: on the test split, the threshold is chosen on the test
    split. Their counting differs from :func:`precision_recall_f1` in the degenerate cases: a class
    with no prediction counts as one prediction (lowering OP), and a class with no positive makes
    CR and CF1 nan (so no threshold wins and every value is 0). Difficult items are negatives.

    With ``top_k`` (their ``overall_topk(3)``): each image's ``top_k`` logits become +1 where the
    logit is ``>= 0`` and -1 otherwise, every other label -1, and the same sweep runs on these
    scores, so it chooses between "every label predicted" (t = -1.0) and "the top-k labels with
    logit >= 0" (any other t). Ties at the top-k boundary go to the lower class index.
    """
    scores, positives, hard = _prepare(logits, targets, difficult)
    scores, positives, hard = _as_2d(scores, positives, hard)
    if top_k is not None:
        top = predict_labels(scores, threshold=-np.inf, top_k=top_k)
        scores = np.where(top & (scores >= 0), 1.0, -1.0)
    return _authors_sweep(scores, positives & ~hard)


# --------------------------------------------------------------------------------------------
# everything at once, and a table
# --------------------------------------------------------------------------------------------
def compute_all_metrics(
    scores_or_logits: Any,
    targets: Any,
    difficult: Any | None = None,
    class_names: Sequence[str] | None = None,
    from_logits: bool = False,
    thresholds: str = "fixed",
) -> dict[str, Any]:
    """All the metrics reported in the MSRN / ML-GCN papers, as fractions in [0, 1].

    AP uses the raw scores (ranking is the same for logits and probabilities); the threshold
    metrics (threshold 0.5, and top-3 with the ``-3`` suffix) use ``sigmoid(scores)`` when
    ``from_logits`` is true, else the scores as probabilities.

    ``thresholds="authors"`` computes the threshold metrics as MSRN's authors do instead
    (:func:`authors_threshold_metrics`: the best of 20 logit thresholds, chosen on the evaluated
    images) and adds the chosen ``threshold`` and ``threshold-3``; it needs logits
    (``from_logits=True``). The default ``"fixed"`` is the tutorial's convention.

    Returns a JSON-serialisable dict: ``mAP``; ``per_class_ap`` (class name -> float, ``None``
    for undefined classes); ``CP`` ``CR`` ``CF1`` ``OP`` ``OR`` ``OF1`` and their ``-3``
    variants; ``undefined_classes`` (names of classes with no positive). Top-level values are
    plain floats and can only be ``nan`` in degenerate cases (e.g. no positive at all).
    """
    scores = _to_numpy(scores_or_logits).astype(np.float64)
    targets = _to_numpy(targets)
    n_classes = scores.shape[1] if scores.ndim == 2 else 1
    names = [f"class_{c}" for c in range(n_classes)] if class_names is None else list(class_names)
    if len(names) != n_classes:
        raise ValueError(f"{len(names)} class names for {n_classes} classes")

    if thresholds not in THRESHOLD_RULES:
        raise ValueError(f"unknown thresholds {thresholds!r}; choose one of {THRESHOLD_RULES}")
    if thresholds == "authors" and not from_logits:
        raise ValueError("thresholds='authors' sweeps thresholds on logits: pass logits with from_logits=True")

    aps = per_class_ap(scores, targets, difficult)
    probs = sigmoid(scores) if from_logits else scores
    results: dict[str, Any] = {
        "mAP": _nanmean(aps),
        "per_class_ap": {
            name: (None if math.isnan(ap) else float(ap)) for name, ap in zip(names, aps)
        },
    }
    if thresholds == "authors":
        full = authors_threshold_metrics(scores, targets, difficult)
        top3 = authors_threshold_metrics(scores, targets, difficult, top_k=3)
    else:
        full = precision_recall_f1(probs, targets, difficult=difficult)
        top3 = precision_recall_f1(probs, targets, top_k=3, difficult=difficult)
    results.update(full)
    results.update({f"{key}-3": value for key, value in top3.items()})
    results["undefined_classes"] = [name for name, ap in zip(names, aps) if math.isnan(ap)]
    return {key: (float(v) if isinstance(v, (float, np.floating)) else v) for key, v in results.items()}


def _format_percent(value: Any) -> str:
    """``0.8123 -> '81.2'``; missing, ``None`` or ``nan`` -> ``'-'``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{100.0 * float(value):.1f}"


def format_metrics_table(results: dict[str, dict[str, Any]]) -> str:
    """Plain-text table, one row per model, columns mAP CP CR CF1 OP OR OF1 CF1-3 OF1-3 in percent.

    ``results`` maps a model name to a dict such as :func:`compute_all_metrics` returns
    (fractions); missing or undefined values print as ``-``.
    """
    header = ["Model", *TABLE_COLUMNS]
    rows = [
        [str(model), *(_format_percent(metrics.get(col)) for col in TABLE_COLUMNS)]
        for model, metrics in results.items()
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (cell.rjust(width) for cell, width in zip(cells[1:], widths[1:]))
        return "  ".join([first, *rest])

    rule = "-" * len(line(header))
    return "\n".join([line(header), rule, *(line(row) for row in rows)])


def ranks(values: Any) -> np.ndarray:
    """Ranks 1..n of ``values`` (1 = the smallest), ties sharing their mean rank, as
    ``scipy.stats.rankdata`` gives them: the ranks Spearman's rho correlates."""
    values = np.asarray(_to_numpy(values), dtype=np.float64).ravel()
    order = np.argsort(values, kind="mergesort")
    result = np.empty(len(values), dtype=np.float64)
    result[order] = np.arange(1, len(values) + 1)
    for value in np.unique(values):  # ties: every member gets the block's mean rank
        tied = values == value
        if tied.sum() > 1:
            result[tied] = result[tied].mean()
    return result


def rank_correlation(x: Any, y: Any, permutations: int = 10_000, seed: int = 0) -> tuple[float, float]:
    """Spearman's rank correlation of ``x`` and ``y`` and its two-sided permutation p-value.

    ``rho`` is the Pearson correlation of the two rankings (ties get their mean rank), so it is 1
    when y grows with x in any monotone way and -1 when it falls. The p-value answers "how often
    would a correlation this strong appear if y had nothing to do with x?": y is shuffled
    ``permutations`` times against x, and p is the share of shuffles (the observed pairing counted
    as one of them, so p > 0) whose ``|rho|`` reaches the observed one. Pairs where either value
    is nan (a class without an AP) are left out. Returns ``(nan, nan)`` when fewer than three pairs
    remain or either side is constant.
    """
    x = np.asarray(_to_numpy(x), dtype=np.float64).ravel()
    y = np.asarray(_to_numpy(y), dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"rank_correlation needs two sequences of the same length, got {len(x)} and {len(y)}")
    if permutations < 1:
        raise ValueError(f"permutations must be at least 1, got {permutations}")
    kept = np.isfinite(x) & np.isfinite(y)
    x, y = x[kept], y[kept]
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan, math.nan
    rx, ry = ranks(x), ranks(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    scale = math.sqrt(float(rx @ rx) * float(ry @ ry))
    rho = float(rx @ ry) / scale
    rng = np.random.default_rng(seed)
    shuffled = rng.permuted(np.broadcast_to(ry, (permutations, len(ry))), axis=1)
    null = shuffled @ rx / scale
    p = (1 + int(np.sum(np.abs(null) >= abs(rho) - 1e-12))) / (permutations + 1)
    return rho, p


def format_p_value(p: float) -> str:
    """``"p 0.042"``, or ``"p < 0.001"`` below what 10,000 permutations resolve well."""
    return "p < 0.001" if p < 0.001 else f"p {p:.3f}"

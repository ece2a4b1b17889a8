"""Zero-shot multi-label evaluation on the built-in dataset: seen/unseen split, data, metrics, baseline.

The field's protocol (NUS-WIDE: 925 seen / 81 unseen tags, Open Images; followed by the SDL
paper):

- **Split** (:func:`split_by_family`): tags are divided into *seen* (training) and *unseen*
  (never trained on). The built-in dataset draws classes of one family with shared parts
  (:mod:`msrn_core.data.scenes`), so one class per family is held out: an unseen class always has
  seen relatives to be recognised through. Which one is drawn by ``numpy.random.default_rng(seed)``
  (seed 0 by default), family by family in the dataset's family order, so the split is fixed.
- **Training data** (:func:`restrict_to_tags`, :func:`seen_setup`): the label matrix keeps the
  seen columns only, and images with no seen positive are *removed* (they carry no ranking
  signal, and the pairwise loss divides by the number of positives); unseen objects stay in
  the remaining images as unlabelled background, as on NUS-WIDE.
- **ZSL**: every test image is ranked over the *unseen* tags only; **GZSL**: over *all* tags.
- **Metrics** (:func:`ranking_metrics`): precision, recall and F1 at top-3 and top-5 and mAP.
  P@k and R@k are *overall* (micro) rates, as in the field's evaluation code (Fast0Tag, LESA,
  SDL): each image predicts its k highest-scored tags (all of them when there are fewer than
  k), ``P@k = sum TP / (images x k)``, ``R@k = sum TP / sum positives``, ``F1@k`` their
  harmonic mean. mAP is the mean over tags of the AP of ranking the *images* for that tag. A tag
  with no positive among the evaluated images has no AP; by default it is left out of the mean
  (``tags_without_positive="skip"``, as :func:`msrn_core.metrics.per_class_ap`). The SDL
  authors' ``mAP`` (``helper_functions.py``) counts such a tag as 0 instead:
  ``tags_without_positive="zero"`` reproduces theirs. The two agree when every tag has a positive.
- **Images without a positive** among the ranked tags are excluded (LESA's ``is_exclude``,
  the usual ZSL test set of images that contain an unseen tag): their top-k lists can only be
  wrong, whatever the model, so they would measure the test set instead of the model. ZSL thus
  uses the test images with at least one unseen tag; GZSL those with at least one tag.
- **Random ranking** (:func:`expected_random_metrics`, :func:`random_ranking_metrics`): what
  a model that ranks tags at random scores; the exact expectation, and an average over seeds.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Iterable, Sequence

import numpy as np

from ..data.dataset import ImageListDataset
from ..graph import LabelGraph
from ..metrics import _f1, _nanmean, per_class_ap, precision_recall_f1

TOP_K = (3, 5)
TAGS_WITHOUT_POSITIVE = ("skip", "zero")  # left out of the mAP (ours) | counted as AP 0 (the SDL authors')


# --------------------------------------------------------------------------------------------
# the seen / unseen split
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ZeroShotSplit:
    """Which tags are seen in training and which are held out, in the dataset's class order."""

    class_names: tuple[str, ...]
    unseen: tuple[str, ...]
    seed: int

    @property
    def seen(self) -> list[str]:
        return [name for name in self.class_names if name not in self.unseen]

    @property
    def seen_indices(self) -> np.ndarray:
        return np.array([i for i, name in enumerate(self.class_names) if name not in self.unseen])

    @property
    def unseen_indices(self) -> np.ndarray:
        return np.array([i for i, name in enumerate(self.class_names) if name in self.unseen])

    def describe(self) -> str:
        return (f"{len(self.seen)} seen tags, {len(self.unseen)} unseen tags (seed {self.seed}): "
                f"unseen = {', '.join(self.unseen)}")


def split_by_family(class_names: Sequence[str], class_families: Sequence[str], unseen_per_family: int = 1,
                    seed: int = 0) -> ZeroShotSplit:
    """Hold out ``unseen_per_family`` classes of every family, drawn with ``default_rng(seed)``.

    Families are visited in the order of their first class; every family keeps at least one
    seen class, so each unseen class has a seen relative.
    """
    if len(class_names) != len(class_families):
        raise ValueError(f"{len(class_names)} class names but {len(class_families)} family entries")
    if unseen_per_family < 1:
        raise ValueError(f"unseen_per_family must be at least 1, got {unseen_per_family}")
    families: dict[str, list[str]] = {}
    for name, family in zip(class_names, class_families):
        families.setdefault(family, []).append(name)
    rng = np.random.default_rng(seed)
    unseen: set[str] = set()
    for family, members in families.items():
        if len(members) <= unseen_per_family:
            raise ValueError(
                f"family {family!r} has {len(members)} classes ({', '.join(members)}): holding out "
                f"{unseen_per_family} would leave no seen relative; lower unseen_per_family")
        unseen.update(rng.choice(members, size=unseen_per_family, replace=False).tolist())
    return ZeroShotSplit(tuple(class_names), tuple(n for n in class_names if n in unseen), seed)


def scene_split(dataset, unseen_per_family: int = 1, seed: int = 0) -> ZeroShotSplit:
    """:func:`split_by_family` for a split of the built-in scene dataset (it knows its families)."""
    families = getattr(dataset, "class_families", None)
    if families is None:
        raise ValueError(f"{getattr(dataset, 'name', 'this dataset')} has no class_families: "
                         "use split_by_family(class_names, families) with families of your own")
    return split_by_family(dataset.class_names, families, unseen_per_family, seed)


def sdl_run_name(split: ZeroShotSplit, num_principal: int) -> str:
    """The run folder of an SDL trained on ``split``'s seen tags with ``num_principal`` vectors.

    One folder per held-out draw and k: another ``seed`` trains on other tags and another k has
    other weights, so each loads or trains its own run instead of meeting a checkpoint of another.
    """
    return f"sdl-unseen{split.seed}-k{num_principal}"


# --------------------------------------------------------------------------------------------
# data restricted to the seen tags
# --------------------------------------------------------------------------------------------
def restrict_to_tags(dataset, tags: Sequence[str], drop_images_without_positive: bool = True) -> ImageListDataset:
    """``dataset`` with only the columns ``tags`` (in that order), optionally without empty images.

    The result is a plain :class:`~msrn_core.data.dataset.ImageListDataset` with the same transform;
    ``source_indices`` maps its images back to ``dataset``.
    """
    missing = [t for t in tags if t not in dataset.class_names]
    if missing:
        raise ValueError(f"tags not in {getattr(dataset, 'name', 'the dataset')}: {', '.join(missing)}")
    columns = [dataset.class_names.index(t) for t in tags]
    labels = np.asarray(dataset.labels)[:, columns]
    keep = labels.any(axis=1) if drop_images_without_positive else np.ones(len(labels), dtype=bool)
    difficult = None if getattr(dataset, "difficult", None) is None else dataset.difficult[keep][:, columns]
    restricted = ImageListDataset([p for p, k in zip(dataset.image_paths, keep) if k], labels[keep], list(tags),
                                  transform=dataset.transform, difficult=difficult,
                                  name=f"{getattr(dataset, 'name', 'dataset')}[{len(tags)} tags]")
    restricted.source_indices = np.flatnonzero(keep)
    return restricted


def seen_setup(setup, split: ZeroShotSplit):
    """The :class:`~msrn_core.running.experiment.DataSetup` of the seen tags: what a zero-shot model trains on.

    Training and validation splits keep the seen columns and drop images without a seen
    positive; the label vectors are the seen rows of ``setup.label_features`` (same provider).
    The test split keeps every image (zero-shot evaluation uses the full test split).
    """
    if list(split.class_names) != setup.class_names:
        raise ValueError("the zero-shot split was made for another class list than this setup's")
    train = restrict_to_tags(setup.train, split.seen)
    val = restrict_to_tags(setup.val, split.seen)
    test = restrict_to_tags(setup.test, split.seen, drop_images_without_positive=False)
    graph = LabelGraph.from_labels(train.labels, split.seen, t=setup.graph.t, p=setup.graph.p)
    return replace(setup, train=train, val=val, test=test, graph=graph,
                   label_features=setup.label_features[split.seen_indices])


# --------------------------------------------------------------------------------------------
# metrics
# --------------------------------------------------------------------------------------------
def _with_positives(scores: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keep = (np.asarray(targets) > 0).any(axis=1)
    return np.asarray(scores, dtype=np.float64)[keep], np.asarray(targets)[keep]


def _check_tags_without_positive(tags_without_positive: str) -> None:
    if tags_without_positive not in TAGS_WITHOUT_POSITIVE:
        raise ValueError(f"tags_without_positive must be one of {TAGS_WITHOUT_POSITIVE} (skip: left out of "
                         f"the mAP; zero: counted as AP 0), got {tags_without_positive!r}")


def _mean_over_tags(per_tag: np.ndarray, tags_without_positive: str) -> float:
    """The mean of per-tag APs (``nan`` for a tag without positive), by the convention asked for."""
    _check_tags_without_positive(tags_without_positive)
    if tags_without_positive == "zero":
        return float(np.nan_to_num(per_tag, nan=0.0).mean())
    return _nanmean(per_tag)


def ranking_metrics(scores, targets, ks: Iterable[int] = TOP_K, tags_without_positive: str = "skip") -> dict[str, float]:
    """mAP and overall P/R/F1 at each top-k, over the images with at least one positive.

    Returns fractions: ``mAP``, ``P@k``, ``R@k``, ``F1@k`` for every ``k``, and ``num_images``.
    ``tags_without_positive``: ``"skip"`` leaves a tag with no positive out of the mAP, ``"zero"``
    counts it as AP 0 (the SDL authors' convention).
    """
    scores, targets = _with_positives(scores, targets)
    results = {"mAP": _mean_over_tags(per_class_ap(scores, targets), tags_without_positive)}
    for k in ks:
        top = precision_recall_f1(scores, targets, threshold=-np.inf, top_k=k)
        results.update({f"P@{k}": top["OP"], f"R@{k}": top["OR"], f"F1@{k}": top["OF1"]})
    results["num_images"] = int(len(scores))
    return results


def zero_shot_metrics(scores, targets, split: ZeroShotSplit, ks: Iterable[int] = TOP_K,
                      tags_without_positive: str = "skip") -> dict[str, dict]:
    """``{"ZSL": ..., "GZSL": ...}`` from scores over *all* tags (columns in ``split.class_names`` order).

    ZSL keeps the unseen columns only: the scores of seen tags play no part in it. The score of a
    tag depends on that tag alone for SDL, so ranking the unseen columns of an all-tag score matrix
    equals ranking with the unseen vectors alone.
    """
    scores, targets = np.asarray(scores), np.asarray(targets)
    if scores.shape != targets.shape or scores.shape[1] != len(split.class_names):
        raise ValueError(f"scores {scores.shape} and targets {targets.shape} must both be "
                         f"(images x {len(split.class_names)} tags of the split)")
    unseen = split.unseen_indices
    return {"ZSL": ranking_metrics(scores[:, unseen], targets[:, unseen], ks, tags_without_positive),
            "GZSL": ranking_metrics(scores, targets, ks, tags_without_positive)}


def expected_random_ap(num_positive: int, num_items: int) -> float:
    """Expected AP of a uniformly random ranking of ``num_items`` items with ``num_positive`` positives.

    A positive at rank r has ``1 + (r - 1)(P - 1)/(N - 1)`` positives at or above it on average,
    and r is uniform on 1..N, so ``E[AP] = (P - 1)/(N - 1) + (N - P) H_N / (N (N - 1))`` with the
    harmonic number ``H_N``.
    """
    if num_positive < 1:
        return float("nan")
    if num_items == 1:
        return 1.0
    harmonic = sum(1.0 / r for r in range(1, num_items + 1))
    n, p = num_items, num_positive
    return (p - 1) / (n - 1) + (n - p) * harmonic / (n * (n - 1))


def expected_random_metrics(targets, ks: Iterable[int] = TOP_K, tags_without_positive: str = "skip") -> dict[str, float]:
    """The expectation of :func:`ranking_metrics` for a uniformly random ranking, in closed form.

    With n tags, an image with m positives has ``min(k, n) m / n`` hits in its top-k on average,
    so ``E[P@k] = mean(m) / n`` and ``E[R@k] = min(k, n) / n``; ``F1@k`` is their harmonic mean.
    mAP: the mean of :func:`expected_random_ap` over the tags.
    """
    _, targets = _with_positives(np.zeros(np.shape(targets)), targets)
    positives = targets > 0
    n_images, n_tags = positives.shape
    per_tag = np.array([expected_random_ap(int(c), n_images) for c in positives.sum(axis=0)])
    results = {"mAP": _mean_over_tags(per_tag, tags_without_positive)}
    for k in ks:
        precision = positives.sum() / (n_images * n_tags)
        recall = min(k, n_tags) / n_tags
        results.update({f"P@{k}": float(precision), f"R@{k}": recall, f"F1@{k}": _f1(precision, recall)})
    results["num_images"] = int(n_images)
    return results


def random_ranking_metrics(targets, ks: Iterable[int] = TOP_K, seeds: Iterable[int] = range(20),
                           tags_without_positive: str = "skip") -> dict[str, float]:
    """:func:`ranking_metrics` of uniformly random scores, averaged over ``seeds``."""
    targets = np.asarray(targets)
    ks = tuple(ks)
    runs = [ranking_metrics(np.random.default_rng(seed).random(targets.shape), targets, ks, tags_without_positive)
            for seed in seeds]
    return {key: (runs[0][key] if key == "num_images" else float(np.mean([r[key] for r in runs])))
            for key in runs[0]}


def metrics_table(results: dict[str, dict[str, dict]], ks: Iterable[int] = TOP_K):
    """A pandas table: one row per (model, setting), columns mAP and P/R/F1@k in percent."""
    import pandas as pd

    columns = ["mAP"] + [f"{m}@{k}" for k in ks for m in ("P", "R", "F1")] + ["num_images"]
    rows = {(model, setting): {c: (values[c] if c == "num_images" else 100 * values[c]) for c in columns}
            for model, settings in results.items() for setting, values in settings.items()}
    table = pd.DataFrame.from_dict(rows, orient="index")[columns]
    table.index.names = ["model", "setting"]
    return table.round(2)


__all__ = [
    "TAGS_WITHOUT_POSITIVE", "TOP_K", "ZeroShotSplit", "expected_random_ap", "expected_random_metrics", "metrics_table",
    "random_ranking_metrics", "ranking_metrics", "restrict_to_tags", "scene_split", "seen_setup",
    "split_by_family", "zero_shot_metrics",
]

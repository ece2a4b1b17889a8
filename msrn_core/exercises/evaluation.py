"""Exercises of notebook 06: AP by hand, CF1, one pointing-game trial, the chance level, a flat map,
Spearman's rank correlation."""
from __future__ import annotations

import numpy as np
import torch

from ..attention import box_area_fraction, peak_point, pointing_game
from ..metrics import average_precision, precision_recall_f1, rank_correlation, ranks
from .core import Exercise, Mistake


def _given_ap():
    return {"scores": np.array([0.9, 0.75, 0.6, 0.4, 0.3]), "targets": np.array([1, 0, 1, 1, 0])}


def _precisions(scores, targets, ascending=False):
    order = np.argsort(scores if ascending else -scores, kind="stable")
    hits = targets[order]
    return np.cumsum(hits) / np.arange(1, len(hits) + 1), hits


def _ap_ascending(g):
    precision, hits = _precisions(g.scores, g.targets, ascending=True)
    return precision[hits > 0].mean()


def _ap_over_items(g):
    precision, hits = _precisions(g.scores, g.targets)
    return precision[hits > 0].sum() / len(hits)


def _mean_precision(g):
    return _precisions(g.scores, g.targets)[0].mean()


def _given_pointing():
    attention_map = np.full((4, 4), 0.05)
    attention_map[2, 1] = 0.25  # the peak: row 2, column 1
    return {"map": attention_map, "image_size": 64, "boxes": [(16, 32, 40, 56)]}


def _trial(g, transpose=False, corner=False):
    cells = g.map.shape[0]
    i, j = np.unravel_index(np.argmax(g.map), g.map.shape)
    if transpose:
        i, j = j, i
    offset = 0.0 if corner else 0.5
    x, y = (j + offset) * g.image_size / cells, (i + offset) * g.image_size / cells
    hit = any(x0 <= x < x1 and y0 <= y < y1 for x0, y0, x1, y1 in g.boxes)
    return np.array([x, y, float(hit)])


def _reference_trial(g):
    x, y = peak_point(torch.as_tensor(g.map), g.image_size)
    return np.array([x, y, float(pointing_game(torch.as_tensor(g.map), g.boxes, g.image_size))])


def _given_chance():
    return {"boxes": [(0, 0, 32, 32), (16, 16, 48, 48)], "image_size": 64}


def _box_area(box):
    return (box[2] - box[0]) * (box[3] - box[1])


def _given_cf1():
    return {
        "probabilities": np.array([[0.9, 0.2, 0.5], [0.6, 0.7, 0.1], [0.3, 0.8, 0.4], [0.1, 0.45, 0.9],
                                   [0.7, 0.1, 0.6]]),
        "targets": np.array([[1, 0, 1], [1, 1, 0], [0, 1, 0], [0, 1, 1], [1, 0, 0]]),
        "threshold": 0.5,
    }


def _counts(g, strict=False):
    predicted = g.probabilities > g.threshold if strict else g.probabilities >= g.threshold
    truth = g.targets > 0
    correct = (predicted & truth).sum(axis=0)
    return correct, predicted.sum(axis=0), truth.sum(axis=0)


def _f1(p, r):
    return 0.0 if p + r == 0 else 2 * p * r / (p + r)


def _cf1(g, strict=False):
    correct, predicted, truth = _counts(g, strict)
    precision = np.where(predicted > 0, correct / np.maximum(predicted, 1), 0.0)
    return _f1(precision.mean(), (correct / truth).mean())


def _of1(g):
    correct, predicted, truth = _counts(g)
    return _f1(correct.sum() / predicted.sum(), correct.sum() / truth.sum())


def _mean_of_f1(g):
    correct, predicted, truth = _counts(g)
    precision = np.where(predicted > 0, correct / np.maximum(predicted, 1), 0.0)
    return float(np.mean([_f1(p, r) for p, r in zip(precision, correct / truth)]))


def _flat_map_point(g):
    x, y = peak_point(torch.ones(g.cells, g.cells), g.image_size)
    centre = g.image_size / 2
    if (x, y) == (centre, centre):
        return "the image centre"
    cell = g.image_size / g.cells
    return "the top-left cell" if (x, y) == (cell / 2, cell / 2) else "another cell"


def _given_gains():
    # five classes: training images and AP gain over the plain ResNet (points); no ties
    return {"counts": np.array([40, 300, 120, 60, 900]), "gains": np.array([3.0, -1.0, 0.5, 2.0, 0.2])}


EXERCISES = [
    Exercise(
        "6.1", "by hand", "AP of one class from five scores",
        given=_given_ap,
        reference=lambda g: average_precision(g.scores, g.targets),
        mistakes=[
            Mistake("ascending", _ap_ascending,
                    "you ranked the lowest score first; AP ranks by DESCENDING score (most confident first)"),
            Mistake("over items", _ap_over_items,
                    "AP averages the precision over the POSITIVES (3), not over all 5 items"),
            Mistake("every rank", _mean_precision,
                    "average the precision only at the ranks of the positives, not at every rank"),
        ],
        why="AP is the mean, over the positives, of the precision at their rank.",
    ),
    Exercise(
        "6.2", "by hand", "one pointing-game trial: (x, y, hit)",
        given=_given_pointing,
        reference=_reference_trial,
        mistakes=[
            Mistake("x and y swapped", lambda g: _trial(g, transpose=True),
                    "x and y are swapped (a transposed map): the row index i gives y, the column index j gives x"),
            Mistake("cell corner", lambda g: _trial(g, corner=True),
                    "that is the cell's top-left corner; the map points at the cell's CENTRE, (j + 0.5) W / w"),
        ],
        why="The peak cell's centre, in image pixels, is tested against the boxes (end exclusive).",
    ),
    Exercise(
        "6.3", "by hand", "the chance level of two overlapping boxes",
        given=_given_chance,
        reference=lambda g: box_area_fraction(g.boxes, g.image_size),
        mistakes=[
            Mistake("double counted", lambda g: sum(map(_box_area, g.boxes)) / g.image_size ** 2,
                    "the overlap is counted twice: a random point lands in the UNION of the boxes"),
            Mistake("one box", lambda g: _box_area(g.boxes[0]) / g.image_size ** 2,
                    "a hit in either box counts: take the union of both boxes"),
        ],
        why="A uniformly random point hits with probability area(union) / area(image).",
    ),
    Exercise(
        "6.4", "by hand", "CF1 at threshold 0.5",
        given=_given_cf1,
        reference=lambda g: precision_recall_f1(g.probabilities, g.targets, threshold=g.threshold)["CF1"],
        mistakes=[
            Mistake("OF1", _of1,
                    "that is OF1: you pooled the counts over all classes; CF1 averages precision and recall per class"),
            Mistake("mean of F1", _mean_of_f1,
                    "CF1 is the harmonic mean of CP and CR, not the mean of the per-class F1 scores"),
            Mistake("strict threshold", lambda g: _cf1(g, strict=True),
                    "a probability of exactly 0.5 counts as predicted (>= threshold)"),
        ],
        why="CF1 = 2 CP CR / (CP + CR), with CP and CR averaged over the classes.",
    ),
    Exercise(
        "6.5", "predict, then run", "where a perfectly flat 4 x 4 map points (resolution='cell')",
        given=lambda: {"cells": 4, "image_size": 64},
        choices=("the image centre", "the top-left cell", "another cell"),
        reference=_flat_map_point,
        mistakes=[Mistake("centre", lambda g: "the image centre",
                          "the arg-max of a flat map is its FIRST cell (numpy's argmax on ties), the top-left one; "
                          "only resolution='image' points a flat map at the centre")],
        why="On a flat map the arg-max is decided by ties: a pointing score says nothing about such a map.",
    ),
    Exercise("6.6", "experiment", "MSRN's attention against the plain ResNet's CAM on an image you choose"),
    Exercise(
        "6.7", "by hand", "Spearman's rho between five classes' gains and training counts",
        given=_given_gains,
        reference=lambda g: rank_correlation(g.counts, g.gains)[0],
        mistakes=[
            Mistake("Pearson on values", lambda g: np.corrcoef(g.counts, g.gains)[0, 1],
                    "that is Pearson's correlation of the VALUES; Spearman's rho correlates their RANKS"),
            Mistake("one side reversed", lambda g: np.corrcoef(ranks(g.counts), -ranks(g.gains))[0, 1],
                    "the sign is flipped: rank both sides the same way (the smallest value gets rank 1)"),
        ],
        why="Ranks make the trend's shape irrelevant: any steady fall of the gain with the count gives rho -1.",
    ),
]

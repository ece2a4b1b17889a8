"""Exercises of notebook 01: counts, P(j | i), the ML-GCN re-weighting and normalisation, the threshold."""
from __future__ import annotations

import numpy as np

from .. import graph as mg
from .core import Exercise, Mistake

# The 4-label example of notebook 01, section 3 (13 images).
TOY_NAMES = ["person", "bicycle", "car", "dog"]
TOY_IMAGES = [
    ["person", "bicycle", "car"], ["person", "bicycle", "car"], ["person", "bicycle"], ["person", "bicycle"],
    ["person", "car"], ["person", "dog"], ["person"], ["person"], ["person"], ["person"],
    ["car"], ["car"], ["dog"],
]

# A new 5-label example for the by-hand exercises: P(j | i), rows i, columns j.
ROOM_NAMES = ["sofa", "tv", "lamp", "cat", "plant"]
ROOM_P = [[0.0, 0.6, 0.4, 0.2, 0.1],
          [0.7, 0.0, 0.3, 0.1, 0.2],
          [0.5, 0.45, 0.0, 0.1, 0.4],
          [0.8, 0.2, 0.1, 0.0, 0.3],
          [0.3, 0.1, 0.6, 0.2, 0.0]]


def toy_labels() -> np.ndarray:
    return np.array([[name in image for name in TOY_NAMES] for image in TOY_IMAGES], dtype=np.int64)


def _toy_probabilities() -> np.ndarray:
    return mg.LabelGraph.from_labels(toy_labels(), TOY_NAMES).probabilities


def _edges(P, t, strict=False) -> int:
    P = np.asarray(P)
    keep = P > t if strict else P >= t
    return int(keep.sum() - np.trace(keep))


def _given_edges():
    return {"labels": toy_labels(), "names": list(TOY_NAMES), "t": 0.2}


def _given_reweight():
    return {"P": np.array(ROOM_P), "names": list(ROOM_NAMES), "t": 0.4, "p": 0.25, "label": "lamp"}


def _row(g):
    return g.names.index(g.label)


def _reweight_row_by_rows(g):
    A = (g.P >= g.t).astype(float)
    return (g.p * A / (A.sum(axis=1, keepdims=True) + 1e-6) + np.eye(len(A)))[_row(g)]


def _given_normalise():
    A_prime = mg.reweight(mg.binarize(np.array(ROOM_P), 0.4), 0.25)
    return {"A_prime": A_prime, "names": list(ROOM_NAMES), "label": "tv"}


def _normalised(A_prime, transpose=True, rows=True):
    d = A_prime.sum(axis=1 if rows else 0) ** -0.5
    M = A_prime.T if transpose else A_prime
    return d[:, None] * M * d[None, :]


def _given_self_weight():
    return {"labels": toy_labels(), "names": list(TOY_NAMES), "t": 0.4, "p_before": 0.25, "p_after": 1.0}


def _self_weight_trend(g):
    graph_before = mg.LabelGraph.from_labels(g.labels, g.names, t=g.t, p=g.p_before)
    graph_after = mg.LabelGraph.from_labels(g.labels, g.names, t=g.t, p=g.p_after)
    before, after = np.diag(graph_before.normalized).mean(), np.diag(graph_after.normalized).mean()
    return "falls" if after < before - 1e-9 else "rises" if after > before + 1e-9 else "stays"


EXERCISES = [
    Exercise(
        "1.1", "predict, then run", "edges of the 4-label example at t = 0.2",
        given=_given_edges,
        reference=lambda g: int(mg.edge_density(_toy_probabilities(), [g.t])[0][0]),
        mistakes=[
            Mistake("self loops", lambda g: _edges(_toy_probabilities(), g.t) + len(g.names),
                    "you counted the diagonal; an edge joins two different labels (i != j), self loops are added later"),
            Mistake("unchanged", lambda g: _edges(_toy_probabilities(), 0.4),
                    "that is the count at t = 0.4; at 0.2 every P(j | i) between 0.2 and 0.4 becomes an edge too "
                    "(look at P(car | person))"),
            Mistake("undirected", lambda g: _edges(np.maximum(_toy_probabilities(), _toy_probabilities().T), g.t) // 2,
                    "you counted undirected pairs; P is not symmetric, so i -> j and j -> i are separate edges"),
        ],
        why="Lowering t adds the weaker co-occurrences: the graph gets denser, never sparser.",
    ),
    Exercise(
        "1.2", "by hand", "one row of the re-weighted A'",
        given=_given_reweight,
        reference=lambda g: mg.reweight(mg.binarize(g.P, g.t), g.p)[_row(g)],
        mistakes=[
            Mistake("row sums", _reweight_row_by_rows,
                    "you divided by the row sums; ML-GCN divides each entry by its COLUMN sum (axis=0): column j "
                    "shares p among the labels that point to j"),
            Mistake("no self loop", lambda g: mg.reweight(mg.binarize(g.P, g.t), g.p)[_row(g)] - np.eye(5)[_row(g)],
                    "the self loop is missing: A' = p A / (column sums) + I, so the diagonal entry is 1"),
            Mistake("strict threshold", lambda g: mg.reweight((g.P > g.t).astype(float), g.p)[_row(g)],
                    "P = t exactly counts as an edge: binarise with P >= t, not P > t (P(plant | lamp) is 0.4)"),
            Mistake("no p", lambda g: mg.reweight(mg.binarize(g.P, g.t), 1.0)[_row(g)],
                    "the neighbour weights are missing the factor p (they should sum to p per column, not 1)"),
            Mistake("column", lambda g: mg.reweight(mg.binarize(g.P, g.t), g.p)[:, _row(g)],
                    "that is the COLUMN of the label (a transposed matrix); the row of label i holds A'[i, j] for every j"),
        ],
        why="Each column shares p among its in-neighbours, and the self loop keeps weight 1: ML-GCN's guard "
            "against over-smoothing.",
    ),
    Exercise(
        "1.3", "by hand", "one row of the normalised A_hat",
        given=_given_normalise,
        reference=lambda g: mg.normalize_adjacency(g.A_prime)[g.names.index(g.label)],
        mistakes=[
            Mistake("no transpose", lambda g: _normalised(g.A_prime, transpose=False)[g.names.index(g.label)],
                    "the transpose is missing: A_hat = D^-1/2 A'^T D^-1/2, so A_hat[i, j] = d_i A'[j, i] d_j "
                    "(a transposed matrix)"),
            Mistake("column sums", lambda g: _normalised(g.A_prime, rows=False)[g.names.index(g.label)],
                    "D holds the ROW sums of A' (axis=1), not the column sums: wrong axis"),
            Mistake("not normalised", lambda g: g.A_prime.T[g.names.index(g.label)],
                    "that is row i of A'^T without the normalisation: multiply by d_i and d_j, d = (row sums)^-1/2"),
            Mistake("inverse not square root", lambda g: (lambda d: d[:, None] * g.A_prime.T * d[None, :])(
                1.0 / g.A_prime.sum(axis=1))[g.names.index(g.label)],
                    "d is the inverse SQUARE ROOT of the row sums, (row sum)^-1/2, not (row sum)^-1"),
        ],
        why="The transpose turns 'i points to j' into 'j feeds i': label i listens to the labels that usually "
            "come with it.",
    ),
    Exercise(
        "1.4", "predict, then run", "the self-loop weight of A_hat when p grows from 0.25 to 1",
        given=_given_self_weight,
        choices=("rises", "falls", "stays"),
        reference=_self_weight_trend,
        mistakes=[
            Mistake("rises", lambda g: "rises",
                    "the self loop keeps weight 1 in A', but the row sums d grow with p, and A_hat_ii = 1 / rowsum_i: "
                    "a larger p gives the neighbours more and the label itself less"),
            Mistake("stays", lambda g: "stays",
                    "A' keeps 1 on the diagonal, but the normalisation divides by the row sum, which grows with p"),
        ],
        why="A_hat_ii = 1 / (row sum of A'), and the row sum is 1 plus p times label i's shares of its columns: "
            "with p = 1 the neighbours weigh as much as the label itself, which ML-GCN's small p avoids.",
    ),
    Exercise("1.5", "experiment", "how the threshold thins the sparse, VOC-like graph"),
]

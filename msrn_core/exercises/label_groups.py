"""Exercises of notebook 03: Diffpool (eq. 5), the pooled graph S^T A S, the compactness loss (eq. 6), m."""
from __future__ import annotations

import numpy as np
import torch

from ..layers import compactness_loss, diffpool
from .core import Exercise, Mistake


def _t(x) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x), dtype=torch.float64)


def _softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _given_pooled():
    return {
        "logits": np.array([[2.0, 0.0], [1.0, 0.5], [0.0, 1.0], [-1.0, 1.0]]),  # n x m assignment logits
        "A": np.array([[1, 1, 0, 0], [0, 1, 1, 0], [0, 1, 1, 1], [0, 0, 1, 1]], dtype=float),  # directed
    }


def _pooled(g):
    z = torch.zeros(len(g.A), 1, dtype=torch.float64)
    return diffpool(z, _t(g.A), _t(g.logits))[1].numpy()


def _given_group_embeddings():
    return {
        "S": np.array([[0.7, 0.3], [0.9, 0.1], [0.2, 0.8], [0.4, 0.6]]),  # rows sum to 1
        "Z": np.array([[1.0, 2.0, 0.0], [0.0, 1.0, 1.0], [2.0, 0.0, 1.0], [1.0, 1.0, -1.0]]),
    }


def _given_compactness():
    return {
        "E_g": np.array([[1.0, 2.0], [-1.0, 0.5]]),
        "E_l": np.array([[0.5, 1.5], [1.0, 3.0], [-1.0, 1.0], [0.0, 0.0]]),
        "S": np.array([[0.6, 0.4], [0.8, 0.2], [0.3, 0.7], [0.45, 0.55]]),
    }


def _compactness(g, form="paper"):
    return compactness_loss(_t(g.E_g), _t(g.E_l), _t(g.S), form=form).item()


def _soft_compactness(g):
    distances = ((g.E_l[:, None, :] - g.E_g[None, :, :]) ** 2).sum(axis=2)  # n x m
    return float((g.S * distances).sum())


EXERCISES = [
    Exercise(
        "3.1", "by hand", "the pooled graph A_g = S^T A S from assignment logits",
        given=_given_pooled,
        reference=_pooled,
        mistakes=[
            Mistake("logits", lambda g: g.logits.T @ g.A @ g.logits,
                    "missing normalisation: S is the ROW softmax of the logits, not the logits themselves"),
            Mistake("column softmax", lambda g: _softmax(g.logits, 0).T @ g.A @ _softmax(g.logits, 0),
                    "wrong axis: the softmax runs over each row (a label's memberships sum to 1: axis=1)"),
            Mistake("A transposed", lambda g: _softmax(g.logits, 1).T @ g.A.T @ _softmax(g.logits, 1),
                    "you used A^T (a transposed matrix): A_g = S^T A S, and this A is directed, so A != A^T"),
        ],
        why="A_g[k, l] sums A[i, j] over pairs weighted by how much i belongs to k and j to l.",
    ),
    Exercise(
        "3.2", "by hand", "group embeddings E_g = S^T Z",
        given=_given_group_embeddings,
        reference=lambda g: diffpool(_t(g.Z), torch.eye(len(g.S), dtype=torch.float64), _t(np.log(g.S)))[0].numpy(),
        mistakes=[
            Mistake("mean", lambda g: (g.S.T @ g.Z) / g.S.sum(axis=0)[:, None],
                    "you took the S-weighted MEAN; E_g is the weighted SUM S^T Z (a bigger group gets a longer "
                    "embedding), no division by the column sums"),
            Mistake("softmax again", lambda g: _softmax(g.S, 1).T @ g.Z,
                    "S is already the row softmax (its rows sum to 1): do not apply the softmax again"),
        ],
        why="Group k's embedding is the sum of the rows of Z weighted by column k of S.",
    ),
    Exercise(
        "3.3", "by hand", "the compactness loss (eq. 6)",
        given=_given_compactness,
        reference=_compactness,
        mistakes=[
            Mistake("not squared", lambda g: _compactness(g, "authors"),
                    "eq. 6 sums SQUARED distances ||E_g^k - E_l^i||^2; yours are plain norms (the authors' code's form)"),
            Mistake("divided by n", lambda g: _compactness(g, "paper_mean"),
                    "eq. 6 is a sum over the labels, not a mean (dividing by n is the 'paper_mean' form of notebook 05)"),
            Mistake("soft weights", _soft_compactness,
                    "each label counts once, towards its argmax group C_k; you weighted every group by S_ik"),
        ],
        why="Every label is pulled towards the group it belongs to most (its argmax in S).",
    ),
    Exercise(
        "3.4", "predict, then run", "can the ARI against the 4 themes reach 1 with m = 2 groups?",
        given=lambda: {"themes": 4, "m": 2},
        choices=("yes", "no"),
        reference=lambda g: "yes" if g.m >= g.themes else "no",
        mistakes=[Mistake("yes", lambda g: "yes",
                          "an ARI of 1 needs the same partition up to renaming; 2 groups cannot reproduce 4 themes, "
                          "so at least two themes must share a group")],
        why="With fewer groups than themes, themes must merge: the ARI stays below 1 however good the fit.",
    ),
    Exercise("3.5", "experiment", "one-hot against sentence label vectors for the groups"),
]

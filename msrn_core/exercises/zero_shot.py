"""Exercises of notebook 08: SDL's match score, its diversity weight, random-ranking references."""
from __future__ import annotations

import numpy as np
import torch

from ..extras import zero_shot as zs
from ..extras.sdl import relevance_scores, semantic_diversity
from .core import Exercise, Mistake


def _given_match():
    return {
        "A": np.array([[0.5, -1.0, 2.0, 0.0], [1.0, 1.0, 0.0, 0.5], [-0.5, 0.0, 1.0, 2.0]]),  # k x w
        "v": np.array([0.2, 0.8, -0.4, 0.6]),  # the tag's label vector
    }


def _score(g):
    return relevance_scores(torch.as_tensor(g.A[None]), torch.as_tensor(g.v[None]))[0, 0].item()


def _given_diversity():
    return {"V_positive": np.array([[1.0, 0.0, 0.5, 0.0], [0.0, 1.0, 0.5, 0.0], [0.5, 0.5, 0.0, 1.0]])}


def _diversity(g):
    vectors = torch.as_tensor(g.V_positive)
    return 1 + semantic_diversity(vectors, torch.ones(1, len(vectors))).item()


def _given_random_recall():
    return {"targets": np.array([[1, 0, 0, 1, 0, 0, 0], [0, 1, 0, 0, 0, 0, 0], [0, 0, 1, 0, 1, 1, 0],
                                 [0, 0, 0, 0, 0, 0, 1]]), "k": 5}


EXERCISES = [
    Exercise(
        "8.1", "by hand", "the SDL match score of one label",
        given=_given_match,
        reference=_score,
        mistakes=[
            Mistake("mean", lambda g: float((g.A @ g.v).mean()),
                    "SDL takes the BEST principal vector, max_r <A_r, v>, not the mean over the rows"),
            Mistake("sum", lambda g: float((g.A @ g.v).sum()),
                    "the score is the largest product max_r <A_r, v>, not the sum over the rows"),
            Mistake("index", lambda g: float(np.argmax(g.A @ g.v)),
                    "that is the index of the winning row; the score is its VALUE"),
            Mistake("elementwise", lambda g: float((g.A * g.v).max()),
                    "take the dot product <A_r, v> of each row first, then the max over the rows"),
        ],
        why="Each tag picks the principal vector that matches it best.",
    ),
    Exercise(
        "8.2", "by hand", "the diversity weight w_i of an image with three positive tags",
        given=_given_diversity,
        reference=_diversity,
        mistakes=[
            Mistake("biased variance", lambda g: 1 + g.V_positive.var(axis=0).sum(),
                    "use the unbiased variance (divisor |P| - 1: np.var(..., ddof=1)), as the authors' loss does"),
            Mistake("no one", lambda g: g.V_positive.var(axis=0, ddof=1).sum(),
                    "w_i = 1 + the summed variance: an image with one positive keeps weight 1"),
            Mistake("wrong axis", lambda g: 1 + g.V_positive.var(axis=1, ddof=1).sum(),
                    "wrong axis: the variance runs over the positive TAGS (axis 0), per coordinate, then sums "
                    "over the coordinates"),
        ],
        why="Images whose tags point different ways in label space weigh more in the ranking loss.",
    ),
    Exercise(
        "8.3", "by hand", "the expected AP of a random ranking: 2 positives among 5 images",
        given=lambda: {"positives": 2, "items": 5},
        reference=lambda g: zs.expected_random_ap(g.positives, g.items),
        mistakes=[
            Mistake("p / N", lambda g: g.positives / g.items,
                    "p / N is the expected precision at a random rank; AP is taken at the positives' ranks, "
                    "and the first positive always has precision 1 / its rank: enumerate the 10 placements"),
        ],
        why="E[AP] = (p-1)/(N-1) + (N-p) H_N / (N (N-1)): above p / N, because AP is measured at the positives.",
    ),
    Exercise(
        "8.4", "predict, then run", "SDL's ZSL mAP with one-hot label vectors",
        given=lambda: {"label_features": "onehot"},
        choices=("about random", "above random", "below random"),
        reference=lambda g: "about random" if g.label_features == "onehot" else "above random",
        mistakes=[Mistake("above", lambda g: "above random",
                          "a one-hot unseen vector is orthogonal to every seen one: its score <A_r, v_u> is the "
                          "coordinate u of A, which training on the seen tags never shaped")],
        why="The label vectors are the only bridge to unseen tags; one-hot vectors carry nothing across.",
    ),
    Exercise(
        "8.5", "predict, then run", "the expected R@5 of a random ranking of 7 unseen tags",
        given=_given_random_recall,
        reference=lambda g: zs.expected_random_metrics(g.targets, ks=(g.k,))[f"R@{g.k}"],
        mistakes=[
            Mistake("P@5", lambda g: g.targets.sum(axis=1).mean() / g.targets.shape[1],
                    "that is E[P@5] (mean positives / n); recall asks which share of the positives the top 5 holds"),
            Mistake("all tags", lambda g: g.k / 26,
                    "ZSL ranks the 7 unseen tags only: min(k, n) / n with n = 7"),
        ],
        why="With 7 tags a top-5 list holds 5/7 of any image's positives on average: R@5 is high even at random.",
    ),
    Exercise("8.6", "experiment", "one principal vector instead of k at inference"),
]

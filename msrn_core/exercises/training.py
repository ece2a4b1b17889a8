"""Exercises of notebook 05: load_or_train, fc1's size, gradient clipping, seeds."""
from __future__ import annotations

import torch
from scipy import stats
from torch import nn

from ..model import count_parameters
from .core import Exercise, Mistake


def _clip_factor(g) -> float:
    """The factor torch's clip_grad_norm_ (what training uses) applies to a gradient of norm g.norm."""
    parameter = nn.Parameter(torch.zeros(2, dtype=torch.float64))
    parameter.grad = torch.tensor([g.norm, 0.0], dtype=torch.float64)
    torch.nn.utils.clip_grad_norm_([parameter], g.clip)
    return parameter.grad.norm().item() / g.norm


def _fc1(g) -> int:
    rows = g.labels + g.groups
    return count_parameters(nn.Linear(g.branches * rows * g.embed_dim, g.hidden, device="meta"))


def _meaningful(g) -> str:
    test = stats.ttest_ind_from_stats(g.mean_a, g.sd, g.seeds, g.mean_b, g.sd, g.seeds)
    return "yes" if test.pvalue < 0.05 else "no"


EXERCISES = [
    Exercise(
        "5.1", "predict, then run", "what load_or_train does with an interrupted run",
        given=lambda: {"last_pt_epoch": 1, "epochs": 2, "force": False},
        choices=("load", "resume", "train from scratch"),
        reference=lambda g: "resume" if g.last_pt_epoch < g.epochs and not g.force else "load",
        mistakes=[
            Mistake("load", lambda g: "load",
                    "only a FINISHED run (last.pt at the last epoch) is loaded; this one stopped after epoch 1 of 2"),
            Mistake("scratch", lambda g: "train from scratch",
                    "last.pt holds the weights, the optimiser, the schedule and every random state: training "
                    "continues after epoch 1, exactly as an uninterrupted run would (force=True would restart)"),
        ],
        why="An interrupted run resumes with the same random streams, so it ends where an uninterrupted one would.",
    ),
    Exercise(
        "5.2", "predict, then run", "parameters of fc1 in the paper's VOC configuration",
        given=lambda: {"branches": 3, "labels": 20, "groups": 4, "embed_dim": 512, "hidden": 2048},
        reference=_fc1,
        mistakes=[
            Mistake("no bias", lambda g: g.branches * (g.labels + g.groups) * g.embed_dim * g.hidden,
                    "fc1 has a bias: add its 2048 entries"),
            Mistake("labels only", lambda g: g.branches * g.labels * g.embed_dim * g.hidden + g.hidden,
                    "M = [O || Q] holds the group rows too: n + m = 24 rows per branch"),
            Mistake("one branch", lambda g: (g.labels + g.groups) * g.embed_dim * g.hidden + g.hidden,
                    "the rows of all three branches are concatenated before fc1"),
        ],
        atol=0.5,
        why="fc1 reads the flattened M of every branch: 3 x 24 x 512 inputs, 62 % of the model's parameters.",
    ),
    Exercise(
        "5.3", "by hand", "the factor clipping applies to the whole step",
        given=lambda: {"norm": 140.0, "clip": 10.0},
        reference=_clip_factor,
        mistakes=[
            Mistake("inverted", lambda g: g.norm / g.clip,
                    "inverted: clipping shrinks the gradient to norm `clip`, a factor clip / norm below 1"),
            Mistake("no clipping", lambda g: 1.0,
                    "the norm (140) is above the clip norm (10), so the whole gradient is scaled down"),
            Mistake("one over clip", lambda g: 1 / g.clip,
                    "the factor depends on the gradient's norm: clip / norm"),
        ],
        why="The whole gradient, the classifier's part included, is scaled by 10 / 140: the auxiliary term "
            "throttles the classifier.",
    ),
    Exercise(
        "5.4", "predict, then run", "is 0.7 points of mAP between two settings meaningful (sd 1.1, 3 seeds each)?",
        given=lambda: {"mean_a": 75.4, "mean_b": 74.7, "sd": 1.1, "seeds": 3},
        choices=("yes", "no"),
        reference=_meaningful,
        mistakes=[Mistake("yes", lambda g: "yes",
                          "the difference is smaller than the seed-to-seed spread; a two-sample t-test gives p of "
                          "about 0.5: no evidence either way")],
        why="Compare a difference with the spread over seeds before ranking two settings.",
    ),
    Exercise("5.5", "experiment", "the gradient norms of the authors' compactness form"),
]

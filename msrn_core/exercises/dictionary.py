"""Exercises of notebook 07: DSDL's ridge coefficients (D3) by hand, the part of f they rebuild, lambda."""
from __future__ import annotations

import numpy as np
import torch

from ..extras.dsdl import ridge_coefficients
from .core import Exercise, Mistake


def _given_ridge():
    return {
        "D": np.array([[1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 1.0, 0.0], [1.0, 1.0, 0.0, 1.0]]),  # n x C atoms
        "f": np.array([2.0, 1.0, 3.0, -1.0]),  # one image's feature
        "ridge_lambda": 0.5,
    }


def _ridge(g, ridge_lambda=None) -> np.ndarray:
    ridge_lambda = g.ridge_lambda if ridge_lambda is None else ridge_lambda
    f, D = torch.as_tensor(g.f[None]), torch.as_tensor(g.D)
    return ridge_coefficients(f, D, ridge_lambda)[0].numpy()


def _rebuilt(g, squared=True, penalty=False):
    a = _ridge(g)
    residual = np.sum((g.f - a @ g.D) ** 2) + (g.ridge_lambda * np.sum(a ** 2) if penalty else 0.0)
    total = np.sum(g.f ** 2)
    return 1 - (np.sqrt(residual) / np.sqrt(total) if not squared else residual / total)


def _large_lambda(g):
    big = 1e4 * g.ridge_lambda
    a = _ridge(g, big)
    linear = g.f @ g.D.T / big
    return "f D^T / lambda" if np.allclose(a, linear, rtol=1e-2, atol=0) else "the least-squares coefficients"


EXERCISES = [
    Exercise(
        "7.1", "by hand", "the ridge coefficients a* of one image (D3)",
        given=_given_ridge,
        reference=_ridge,
        mistakes=[
            Mistake("no ridge", lambda g: g.f @ g.D.T @ np.linalg.inv(g.D @ g.D.T),
                    "the ridge term is missing: solve with D D^T + lambda I, not D D^T (plain least squares)"),
            Mistake("lambda everywhere", lambda g: g.f @ g.D.T @ np.linalg.inv(g.D @ g.D.T + g.ridge_lambda),
                    "you added lambda to every entry of D D^T; the penalty adds lambda I, on the diagonal only"),
            Mistake("no solve", lambda g: g.f @ g.D.T / g.ridge_lambda,
                    "f D^T / lambda is the limit for a huge lambda; solve the n x n system (D D^T + lambda I)"),
            Mistake("no inverse", lambda g: g.f @ g.D.T @ (g.D @ g.D.T + g.ridge_lambda * np.eye(len(g.D))),
                    "multiply by the INVERSE of D D^T + lambda I (or use np.linalg.solve)"),
        ],
        why="a* = f D^T (D D^T + lambda I)^-1: an n x n system however wide the features are.",
    ),
    Exercise(
        "7.2", "by hand", "the share of ||f||^2 the atoms rebuild",
        given=_given_ridge,
        reference=_rebuilt,
        mistakes=[
            Mistake("not squared", lambda g: _rebuilt(g, squared=False),
                    "use squared norms: 1 - ||f - a D||^2 / ||f||^2"),
            Mistake("with penalty", lambda g: _rebuilt(g, penalty=True),
                    "the share rebuilt is about the residual f - a D alone; leave the penalty lambda ||a||^2 out"),
        ],
        why="The atoms span at most n of the C feature directions; the rest of f is residual.",
    ),
    Exercise(
        "7.3", "predict, then run", "what a* tends to when lambda grows far beyond ||D_i||^2",
        given=_given_ridge,
        choices=("f D^T / lambda", "the least-squares coefficients", "unchanged"),
        reference=_large_lambda,
        mistakes=[
            Mistake("least squares", lambda g: "the least-squares coefficients",
                    "least squares is the limit lambda -> 0; for a large lambda, D D^T + lambda I ~ lambda I"),
            Mistake("unchanged", lambda g: "unchanged",
                    "lambda is inside the inverse: the coefficients shrink like 1 / lambda"),
        ],
        why="With lambda >> ||D_i||^2 the solve is lambda I and every atom becomes a plain linear classifier.",
    ),
    Exercise("7.4", "experiment", "lambda at inference on the trained DSDL"),
]

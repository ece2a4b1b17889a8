"""Exercises of notebook 02: one GAT attention coefficient and output (eq. 2-3), static attention."""
from __future__ import annotations

import numpy as np
import torch

from ..layers import GATLayer
from ..model import count_parameters
from .core import Exercise, Mistake


def _given_gat():
    return {
        "H": np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]),  # h_i, rows
        "U": np.array([[1.0, 0.0, -1.0], [0.0, 2.0, 1.0]]),  # w x v: U h_i = U @ h_i
        "P": np.array([1.0, -1.0, 0.5, 1.0]),  # [P_left || P_right]
        "mask": np.array([[1, 1, 0, 1], [1, 1, 1, 0], [0, 1, 1, 0], [1, 0, 0, 1]], dtype=bool),
        "i": 0, "j": 1,
    }


def _layer(g) -> tuple[torch.Tensor, torch.Tensor]:
    """msrn_core's GATLayer with the exercise's weights: (output, alpha)."""
    layer = GATLayer(g.H.shape[1], g.U.shape[0])
    with torch.no_grad():
        layer.U.weight.copy_(torch.as_tensor(g.U, dtype=torch.float64).float())
        layer.P.copy_(torch.as_tensor(g.P, dtype=torch.float32))
        out, alpha = layer(torch.as_tensor(g.H, dtype=torch.float32), torch.as_tensor(g.mask))
    return out.numpy().astype(np.float64), alpha.numpy().astype(np.float64)


def _scores(g, leaky=True, swap=False):
    """e[i, j] = LeakyReLU(P_left . U h_i + P_right . U h_j) (swap: the two halves' roles exchanged)."""
    uh = g.H @ g.U.T
    w = uh.shape[1]
    left, right = uh @ g.P[:w], uh @ g.P[w:]
    raw = (right[:, None] + left[None, :]) if swap else (left[:, None] + right[None, :])
    return np.where(raw > 0, raw, 0.2 * raw) if leaky else raw


def _softmax(e, mask, axis=1):
    weights = np.where(mask, np.exp(e), 0.0)
    return weights / weights.sum(axis=axis, keepdims=True)


def _alpha(g, **variant):
    mask = variant.pop("mask", g.mask)
    axis = variant.pop("axis", 1)
    return _softmax(_scores(g, **variant), mask, axis)


def _output(g, alpha=None, self_term=True, elu=True):
    uh = g.H @ g.U.T
    alpha = _alpha(g) if alpha is None else alpha
    out = alpha @ uh + (uh if self_term else 0.0)
    return np.where(out > 0, out, np.expm1(out)) if elu else out


def _given_output():
    return {**_given_gat(), "i": 3}


def _static_ranking(g):
    """Do two labels with the same two neighbours a, b ever rank them differently? Checked on random layers."""
    generator = torch.Generator().manual_seed(0)
    mask = torch.ones(g.n, g.n, dtype=torch.bool)
    for _ in range(g.trials):
        layer = GATLayer(g.width, g.width)
        with torch.no_grad():
            for parameter in layer.parameters():
                parameter.copy_(torch.randn(parameter.shape, generator=generator))
            _, alpha = layer(torch.randn(g.n, g.width, generator=generator), mask)
        order = alpha.argsort(dim=1)
        if not (order == order[0]).all():
            return "yes"
    return "no"


EXERCISES = [
    Exercise(
        "2.1", "by hand", "one GAT attention coefficient alpha_ij (eq. 2)",
        given=_given_gat,
        reference=lambda g: _layer(g)[1][g.i, g.j],
        mistakes=[
            Mistake("no mask", lambda g: _alpha(g, mask=np.ones_like(g.mask))[g.i, g.j],
                    "you normalised over all labels; the softmax runs over the neighbours N_i only "
                    "(mask[i] is True), the others get exp(-inf) = 0"),
            Mistake("no LeakyReLU", lambda g: _alpha(g, leaky=False)[g.i, g.j],
                    "the LeakyReLU (slope 0.2) is missing: a negative score e = -0.5 becomes -0.1 before the exp"),
            Mistake("halves swapped", lambda g: _alpha(g, swap=True)[g.i, g.j],
                    "P_left scores the attending label i and P_right the attended label j: "
                    "P [U h_i || U h_j] = P_left . U h_i + P_right . U h_j (yours is transposed)"),
            Mistake("column softmax", lambda g: _alpha(g, axis=0)[g.i, g.j],
                    "wrong axis: normalise over j (row i sums to 1: softmax(e, axis=1)), not over i"),
        ],
        why="alpha_ij is a softmax over label i's allowed neighbours of LeakyReLU(P [U h_i || U h_j]).",
    ),
    Exercise(
        "2.2", "by hand", "one GAT output row (eq. 3)",
        given=_given_output,
        reference=lambda g: _layer(g)[0][g.i],
        mistakes=[
            Mistake("no self term", lambda g: _output(g, self_term=False)[g.i],
                    "the separate self term U h_i is missing: eq. 3 adds it on top of the attention-weighted sum"),
            Mistake("no ELU", lambda g: _output(g, elu=False)[g.i],
                    "the ELU is missing: sigma in eq. 3 is ELU(z) = exp(z) - 1 for z < 0"),
            Mistake("alpha transposed", lambda g: _output(g, alpha=_alpha(g).T)[g.i],
                    "you used alpha^T (column i): label i's new feature sums alpha[i, j] U h_j over j"),
        ],
        why="The output mixes the neighbours by alpha and adds the label's own U h_i once more.",
    ),
    Exercise(
        "2.3", "predict, then run", "static attention: can two labels rank a shared pair of neighbours differently?",
        given=lambda: {"n": 5, "width": 4, "trials": 50},
        choices=("yes", "no"),
        reference=_static_ranking,
        mistakes=[Mistake("yes", lambda g: "yes",
                          "LeakyReLU is increasing, so for every i the order of e_ij over j is the order of "
                          "P_right . U h_j, a score of j alone: one ranking per layer")],
        why="This GAT has static attention (one global ranking per layer); only the mask and the sharpness "
            "differ from label to label.",
    ),
    Exercise(
        "2.4", "predict, then run", "parameters of GATLayer(384, 256)",
        given=lambda: {"in_features": 384, "out_features": 256},
        reference=lambda g: count_parameters(GATLayer(g.in_features, g.out_features)),
        mistakes=[
            Mistake("no P", lambda g: g.in_features * g.out_features,
                    "you counted U only; the attention vector P has 2 w entries too"),
            Mistake("P of width w", lambda g: g.in_features * g.out_features + g.out_features,
                    "P scores the concatenation [U h_i || U h_j], so it has 2 w entries, not w"),
            Mistake("bias", lambda g: (g.in_features + 1) * g.out_features + 2 * g.out_features,
                    "U has no bias (nn.Linear(..., bias=False)): U is w x v, P has 2 w entries"),
        ],
        atol=0.5,
        why="U (w x v) and P (2 w): the layer is tiny, whatever the number of labels.",
    ),
    Exercise("2.5", "experiment", "one-hot against sentence label features through a random GAT"),
]

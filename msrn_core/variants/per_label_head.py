"""A classifier head whose size grows linearly in the number of labels n (``ModelConfig.head = "per_label"``).

The paper's head (``fc1`` over the flattened M = [O || Q]) has (n + m) x width x fc_hidden weights
in fc1 alone, which does not fit memory for thousands of labels. This head reads each label's own
row instead: its row of O and, with groups, its groups' rows of Q weighted by its Diffpool
assignment S.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PerLabelClassifier(nn.Module):
    """A head whose size grows linearly in the number of labels n.

    Each label's own representation x_i (a row built from M = [O || Q]) goes through one shared
    layer, ``h_i = LeakyReLU(W x_i + b)``, and a weight vector of its own: ``y_i = w_i . h_i + c_i``.
    Parameters: in x hidden + hidden (shared) + n x (hidden + 1).
    """

    def __init__(self, in_features: int, hidden: int, num_classes: int, negative_slope: float = 0.2):
        super().__init__()
        self.shared = nn.Linear(in_features, hidden)
        bound = 1 / hidden ** 0.5  # nn.Linear's initialisation for a layer with `hidden` inputs
        self.weight = nn.Parameter(torch.empty(num_classes, hidden).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(num_classes).uniform_(-bound, bound))
        self.negative_slope = negative_slope

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        """``rows``: B x n x in_features, one row per label; returns B x n logits."""
        hidden = F.leaky_relu(self.shared(rows), self.negative_slope)
        return (hidden * self.weight).sum(dim=-1) + self.bias


def label_rows(rows: torch.Tensor, num_labels: int, uses_labels: bool, assignment: torch.Tensor | None):
    """Each label's own row (B x n x width): its row of O and, with groups, ``S_i Q``.

    ``rows`` is tanh(M), B x (n + m) x width with the label rows first (only those that exist);
    ``assignment`` is the Diffpool S (n x m), or None without groups.
    """
    split = num_labels if uses_labels else 0
    parts = ([rows[:, :split]] if uses_labels else []) + (
        [assignment.to(rows.dtype) @ rows[:, split:]] if assignment is not None else [])
    return torch.cat(parts, dim=-1)

"""The building blocks of MSRN's Label-Group Embedding and Semantic Guided Attention.

Each block is a few dozen lines with the paper's equation numbers beside the code:

- :class:`GATLayer`                  graph attention layer, paper eq. 2-4
- :func:`diffpool`                   differentiable pooling of labels into groups, eq. 5
- :class:`DiffpoolBlock`             the two GAT layers and Diffpool: label groups from label features
- :func:`group_link_loss`            Diffpool's link-prediction loss (Ying et al. 2018)
- :func:`compactness_loss`           pull each label towards its group, eq. 6
- :func:`semantic_guided_attention`  position-wise attention guided by embeddings, eq. 7-9
- :func:`label_spatial_attention`    one spatial map per label from dot-product scores (eq. 8's softmax per label)

This is the plain form the notebooks teach. MSRN trains by default with a memory-lean form of
eq. 7-9 that gives the same results: :mod:`msrn_core.variants.lean_sga`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class GATLayer(nn.Module):
    """One single-head graph attention layer (paper eq. 2-3).

    For label features ``h`` (n x k_in) and a boolean mask (n x n, True where label i may
    attend to label j, self loop included)::

        e_ij     = LeakyReLU_0.2(P . [U h_i || U h_j])              (eq. 2, numerator)
        alpha_ij = softmax over j in N(i) of e_ij                     (eq. 2)
        h'_i     = ELU( sum_j alpha_ij U h_j  +  U h_i )              (eq. 3)

    The self term ``U h_i`` is added separately, as the paper writes it.
    """

    def __init__(self, in_features: int, out_features: int, negative_slope: float = 0.2):
        super().__init__()
        self.U = nn.Linear(in_features, out_features, bias=False)
        # P in R^{1 x 2w}, split into the half that scores i and the half that scores j.
        self.P = nn.Parameter(torch.empty(2 * out_features))
        self.negative_slope = negative_slope
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.xavier_uniform_(self.U.weight)
        bound = (6.0 / (2 * self.U.out_features + 1)) ** 0.5
        nn.init.uniform_(self.P, -bound, bound)

    def attention(self, uh: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The attention coefficients alpha (n x n) for transformed features ``uh = U h``."""
        width = uh.shape[-1]
        score_i = uh @ self.P[:width]  # P_left . U h_i
        score_j = uh @ self.P[width:]  # P_right . U h_j
        e = F.leaky_relu(score_i[:, None] + score_j[None, :], self.negative_slope)
        e = e.masked_fill(~mask, float("-inf"))
        return torch.softmax(e, dim=1)

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns the new label features (n x out) and the attention matrix alpha (n x n)."""
        uh = self.U(h)
        alpha = self.attention(uh, mask)
        out = alpha @ uh + uh  # eq. 3: neighbours weighted by alpha, plus the self term
        return F.elu(out), alpha


def diffpool(z: torch.Tensor, adjacency: torch.Tensor, assign_logits: torch.Tensor):
    """Differentiable pooling (Diffpool, paper eq. 5) of n labels into m groups.

    ``S = softmax_rows(assign_logits)`` (n x m, each label's soft membership, rows sum to 1),
    group embeddings ``E_g = S^T Z`` (m x d) and the pooled adjacency ``S^T A S`` (m x m).
    Returns ``(E_g, pooled_adjacency, S)``.
    """
    s = torch.softmax(assign_logits, dim=-1)
    s_t = s.transpose(-1, -2)
    return s_t @ z, s_t @ adjacency @ s, s


class DiffpoolBlock(nn.Module):
    """The group half of MSRN's LGE module (paper eq. 5): two GAT layers and :func:`diffpool`.

    ``Z = GAT_embed(E)`` (k -> k, so that the compactness loss can compare E_g with E),
    ``S = softmax_rows(GAT_assign(E))`` (k -> m), ``E_g = S^T Z``. MSRN runs it on its label
    embeddings; :func:`msrn_core.groups.fit_label_groups` trains it alone on fixed features.
    """

    def __init__(self, in_features: int, num_groups: int):
        super().__init__()
        self.gat_embed = GATLayer(in_features, in_features)  # Diffpool's embedding GNN
        self.gat_assign = GATLayer(in_features, num_groups)  # Diffpool's assignment GNN

    def forward(self, features: torch.Tensor, adjacency: torch.Tensor, mask: torch.Tensor):
        """``(E_g, S)`` for label features (n x k), the adjacency A_hat and the GAT mask (n x n)."""
        z, _ = self.gat_embed(features, mask)
        assign_logits, _ = self.gat_assign(features, mask)
        group_embeddings, _, assignment = diffpool(z, adjacency, assign_logits)
        return group_embeddings, assignment


# group_link_loss's divisor: "labels" = n (MSRN's term), "entries" = n^2 (fit_label_groups; PyTorch
# Geometric's dense_diff_pool divides by the adjacency's number of entries)
LINK_LOSS_SCALES = ("labels", "entries")


def group_link_loss(assignment: torch.Tensor, mask: torch.Tensor, per: str = "labels") -> torch.Tensor:
    """Diffpool's link-prediction loss (Ying et al., 2018, section 3.3), a step beyond the MSRN paper:
    ``||A - S S^T||_F / n``, with ``A`` the symmetric label graph with self loops (``mask``, the
    GAT mask) and ``S`` the n x m assignment. ``S S^T[i, j]`` is the probability that labels i
    and j share a group, so the loss asks labels that co-occur to share one.

    Ying et al. write the plain Frobenius norm, with no normalisation; PyTorch Geometric's
    ``dense_diff_pool`` divides it by the number of entries of A, n^2 (``per="entries"``, what
    :func:`msrn_core.groups.fit_label_groups` minimises). Divided by n (``per="labels"``, the
    default, MSRN's ``TrainConfig.group_link_weight`` term) it sits on the scale of a per-label mean BCE.
    """
    if per not in LINK_LOSS_SCALES:
        raise ValueError(f"unknown link-loss scale {per!r}; choose one of {LINK_LOSS_SCALES}")
    target = (mask | mask.transpose(0, 1)).to(assignment.dtype)
    norm = torch.linalg.matrix_norm(target - assignment @ assignment.transpose(0, 1))
    n = assignment.shape[0]
    return norm / n if per == "labels" else norm / n ** 2


# The compactness loss in three forms (ModelConfig.compactness_form), each with the weight
# lambda it is used with (TrainConfig.compactness_weight=None takes this one):
# - "paper":      eq. 6 as printed, sum_i ||E_g^{k(i)} - E_l^i||^2 (squared), lambda = 1e-3 (paper 4.1);
#                 the paper pairs it with eq. 1, a BCE *summed* over the n labels.
# - "authors":    the authors' code, sum_i ||E_l^i - E_g^{k(i)}|| (unsquared), lambda = 1e-4, with
#                 Diffpool run on ReLU(E_l).
# - "paper_mean": eq. 6 divided by n, lambda = 1e-3: the paper's balance of the two terms when the BCE
#                 is a per-label *mean* (ours, and the authors' MultiLabelSoftMarginLoss), since
#                 sum-BCE + lambda * L2 = n * (mean-BCE + lambda * L2 / n).
# k(i) = argmax_k S[i, k], the group of label i.
COMPACTNESS_FORMS = {"paper": 1e-3, "authors": 1e-4, "paper_mean": 1e-3}


def compactness_loss(group_embeddings: torch.Tensor, label_embeddings: torch.Tensor,
                     assignment: torch.Tensor, form: str = "paper") -> torch.Tensor:
    """The compactness loss (paper eq. 6) in one of :data:`COMPACTNESS_FORMS`, without its weight.

    ``"paper"``: ``sum_k sum_{i in C_k} ||E_g^k - E_l^i||^2`` (squared L2), where label i belongs
    to cluster ``C_k`` with ``k = argmax_k S[i, k]``; ``"paper_mean"``: the same divided by n;
    ``"authors"``: ``sum_i ||E_l^i - E_g^k||`` (unsquared L2).
    """
    if form not in COMPACTNESS_FORMS:
        raise ValueError(f"unknown compactness form {form!r}; choose one of {tuple(COMPACTNESS_FORMS)}")
    cluster = assignment.argmax(dim=-1)  # (n,)
    difference = group_embeddings[cluster] - label_embeddings
    if form == "authors":
        return difference.norm(dim=-1).sum()
    squared = difference.pow(2).sum()
    return squared / label_embeddings.shape[0] if form == "paper_mean" else squared


SGA_AXES = ("channel", "label")  # what eq. 8's softmax runs over, per channel or per label


def check_sga_axis(axis: str) -> None:
    """A clear error unless ``axis`` is one of :data:`SGA_AXES`."""
    if axis not in SGA_AXES:
        raise ValueError(f"unknown attention axis {axis!r}; choose one of {SGA_AXES}")


def label_spatial_attention(features: torch.Tensor, embeddings: torch.Tensor, temperature=1.0):
    """Label-specific spatial attention: one map per label, from dot-product scores.

    ``features`` f (B x HW x d), ``embeddings`` e (C x d)::

        s[p, c] = <f[p], e[c]> / temperature
        a[p, c] = softmax over positions p of s[:, c]
        o[c]    = sum_p a[p, c] f[p]

    Returns ``o`` (B x C x d) and the attention ``a`` as B x C x HW (rows sum to 1). Unlike eq. 8,
    every channel of label c shares one map, so the map is the whole of what label c looks at.
    """
    scores = features @ embeddings.t().to(features.dtype)  # B x HW x C
    if not (isinstance(temperature, (int, float)) and temperature == 1):
        scores = scores / temperature
    attention = torch.softmax(scores.float(), dim=1).transpose(1, 2)  # B x C x HW
    return attention.to(features.dtype) @ features, attention


def semantic_guided_attention(features: torch.Tensor, embeddings: torch.Tensor,
                              return_attention: bool = False, temperature=1.0, axis: str = "channel"):
    """Semantic Guided Attention (paper eq. 7-9); no parameters.

    ``features``: projected branch features f (B x HW x d); ``embeddings``: e (C x d),
    the label (or group) embeddings. With ``axis="channel"`` (the paper), for every label c and
    channel k:

        s[p, c, k] = f[p, k] * e[c, k] / temperature    (eq. 7, Hadamard product)
        a[p, c, k] = softmax over positions p of s      (eq. 8)
        o[c, k]    = sum_p a[p, c, k] * f[p, k]         (eq. 9)

    ``temperature`` (a float or a 0-dim tensor) divides the scores before eq. 8's softmax; 1 is
    eq. 8 as printed (the scores are then not divided at all). With ``axis="label"`` the softmax
    runs per label over positions of dot-product scores instead (:func:`label_spatial_attention`).

    Returns ``o`` (B x C x d) and, with ``return_attention``, the spatial attention of every
    label (averaged over channels for ``axis="channel"``; B x C x HW, each row sums to 1 over positions).
    """
    check_sga_axis(axis)
    if axis == "label":
        out, attention = label_spatial_attention(features, embeddings, temperature)
        return (out, attention) if return_attention else out
    scores = features.unsqueeze(2) * embeddings  # (B, HW, C, d)        eq. 7
    if not (isinstance(temperature, (int, float)) and temperature == 1):
        scores = scores / temperature
    attention = torch.softmax(scores, dim=1)  # over positions          eq. 8
    out = (attention * features.unsqueeze(2)).sum(dim=1)  # (B, C, d)   eq. 9
    if return_attention:
        return out, attention.mean(dim=-1).transpose(1, 2)
    return out

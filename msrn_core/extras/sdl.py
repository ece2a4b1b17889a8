"""SDL: Semantic Diversity Learning for zero-shot multi-label classification (Ben-Cohen et al., ICCV 2021).

An image is embedded not as one vector in label-vector space but as a matrix ``A`` of ``k``
*principal vectors* (k x w, w = the width of the label vectors: 300 for GloVe, 384 for the
tutorial's sentence embeddings). A tag is relevant when *some* principal vector points its way:

- Model: backbone -> global average pooling -> one linear layer without bias (as the authors'
  ``to_sdl``) -> ``k * w`` numbers -> ``A``. (Theirs reads the ``k * w`` numbers as w x k and
  takes the columns; we read k x w and take the rows: the same family of heads, the output
  units permuted.)
- Score of tag j with label vector ``v_j``::

      s_j = max_r  <A_r, v_j>                                      (the relevance score)

  The score needs nothing but ``v_j``, so a model trained on *seen* tags ranks any tag whose
  vector it is given: :meth:`SDL.use_tags` swaps the tag vectors for evaluation (unseen tags
  for zero-shot, all tags for generalised zero-shot).

- Loss of image i with positive tags P and negative tags N (:func:`sdl_loss`)::

      L_rank(i) = (1 / |P|) sum_{p in P} sum_{n in N} log(1 + exp(s_n - s_p))
      w_i       = 1 + sum_d Var_{p in P}(v_{p,d})                 (semantic diversity weight)
      L_reg(i)  = sum_d Var_{r = 1..k}(A_{r,d})                   (principal-vector variance)
      L(i)      = w_i L_rank(i) + lambda L_reg(i),  averaged over the images of a batch

Which variances, precisely (read from the authors' released loss, ``SDL_loss.py``):

- the **diversity** of an image is the variance of its positive tags' label vectors, taken per
  coordinate d across the positive tags (unbiased, divisor |P| - 1) and summed over the w
  coordinates; an image with a single positive tag has diversity 0. Semantically diverse images
  (e.g. "dog" with "microwave") weigh more, which pushes their principal vectors apart;
- the **regulariser** is the variance of the principal vectors, taken per coordinate across the
  k rows of ``A`` (unbiased, divisor k - 1) and summed over the coordinates (the L1 norm of the
  per-coordinate variances). Minimising it keeps the k vectors from spreading without bound: it
  balances the diversity weight.

A tag is positive when its target is exactly 1; every other tag is a negative, ``-1`` (unknown)
and soft targets included, and only the positives enter the diversity weight: the authors' code
does the same (``y == 1`` for the positives, ``(1 - y).bool()`` for the negatives). An image with
no negative tag ranks its positives against a score of 0 (``log(1 + exp(-s_p))``), as theirs does.
An image with no positive has nothing to rank: its ranking term is 0 (the authors' code divides
by zero there; :mod:`msrn_core.extras.zero_shot` removes such images from training, as the field does).

The weight lambda: the paper trains with lambda = 0.01. The released loss file writes the
combination as ``2 ((1 - w) L_rank + w L_reg)`` (the class defaults to ``w = 0.3``, their
``train.py`` passes ``--var_weight 0.01``); that is the same loss as here up to the factor
``2 (1 - w)``, with ``lambda = w / (1 - w)``. The factor hardly matters under Adam, which they
train with (lr 2.5e-5, one-cycle schedule, weight decay 3e-4, 10 epochs, batch 32, 224 px): Adam's
step does not scale with the loss, except through its epsilon and its L2 weight-decay term. Under
this repository's SGD it scales the effective step. ``docs/dsdl_sdl_fidelity.md`` lists every
difference.

The authors train a TResNet-M at 224 px on NUS-WIDE (925 seen, 81 unseen tags) and Open Images
with GloVe vectors; their repository's README quotes no numbers, so none are repeated here.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from ..model import LabelGraphModel, ModelOutput, ResNetTrunk, register_model


@dataclass
class SDLConfig:
    """Everything that fixes an SDL model (stored in every checkpoint)."""

    kind: str = "sdl"
    backbone: str = "resnet101"
    pretrained: bool = False
    num_principal: int = 7  # k, the number of principal vectors (the authors' released model: 7)
    regularization_weight: float = 0.01  # lambda in front of L_reg (paper: 0.01)

    def __post_init__(self):
        if self.kind != "sdl":
            raise ValueError(f"SDLConfig is for kind 'sdl', got {self.kind!r}")
        if self.num_principal < 1:
            raise ValueError(f"num_principal (k) must be at least 1, got {self.num_principal}")
        if self.regularization_weight < 0:
            raise ValueError(f"regularization_weight (lambda) must be >= 0, got {self.regularization_weight}")


@dataclass
class SDLOutput(ModelOutput):
    """:class:`ModelOutput` plus the principal vectors ``A`` (B x k x w) the loss regularises."""

    principal_vectors: torch.Tensor | None = None


def tag_products(principal_vectors: torch.Tensor, tag_vectors: torch.Tensor) -> torch.Tensor:
    """``<A[b, r], v_j>`` for every principal vector r and tag j: (B x k x w) and (n x w) -> (B x k x n)."""
    return torch.einsum("bkw,nw->bkn", principal_vectors, tag_vectors)


def relevance_scores(principal_vectors: torch.Tensor, tag_vectors: torch.Tensor) -> torch.Tensor:
    """``s[b, j] = max_r <A[b, r], v_j>``: (B x k x w) and (n x w) -> (B x n)."""
    return tag_products(principal_vectors, tag_vectors).amax(dim=1)


def positive_tags(targets: torch.Tensor) -> torch.Tensor:
    """The positives of a target matrix: entries equal to 1 (``-1``, 0 and soft targets are not)."""
    return targets == 1


def semantic_diversity(tag_vectors: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per image, the summed per-coordinate variance of its positive tags' vectors (0 if < 2 positives).

    ``tag_vectors``: n x w; ``targets``: B x n, positive where equal to 1. Unbiased variance, as ``torch.var``.
    """
    positives = positive_tags(targets).to(tag_vectors.dtype)
    count = positives.sum(dim=1)  # |P|
    mean = positives @ tag_vectors / count.clamp(min=1).unsqueeze(1)  # B x w
    squared = ((tag_vectors.unsqueeze(0) - mean.unsqueeze(1)) ** 2).sum(dim=2)  # B x n: ||v_j - mean||^2
    total = (positives * squared).sum(dim=1)
    return torch.where(count > 1, total / (count - 1).clamp(min=1), torch.zeros_like(total))


def principal_variance(principal_vectors: torch.Tensor) -> torch.Tensor:
    """Per image, the summed per-coordinate variance across its k principal vectors (0 if k = 1)."""
    if principal_vectors.shape[1] < 2:
        return principal_vectors.new_zeros(principal_vectors.shape[0])
    return principal_vectors.var(dim=1).sum(dim=1)


def pairwise_ranking_loss(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per image, ``(1/|P|) sum_{p, n} log(1 + exp(s_n - s_p))``; 0 for an image with no positive.

    Positive: a target equal to 1; negative: any other target.
    """
    pos = positive_tags(targets)
    neg = ~pos
    count = pos.sum(dim=1)
    pairs = F.softplus(scores.unsqueeze(1) - scores.unsqueeze(2))  # [b, p, n] = log(1 + exp(s_n - s_p))
    pair_mask = pos.unsqueeze(2) & neg.unsqueeze(1)
    ranked = (pairs * pair_mask).sum(dim=(1, 2))
    # no negative at all: the positives are ranked against a score of 0, as in the authors' code
    alone = (F.softplus(-scores) * pos).sum(dim=1)
    total = torch.where(neg.any(dim=1), ranked, alone)
    return torch.where(count > 0, total / count.clamp(min=1), torch.zeros_like(total))


def sdl_loss(principal_vectors: torch.Tensor, tag_vectors: torch.Tensor, targets: torch.Tensor,
             regularization_weight: float = 0.01) -> tuple[torch.Tensor, torch.Tensor]:
    """``(total, weighted ranking term)``, both averaged over the batch (module docstring)."""
    principal_vectors = principal_vectors.float()
    tag_vectors = tag_vectors.float()
    scores = relevance_scores(principal_vectors, tag_vectors)
    weight = 1 + semantic_diversity(tag_vectors, targets)
    ranking = (weight * pairwise_ranking_loss(scores, targets)).mean()
    regulariser = principal_variance(principal_vectors).mean()
    return ranking + regularization_weight * regulariser, ranking


class SDL(nn.Module):
    """Backbone -> global average pooling -> linear -> k principal vectors; scores by max dot product."""

    def __init__(self, config: SDLConfig, label_features: torch.Tensor, adjacency: torch.Tensor | None = None):
        super().__init__()  # ``adjacency`` is accepted for the common build_model interface, and unused
        label_features = torch.as_tensor(label_features, dtype=torch.float32)
        if label_features.ndim != 2:
            raise ValueError(f"label_features must be an n x w matrix, got shape {tuple(label_features.shape)}")
        self.config = config
        self.register_buffer("label_features", label_features)  # the tags ranked now (n x w)
        self.trunk = ResNetTrunk(config.backbone, config.pretrained)
        self.width = label_features.shape[1]
        self.head = nn.Linear(self.trunk.channels[4], config.num_principal * self.width, bias=False)

    parameter_groups = LabelGraphModel.parameter_groups  # the trunk at lr * backbone_lr_mult, the head at lr

    @property
    def num_classes(self) -> int:
        return self.label_features.shape[0]

    def principal_vectors(self, images: torch.Tensor) -> torch.Tensor:
        """``A`` for each image: B x k x w."""
        pooled = self.trunk(images, (4,))[4].mean(dim=(2, 3))
        return self.head(pooled).view(-1, self.config.num_principal, self.width)

    def forward(self, images: torch.Tensor, details: bool = False) -> SDLOutput:
        principal = self.principal_vectors(images)
        products = tag_products(principal.float(), self.label_features)
        result = SDLOutput(products.amax(dim=1), images.new_zeros(()), principal_vectors=principal)  # scores
        if details:
            # which principal vector gives each tag its score
            result.details = {"winning_vector": products.argmax(dim=1).detach(),
                              "principal_vectors": principal.detach()}
        return result

    def training_loss(self, output: SDLOutput, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The SDL loss on the tags the model holds now (the seen tags during training)."""
        if targets.shape[1] != self.num_classes:
            raise ValueError(f"targets have {targets.shape[1]} tags but the model ranks {self.num_classes}: "
                             "train on a dataset restricted to the model's tags (zero_shot.restrict_to_tags)")
        return sdl_loss(output.principal_vectors, self.label_features, targets, self.config.regularization_weight)

    @contextmanager
    def use_tags(self, tag_vectors) -> Iterator["SDL"]:
        """Rank other tags inside the ``with`` block (n' x w vectors), e.g. the unseen ones.

        ``predict``/``evaluate`` then return scores over these tags; the trained tags come back
        on exit, so checkpoints always hold the training tags.
        """
        tag_vectors = torch.as_tensor(tag_vectors, dtype=torch.float32, device=self.label_features.device)
        if tag_vectors.ndim != 2 or tag_vectors.shape[1] != self.width:
            raise ValueError(f"tag vectors must be n x {self.width} (the width this model was trained with), "
                             f"got shape {tuple(tag_vectors.shape)}: use the same label-feature provider")
        trained = self.label_features
        self.label_features = tag_vectors
        try:
            yield self
        finally:
            self.label_features = trained


register_model("sdl", SDL, SDLConfig)

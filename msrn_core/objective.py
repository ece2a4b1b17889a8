"""The objective MSRN minimises, one function per term (paper section 3.1 and 4.1).

For one batch of images with labels ``y`` (0 or 1 per label) and scores ``y_hat``::

    L = BCE(y_hat, y)            eq. 1, averaged over the labels and the images
      + lambda * L_2             eq. 6, the compactness loss (layers.compactness_loss)
      + mu * L_link              Diffpool's link prediction (model.group_link_loss); mu = 0 in the paper

The model computes ``L_2`` and ``L_link`` in its forward pass (``output.compactness``,
``output.group_link``), where the assignment and the embeddings are; this module weights and sums.
lambda is ``TrainConfig.compactness_weight``, or the weight of the model's compactness form
(``layers.COMPACTNESS_FORMS``); mu is ``TrainConfig.group_link_weight``. A model with a loss of
its own (DSDL, SDL) defines ``training_loss(output, targets) -> (total, main term)``, and
:func:`model_objective` trains it with that instead.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Callable

import torch
import torch.nn.functional as F

from .layers import COMPACTNESS_FORMS


def classification_term(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Eq. 1: binary cross-entropy on the logits, averaged over the labels and the images."""
    return F.binary_cross_entropy_with_logits(logits.float(), targets)


def compactness_term(compactness: torch.Tensor, weight: float) -> torch.Tensor:
    """``lambda * L_2``: the compactness loss (eq. 6, ``layers.compactness_loss``), weighted."""
    return weight * compactness.float()


def group_link_term(group_link: torch.Tensor, weight: float) -> torch.Tensor:
    """``mu * L_link``: Diffpool's link-prediction loss (``model.group_link_loss``), weighted."""
    return weight * group_link.float()


@dataclass(frozen=True)
class LossWeights:
    compactness: float  # lambda, the weight of eq. 6
    group_link: float = 0.0  # mu, the weight of the link-prediction term (0: the paper)


def objective(output, targets: torch.Tensor, weights: LossWeights) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``(L, terms)``: the loss of one batch and its weighted terms, the BCE (eq. 1) first."""
    terms = {"bce": classification_term(output.logits, targets),
             "compactness": compactness_term(output.compactness, weights.compactness)}
    total = terms["bce"] + terms["compactness"]
    if weights.group_link and output.group_link is not None:
        terms["group_link"] = group_link_term(output.group_link, weights.group_link)
        total = total + terms["group_link"]
    return total, terms


def main_term(terms: dict[str, torch.Tensor]) -> torch.Tensor:
    """The main term of a loss's terms (the first: eq. 1's BCE, or a model's own main term)."""
    return next(iter(terms.values()))


def _unwrapped(model):
    return getattr(model, "module", model)  # DistributedDataParallel holds the model as .module


def compactness_lambda(model, compactness_weight: float | None) -> float:
    """lambda: ``compactness_weight``, or (None) the weight of the model's compactness form."""
    if compactness_weight is not None:
        return compactness_weight
    form = getattr(getattr(_unwrapped(model), "config", None), "compactness_form", "paper")
    return COMPACTNESS_FORMS[form]


def loss_weights(model, compactness_weight: float | None, group_link_weight: float = 0.0) -> LossWeights:
    """The weights of :func:`objective` for ``model`` (``compactness_weight=None``: its form's lambda)."""
    return LossWeights(compactness_lambda(model, compactness_weight), group_link_weight)


LossFunction = Callable[[object, torch.Tensor], "tuple[torch.Tensor, dict[str, torch.Tensor]]"]


def model_objective(model, weights: LossWeights) -> LossFunction:
    """``loss(output, targets) -> (total, terms)`` that trains ``model``: :func:`objective`, or the
    model's own ``training_loss`` (DSDL, SDL), whose main term is then the one term."""
    own_loss = getattr(_unwrapped(model), "training_loss", None)
    return partial(objective, weights=weights) if own_loss is None else own_objective(own_loss)


def own_objective(training_loss) -> LossFunction:
    """A model's own ``training_loss(output, targets) -> (total, main)`` as a loss with terms
    (``{"main": main}``)."""
    def loss(output, targets):
        total, main = training_loss(output, targets)
        return total, {"main": main}

    return loss


def loss_terms(output, targets: torch.Tensor, compactness_weight: float | None,
               model: torch.nn.Module | None = None,
               group_link_weight: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """``(total, main term)`` of one batch for ``model`` (:func:`model_objective` with these weights)."""
    total, terms = model_objective(model, loss_weights(model, compactness_weight, group_link_weight))(
        output, targets)
    return total, main_term(terms)

"""DSDL: Deep Semantic Dictionary Learning (Zhou, Huang and Xing, AAAI 2021).

Multi-label classification as dictionary learning. The class semantics ``S`` (n x k, one label
vector per class) are turned into a *dictionary* in visual space, ``D`` (n x C, one atom per
class), and an image feature ``f`` (C) is represented as ``f ~ a D``. The representation
coefficients ``a`` (one per class) are the class scores.

- Feature: the backbone's last stage, global max pooling (the authors' choice, as ML-GCN).
- Semantic encoder (the dictionary): ``D = LeakyReLU_0.2(S W1) W2``, k -> 1024 -> C, no biases.
- Decoder with tied weights: ``S_hat = LeakyReLU_0.2(D W2^T) W1^T``.
- Coefficients by ridge regression in closed form (the coefficient step of APUS)::

      A = argmin_A ||F - A D||^2 + lambda ||A||^2 = F D^T (D D^T + lambda I)^-1

  an n x n system, solved (never inverted) in float32, also under autocast.
- Loss (:func:`dsdl_loss`): multi-label classification on ``A`` + beta x the ridge objective
  (the reconstruction of F by A D and the lambda-weighted norm of A) and the semantic
  reconstruction of S. Two forms:

  ``"paper"`` (default), the additive form of the paper::

      L = BCE(A, Y) + beta (||F - A D||^2 + lambda ||A||^2) / C + gamma ||S - S_hat||^2 / n

  ``"authors"``, the form of the authors' code, which has no additive semantic term and divides
  the loss by the mean cosine similarity between S and its reconstruction::

      L = (BCE(A, Y) + beta (||F - A D||^2 + lambda ||A||^2) / C) / mean_i cos(S_i, S_hat_i)

  (the data terms are averaged over the images of a batch, the semantic term over the classes;
  the cosine is clamped below at ``min_cosine`` so that the ratio stays defined while the
  decoder is still poor).

- APUS, the Alternately Parameters Update Strategy: in the forward pass the dictionary is held
  fixed and the coefficients are solved in closed form (:meth:`DSDL.coefficients`); in the
  backward pass the loss, differentiated *through* the solve, updates the dictionary (the
  encoder) and the backbone (:func:`apus_step` makes both steps explicit).

Equations D1-D4 are numbered as in notebook 07 (not the paper's numbering).

Reported (ResNet-101, 448 px): VOC 2007 mAP 94.4, VOC 2012 93.2, MS-COCO 81.7.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..model import ModelOutput, _GraphModel, register_model

LOSS_FORMS = ("paper", "authors")


@dataclass
class DSDLConfig:
    """Everything that fixes a DSDL model (stored in every checkpoint)."""

    kind: str = "dsdl"
    backbone: str = "resnet101"
    pretrained: bool = False
    encoder_hidden: int = 1024  # width of the encoder's hidden layer (k -> 1024 -> C)
    negative_slope: float = 0.2  # LeakyReLU in the encoder and the decoder
    # lambda and beta: this tutorial's choice for the built-in dataset (the authors' README gives
    # none). Trained 2 epochs on 480 training images (CPU recipe otherwise), (lambda, beta) =
    # (1, 0.01), (0.01, 0.01) and (0.1, 1) reached 57.6, 57.9 and 56.9 validation mAP (200 images);
    # after the first epoch 39.7, 31.3 and 29.4: the first learns fastest.
    ridge_lambda: float = 1.0  # lambda of the ridge solve and of the coefficient norm
    beta: float = 0.01  # weight of the ridge objective (feature reconstruction + coefficient norm)
    semantic_weight: float = 1.0  # gamma, weight of the semantic reconstruction ("paper" form)
    loss_form: str = "paper"  # paper (additive) | authors (divided by the mean cosine similarity)
    min_cosine: float = 0.05  # lower clamp of the mean cosine ("authors" form)

    def __post_init__(self):
        if self.kind != "dsdl":
            raise ValueError(f"DSDLConfig is for kind 'dsdl', got {self.kind!r}")
        if self.loss_form not in LOSS_FORMS:
            raise ValueError(f"unknown DSDL loss form {self.loss_form!r}; choose one of {LOSS_FORMS}")
        if self.ridge_lambda <= 0:
            raise ValueError(f"ridge_lambda must be positive (it makes D D^T + lambda I invertible), "
                             f"got {self.ridge_lambda}")
        if not 0 < self.min_cosine <= 1:
            raise ValueError(f"min_cosine must lie in (0, 1], got {self.min_cosine}")


@dataclass
class DSDLOutput(ModelOutput):
    """:class:`ModelOutput` (``logits`` are the coefficients A, ``compactness`` is 0) plus what
    DSDL's loss reads."""

    features: torch.Tensor | None = None  # F (B, C): max-pooled image features
    dictionary: torch.Tensor | None = None  # D (n, C): one atom per class
    reconstructed_semantics: torch.Tensor | None = None  # S_hat (n, k)


def ridge_coefficients(features: torch.Tensor, dictionary: torch.Tensor, ridge_lambda: float) -> torch.Tensor:
    """``A = F D^T (D D^T + lambda I)^-1`` (eq. D3) by solving the n x n system (autocast off).

    Row b of the result minimises ``||F_b - a D||^2 + lambda ||a||^2``. Half-precision inputs
    (autocast) are solved in float32, float64 inputs in float64. Gradients flow through the
    solve to both ``features`` and ``dictionary``.
    """
    dtype = torch.promote_types(torch.promote_types(features.dtype, dictionary.dtype), torch.float32)
    with torch.autocast(features.device.type, enabled=False):
        features, dictionary = features.to(dtype), dictionary.to(dtype)
        n = dictionary.shape[0]
        gram = dictionary @ dictionary.t() + ridge_lambda * torch.eye(n, device=dictionary.device, dtype=dtype)
        # gram is symmetric positive definite: A^T = gram^-1 D F^T
        return torch.linalg.solve(gram, dictionary @ features.t()).t()


def ridge_objective(features: torch.Tensor, coefficients: torch.Tensor, dictionary: torch.Tensor,
                    ridge_lambda: float) -> torch.Tensor:
    """``(||F - A D||^2 + lambda ||A||^2) / C``, averaged over the images of the batch."""
    dtype = torch.promote_types(coefficients.dtype, torch.float32)
    features, coefficients, dictionary = features.to(dtype), coefficients.to(dtype), dictionary.to(dtype)
    residual = features - coefficients @ dictionary
    per_image = residual.pow(2).sum(dim=1) + ridge_lambda * coefficients.pow(2).sum(dim=1)
    return per_image.mean() / features.shape[1]


def dsdl_loss(output: DSDLOutput, targets: torch.Tensor, semantics: torch.Tensor,
              config: DSDLConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """``(total, classification term)`` of one batch in the loss form of ``config`` (eq. D4)."""
    logits = output.logits.float()
    classification = F.binary_cross_entropy_with_logits(logits, targets.float())
    data_term = classification + config.beta * ridge_objective(
        output.features, logits, output.dictionary, config.ridge_lambda)
    semantics, reconstructed = semantics.float(), output.reconstructed_semantics.float()
    if config.loss_form == "paper":
        semantic_term = (semantics - reconstructed).pow(2).sum(dim=1).mean()  # per class
        return data_term + config.semantic_weight * semantic_term, classification
    cosine = F.cosine_similarity(semantics, reconstructed, dim=1).mean()
    return data_term / cosine.clamp(min=config.min_cosine), classification


class SemanticDictionary(nn.Module):
    """The auto-encoder between class semantics and the visual dictionary (tied weights)."""

    def __init__(self, semantic_dim: int, hidden: int, visual_dim: int, negative_slope: float = 0.2):
        super().__init__()
        self.w1 = nn.Linear(semantic_dim, hidden, bias=False)
        self.w2 = nn.Linear(hidden, visual_dim, bias=False)
        self.negative_slope = negative_slope

    def encode(self, semantics: torch.Tensor) -> torch.Tensor:
        """``D = LeakyReLU(S W1) W2`` (n x C); eq. D1 of notebook 07."""
        return self.w2(F.leaky_relu(self.w1(semantics), self.negative_slope))

    def decode(self, dictionary: torch.Tensor) -> torch.Tensor:
        """``S_hat = LeakyReLU(D W2^T) W1^T`` (n x k), the encoder's weights transposed; eq. D2."""
        hidden = F.leaky_relu(dictionary @ self.w2.weight, self.negative_slope)
        return hidden @ self.w1.weight


class DSDL(_GraphModel):
    """Backbone + semantic dictionary + closed-form coefficients (the label graph is not used)."""

    def __init__(self, config: DSDLConfig, label_features: torch.Tensor, adjacency: torch.Tensor):
        super().__init__(config, label_features, adjacency)
        self.autoencoder = SemanticDictionary(self.label_features.shape[1], config.encoder_hidden,
                                              self.trunk.channels[4], config.negative_slope)

    def image_features(self, images: torch.Tensor) -> torch.Tensor:
        """F: the last stage, global max pooling (B x C)."""
        return self.trunk(images, (4,))[4].amax(dim=(2, 3))

    def dictionary(self) -> torch.Tensor:
        """D from the class semantics S (n x C)."""
        return self.autoencoder.encode(self.label_features)

    def coefficients(self, features: torch.Tensor, dictionary: torch.Tensor) -> torch.Tensor:
        """APUS, forward step: the coefficients for a fixed dictionary, in closed form."""
        return ridge_coefficients(features, dictionary, self.config.ridge_lambda)

    def forward(self, images: torch.Tensor, details: bool = False) -> DSDLOutput:
        features = self.image_features(images)
        dictionary = self.dictionary()
        coefficients = self.coefficients(features, dictionary)
        return DSDLOutput(coefficients, images.new_zeros(()), features=features, dictionary=dictionary,
                          reconstructed_semantics=self.autoencoder.decode(dictionary))

    def training_loss(self, output: DSDLOutput, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The loss :func:`msrn_core.running.training.train_model` minimises: ``(total, classification)``."""
        return dsdl_loss(output, targets, self.label_features, self.config)


def apus_step(model: DSDL, images: torch.Tensor, targets: torch.Tensor,
              optimizer: torch.optim.Optimizer) -> dict:
    """One alternation of APUS, spelled out (what one step of ``train_model`` does).

    1. forward: the dictionary D is computed and held fixed while the coefficients A are
       solved in closed form;
    2. backward: the loss, differentiated through the solve, updates the encoder (hence the
       dictionary) and the backbone.

    Returns the loss terms and the dictionary before and after the update (detached).
    """
    model.train()
    output = model(images)  # step 1
    total, classification = model.training_loss(output, targets)
    optimizer.zero_grad(set_to_none=True)
    total.backward()  # step 2
    optimizer.step()
    with torch.no_grad():
        dictionary_after = model.dictionary()
    return {
        "loss": float(total.detach()),
        "classification": float(classification.detach()),
        "ridge_objective": float(ridge_objective(output.features, output.logits, output.dictionary,
                                                 model.config.ridge_lambda).detach()),
        "dictionary_before": output.dictionary.detach(),
        "dictionary_after": dictionary_after,
        "coefficients": output.logits.detach(),
    }


register_model("dsdl", DSDL, DSDLConfig)

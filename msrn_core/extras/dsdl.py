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
- Loss (:func:`dsdl_loss`): multi-label classification on ``A`` (BCE, averaged over images and
  classes, as the authors' ``multilabel_soft_margin_loss``) plus beta x a ridge term, plus a
  semantic term. Two forms:

  ``"authors"``, the objective of the authors' released code (``loss.py``), exactly::

      L = (BCE(A, Y) + beta (||F - A D||_F + lambda ||A||_F)) / mean_i cos(S_i, S_hat_i)

  with *plain* (not squared) Frobenius norms taken over the whole batch, and no additive
  semantic term: the semantic reconstruction enters only as the division by the mean cosine
  between the class semantics and their reconstruction. Their run scripts set lambda = 10,
  beta = 1e-4 for VOC 2007 and 2012 and lambda = 0.1, beta = 1e-6 for MS-COCO
  (:data:`AUTHORS_SETTINGS`, :func:`authors_config`). The one addition here: the mean cosine is
  clamped below at ``min_cosine`` (theirs is not clamped), which changes nothing while it is
  above ``min_cosine`` and keeps the ratio's sign when a poor decoder would make it negative.

  ``"additive"`` (default), this repository's form, with the squared norms of the ridge problem
  the forward pass solves (D3)::

      L = BCE(A, Y) + beta (||F - A D||^2 + lambda ||A||^2) / C + gamma ||S - S_hat||^2 / n

  (the ridge term averaged over the images of a batch and divided by the feature width C, the
  semantic reconstruction error averaged over the classes). Its reduction and its gamma-weighted
  semantic term are this repository's choice: neither the authors' code nor a text we could
  check has them. Checkpoints that name it ``"paper"``, its former name, still load
  (``msrn_core.running.checkpoints.RENAMED_CONFIG_VALUES``).

  The two ridge terms differ in scale: on a batch of 16 random non-negative 512-wide features the
  plain norm over the batch came out 50-65 x the squared per-image mean divided by C, so a beta
  tuned for one form does not carry over to the other.

- APUS, the Alternately Parameters Update Strategy: in the forward pass the dictionary is held
  fixed and the coefficients are solved in closed form (:meth:`DSDL.coefficients`); in the
  backward pass the loss, differentiated *through* the solve, updates the dictionary (the
  encoder) and the backbone (:func:`apus_step` makes both steps explicit).

Equations D1-D4 are numbered as in notebook 07 (not the paper's numbering).

The authors' training recipe (their ``demo_*.py`` defaults and run scripts): ResNet-101 with
ImageNet weights, 448 px, batch 32, SGD with momentum 0.9, lr 0.01 (backbone x0.1), weight decay
1e-4, gradient norm clipped at 10. ``docs/dsdl_sdl_fidelity.md`` compares paper, authors' code
and this module term by term.

Reported (ResNet-101, 448 px): VOC 2007 mAP 94.4, VOC 2012 93.2, MS-COCO 81.7.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ..model import LabelGraphModel, ModelOutput, check_output_stride, register_model
from ..objective import own_objective
from ..training_step import training_step

LOSS_FORMS = ("additive", "authors")

# lambda and beta of the authors' run scripts (run_voc2007.sh, run_voc2012.sh, run_coco.sh); their
# demo scripts default to lambda = beta = 0.01. lambda enters the forward solve (D3) as well, so it
# matters at inference, not only in the loss.
AUTHORS_SETTINGS = {
    "voc2007": {"ridge_lambda": 10.0, "beta": 1e-4},
    "voc2012": {"ridge_lambda": 10.0, "beta": 1e-4},
    "coco2014": {"ridge_lambda": 0.1, "beta": 1e-6},
}
AUTHORS_DEMO_DEFAULTS = {"ridge_lambda": 0.01, "beta": 0.01}


@dataclass
class DSDLConfig:
    """Everything that fixes a DSDL model (stored in every checkpoint)."""

    loss_forms: ClassVar[tuple[str, ...]] = LOSS_FORMS  # what loss_form may be (a class constant, no field)

    kind: str = "dsdl"
    backbone: str = "resnet101"
    pretrained: bool = False
    output_stride: int = 32  # 16: layer4 keeps layer3's resolution (msrn_core.model.ResNetTrunk)
    encoder_hidden: int = 1024  # width of the encoder's hidden layer (k -> 1024 -> C)
    negative_slope: float = 0.2  # LeakyReLU in the encoder and the decoder
    # lambda and beta: this repository's choice for the built-in dataset with the "additive" loss
    # (the authors' values for VOC and COCO are in AUTHORS_SETTINGS): trained 2 epochs on 480 training
    # images (CPU recipe otherwise), (lambda, beta) = (1, 0.01), (0.01, 0.01) and (0.1, 1) reached 57.6,
    # 57.9 and 56.9 validation mAP (200 images), and after the first epoch 39.7, 31.3 and 29.4: the first
    # learns fastest. On the full built-in data the comparison is, for each pair (L, B),
    #   python -m msrn_core.running.train --model dsdl --dsdl-lambda L --dsdl-beta B --epochs 2 --out runs/dsdl-L-B
    # (the best validation mAP is printed at the end).
    ridge_lambda: float = 1.0  # lambda of the ridge solve and of the coefficient norm
    beta: float = 0.01  # weight of the ridge term (feature reconstruction + coefficient norm)
    semantic_weight: float = 1.0  # gamma, weight of the semantic reconstruction ("additive" form only)
    loss_form: str = "additive"  # additive (this repository's) | authors (their code's, exactly)
    min_cosine: float = 0.05  # lower clamp of the mean cosine ("authors" form; theirs has none)

    def __post_init__(self):
        if self.kind != "dsdl":
            raise ValueError(f"DSDLConfig is for kind 'dsdl', got {self.kind!r}")
        if self.loss_form not in LOSS_FORMS:
            raise ValueError(f"unknown DSDL loss form {self.loss_form!r}; choose one of {LOSS_FORMS}")
        check_output_stride(self.output_stride)
        if self.ridge_lambda <= 0:
            raise ValueError(f"ridge_lambda must be positive (it makes D D^T + lambda I invertible), "
                             f"got {self.ridge_lambda}")
        if not 0 < self.min_cosine <= 1:
            raise ValueError(f"min_cosine must lie in (0, 1], got {self.min_cosine}")


def authors_config(dataset: str, **overrides) -> DSDLConfig:
    """The authors' DSDL for ``dataset`` (voc2007, voc2012, coco2014): their loss, lambda and beta,
    ResNet-101 with ImageNet weights. ``overrides`` replace any field."""
    if dataset not in AUTHORS_SETTINGS:
        raise ValueError(f"the authors' scripts give lambda and beta for {', '.join(AUTHORS_SETTINGS)}, "
                         f"not {dataset!r}; set ridge_lambda and beta yourself")
    values = dict(backbone="resnet101", pretrained=True, loss_form="authors", **AUTHORS_SETTINGS[dataset])
    values.update(overrides)
    return DSDLConfig(**values)


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
    """``(||F - A D||^2 + lambda ||A||^2) / C``, averaged over the images of the batch.

    The objective the coefficients minimise (D3), image by image; the ridge term of the
    ``"additive"`` loss.
    """
    dtype = torch.promote_types(coefficients.dtype, torch.float32)
    features, coefficients, dictionary = features.to(dtype), coefficients.to(dtype), dictionary.to(dtype)
    residual = features - coefficients @ dictionary
    per_image = residual.pow(2).sum(dim=1) + ridge_lambda * coefficients.pow(2).sum(dim=1)
    return per_image.mean() / features.shape[1]


def authors_ridge_term(features: torch.Tensor, coefficients: torch.Tensor, dictionary: torch.Tensor,
                       ridge_lambda: float) -> torch.Tensor:
    """``||F - A D||_F + lambda ||A||_F`` over the whole batch, norms not squared (the authors' loss.py)."""
    dtype = torch.promote_types(coefficients.dtype, torch.float32)
    features, coefficients, dictionary = features.to(dtype), coefficients.to(dtype), dictionary.to(dtype)
    return torch.linalg.norm(features - coefficients @ dictionary) + ridge_lambda * torch.linalg.norm(coefficients)


def dsdl_loss(output: DSDLOutput, targets: torch.Tensor, semantics: torch.Tensor,
              config: DSDLConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """``(total, classification term)`` of one batch in the loss form of ``config`` (eq. D4)."""
    logits = output.logits.float()
    classification = F.binary_cross_entropy_with_logits(logits, targets.float())
    semantics, reconstructed = semantics.float(), output.reconstructed_semantics.float()
    if config.loss_form == "additive":
        ridge = ridge_objective(output.features, logits, output.dictionary, config.ridge_lambda)
        semantic_term = (semantics - reconstructed).pow(2).sum(dim=1).mean()  # per class
        return classification + config.beta * ridge + config.semantic_weight * semantic_term, classification
    ridge = authors_ridge_term(output.features, logits, output.dictionary, config.ridge_lambda)
    cosine = F.cosine_similarity(semantics, reconstructed, dim=1).mean()
    return (classification + config.beta * ridge) / cosine.clamp(min=config.min_cosine), classification


class SemanticDictionary(nn.Module):
    """The auto-encoder between class semantics and the visual dictionary (tied weights).

    Initialised as any ``nn.Linear`` (uniform in +-1/sqrt(fan-in): 1/sqrt(k) for ``W1``,
    1/sqrt(hidden) for ``W2``); the authors' model uses +-1/sqrt(hidden) and +-1/sqrt(C).
    """

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


class DSDL(LabelGraphModel):
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
        """The loss training minimises (:func:`msrn_core.objective.model_objective`): ``(total, classification)``."""
        return dsdl_loss(output, targets, self.label_features, self.config)


def apus_step(model: DSDL, images: torch.Tensor, targets: torch.Tensor,
              optimizer: torch.optim.Optimizer) -> dict:
    """One alternation of APUS, spelled out: the training step of ``train_model``
    (:func:`msrn_core.training_step.training_step`) without its gradient clipping.

    1. forward: the dictionary D is computed and held fixed while the coefficients A are
       solved in closed form;
    2. backward: the loss, differentiated through the solve, updates the encoder (hence the
       dictionary) and the backbone.

    Returns the loss terms and the dictionary before and after the update (detached).
    """
    model.train()
    # step 1 in the forward pass, step 2 in the backward pass and the optimiser's step
    step = training_step(model, images, targets, own_objective(model.training_loss), optimizer)
    output = step.output
    with torch.no_grad():
        dictionary_after = model.dictionary()
    return {
        "loss": float(step.loss.detach()),
        "classification": float(step.terms["main"].detach()),
        "ridge_objective": float(ridge_objective(output.features, output.logits, output.dictionary,
                                                 model.config.ridge_lambda).detach()),
        "dictionary_before": output.dictionary.detach(),
        "dictionary_after": dictionary_after,
        "coefficients": output.logits.detach(),
    }


register_model("dsdl", DSDL, DSDLConfig)

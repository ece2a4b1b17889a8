"""Class-specific residual attention (CSRA) beside MSRN: attention that is one map per label.

Zhu and Wu, "Residual Attention: A Simple but Effective Method for Multi-Label Recognition",
ICCV 2021 (arXiv 2108.02456; the authors' code: https://github.com/Kevinz-code/CSRA). On the last
conv map x (d x h x w, positions p) and a linear classifier m_c per class, the score of class c at
position p is ``s[c, p] = m_c . x_p``: the class activation map (:func:`msrn_core.model.class_activation_map`).
CSRA's logit of class c adds to the average-pooled score (the plain ResNet's logit) a weighted
sum of the same scores, weighted by a softmax over positions at temperature T:

    base[c]      = (1 / hw) sum_p s[c, p]                          (average pooling)
    attention[c] = sum_p softmax_p(T s[c, :])[p] s[c, p]           (T = inf: max_p s[c, p])
    logit[c]     = base[c] + lambda attention[c]

The paper writes the attention on the features (``a_c = sum_p softmax_p(T s[c, :]) x_p``, then
``m_c . (g + lambda a_c)`` with g the average-pooled feature); by linearity it is the same logit.
Every class gets its own map, so a label cannot borrow another label's attention; and with the
map being the CAM, it points where the CAM points.

Two choices, each a parameter:

- ``normalise`` (``ModelConfig.csra_normalise``, True): the authors' code divides each class's scores by
  its classifier's norm, ``s[c, p] = m_c . x_p / ||m_c||``, which the paper's formula does not.
  We keep it for the trained model: T then acts on a score whose scale does not grow with the
  classifier's weights during training, so a temperature means the same at every step. Per class
  it only rescales the logit, so it leaves each class's ranking of images (its AP) unchanged at
  lambda = 0. The training-free form on a plain model (:func:`csra_on_plain`) may leave it out,
  so that lambda = 0 gives back the plain logits exactly.
- ``bias``: the authors' classifier has none; ours keeps the plain head's bias, added after the
  attention (a constant per class), so that a plain ResNet's classifier is a CSRA classifier as it is.

- :func:`csra_logits`   the formula above on a feature map and a classifier
- :class:`CSRABaseline` model kind ``"csra"``: trunk + 1x1 classifier over the last stage + CSRA
- :func:`csra_on_plain` the training-free form: a trained plain ResNet's own weights, read the CSRA way
"""
from __future__ import annotations

import math
from dataclasses import replace

import torch

from .model import ModelConfig, ModelOutput, PlainBaseline, register_model


def csra_logits(features: torch.Tensor, classifier_weight: torch.Tensor, bias: torch.Tensor | None = None,
                temperature: float = 1.0, lam: float = 0.1, normalise: bool = True):
    """CSRA's logits (B x n) and per-class score maps (B x n x h x w) from a feature map.

    ``features``: x, B x d x h x w; ``classifier_weight``: m, n x d; ``bias``: n or None (added
    to the logits). ``temperature`` T > 0, ``math.inf`` for max pooling; ``lam``: lambda >= 0.
    ``normalise`` divides class c's scores by ``||m_c||`` (the authors' code). See the module
    docstring for the formula.
    """
    if features.ndim != 4 or classifier_weight.ndim != 2 or classifier_weight.shape[1] != features.shape[1]:
        raise ValueError(f"csra_logits needs features B x d x h x w and a classifier n x d, got "
                         f"{tuple(features.shape)} and {tuple(classifier_weight.shape)}")
    if not temperature > 0 or lam < 0:
        raise ValueError(f"csra_logits needs temperature > 0 (math.inf: max pooling) and lam >= 0, "
                         f"got {temperature!r} and {lam!r}")
    weight = classifier_weight.to(features.dtype)
    scores = torch.einsum("bdhw,nd->bnhw", features, weight)  # s[c, p] = m_c . x_p, the CAM
    if normalise:
        scores = scores / weight.norm(dim=1)[:, None, None]
    flat = scores.flatten(2)  # B x n x hw
    base = flat.mean(dim=-1)
    if math.isinf(temperature):
        attention = flat.amax(dim=-1)
    else:
        attention = (torch.softmax(temperature * flat.float(), dim=-1) * flat.float()).sum(dim=-1).to(flat.dtype)
    logits = base + lam * attention
    if bias is not None:
        logits = logits + bias.to(logits.dtype)
    return logits, scores


class CSRABaseline(PlainBaseline):
    """A ResNet with a CSRA head (model kind ``"csra"``): a 1x1 classifier over the last stage,
    read by :func:`csra_logits` with ``ModelConfig.csra_temperature``, ``csra_lambda`` and
    ``csra_normalise``. Its weights are a plain ResNet's (the same names), so a plain checkpoint loads.

    With ``details=True`` it returns its per-class score maps as ``details["class_activation_map"]``
    (B x n x h x w on the layer4 map; divided by the classifier norms when normalised), which the
    pointing game, the attention figures and the prediction command line read as a CAM.
    """

    def forward(self, images: torch.Tensor, details: bool = False) -> ModelOutput:
        features = self.trunk(images, (4,))[4]
        config = self.config
        logits, scores = csra_logits(features, self.classifier.weight, self.classifier.bias,
                                     config.csra_temperature, config.csra_lambda, config.csra_normalise)
        result = ModelOutput(logits, images.new_zeros(()))
        if details:
            result.details = {"class_activation_map": scores.detach(), "branch_stages": [4]}
        return result


def csra_on_plain(plain_model: PlainBaseline, temperature: float = 1.0, lam: float = 0.1,
                  normalise: bool = False) -> CSRABaseline:
    """The training-free form: a trained plain ResNet's own trunk and classifier, read the CSRA way.

    Returns a :class:`CSRABaseline` holding copies of ``plain_model``'s weights (the plain model
    is left as it is). With ``normalise=False`` (the default here) and ``lam=0`` its logits are
    the plain model's exactly; a positive ``lam`` adds the residual attention term on top.
    """
    if getattr(getattr(plain_model, "config", None), "kind", None) != "plain":
        raise TypeError(f"csra_on_plain needs a trained plain ResNet (kind 'plain'), got {type(plain_model).__name__}")
    config = replace(plain_model.config, kind="csra", pretrained=False, csra_temperature=temperature, csra_lambda=lam,
                     csra_normalise=normalise)
    model = CSRABaseline(config, plain_model.label_features, plain_model.adjacency)
    model.load_state_dict(plain_model.state_dict())
    return model.to(plain_model.label_features.device).train(plain_model.training)


register_model("csra", CSRABaseline, ModelConfig)

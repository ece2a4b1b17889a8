"""One training step: what the training loop, the gradient-norm diagnostic and APUS all run.

forward under autocast -> the objective (:mod:`msrn_core.objective`) -> backward through the
gradient scaler -> gradients clipped *after* backward, at their true scale (the authors' code
clips before it, which does nothing) -> the optimiser's step.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from .objective import LossFunction, main_term


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite; the message says where and what to try."""


def autocast(device: torch.device, dtype: torch.dtype | None):
    """Autocast to ``dtype`` (``running.precision.autocast_dtype``) on ``device``; full precision when it is None."""
    return torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None)


@dataclass
class Step:
    output: object  # the model's output (ModelOutput)
    loss: torch.Tensor  # the total loss
    terms: dict[str, torch.Tensor]  # its terms, the main one first
    gradient_norm: torch.Tensor | None  # the gradient's norm before clipping (None: not clipped)


def training_step(network: torch.nn.Module, images: torch.Tensor, targets: torch.Tensor, loss: LossFunction,
                  optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler | None = None,
                  clip_grad_norm: float | None = None, dtype: torch.dtype | None = None,
                  before_backward: Callable[[dict], None] | None = None) -> Step:
    """One optimiser step of ``network`` on a batch; ``loss(output, targets) -> (total, terms)``.

    ``scaler``: a GradScaler, enabled for fp16 only (a disabled one, or None, passes through);
    ``clip_grad_norm``: the norm the whole gradient is clipped to (None: no clipping); ``dtype``:
    the autocast dtype (None: full precision); ``before_backward(terms)`` looks at the terms
    before the step's own backward pass. A NaN or infinite loss raises NonFiniteLossError
    before any weight changes.
    """
    with autocast(images.device, dtype):
        output = network(images)
    total, terms = loss(output, targets)
    if not torch.isfinite(total):
        raise NonFiniteLossError(f"the loss became {total.item()} (main term {main_term(terms).item():.4g})")
    if before_backward is not None:
        before_backward(terms)
    scaler = scaler or torch.amp.GradScaler("cuda", enabled=False)  # a disabled scaler passes through
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(total).backward()
    norm = None
    if clip_grad_norm is not None:
        scaler.unscale_(optimizer)  # clip the true gradient, not the scaled one
        norm = torch.nn.utils.clip_grad_norm_(network.parameters(), clip_grad_norm)
    scaler.step(optimizer)  # skipped by the scaler when an fp16 gradient overflowed
    scaler.update()
    return Step(output, total, terms, norm)

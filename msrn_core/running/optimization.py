"""The optimiser and the learning-rate schedule (paper section 4.1; the CPU recipe's cosine).

SGD with two parameter groups (the split is the authors' code's): the backbone at 0.1 x the
learning rate of the new layers; step decay x0.1 every ``lr_step`` epochs (``schedule="step"``),
or a cosine decay per step after a linear warm-up (``schedule="cosine"``, what the CPU recipe uses).
"""
from __future__ import annotations

import math

import torch

SCHEDULES = ("step", "cosine")


def make_sgd(params, lr: float, momentum: float, weight_decay: float) -> torch.optim.SGD:
    """SGD with momentum and weight decay, through PyTorch's fused kernel where it has one.

    The fused kernel updates each parameter in one pass; the plain loop allocates a temporary
    for the weight decay and makes three more passes, which on the CPU costs MSRN's training
    step (fc1 alone holds 75 M weights) about 0.4 s against 0.05 s
    (``python benchmarks/suite.py train``). Torch versions or devices without a fused SGD
    (before torch 2.2 on CUDA, 2.4 on the CPU) get the plain loop.
    """
    params = list(params)
    options = dict(lr=lr, momentum=momentum, weight_decay=weight_decay)
    try:
        return torch.optim.SGD(params, fused=True, **options)
    except (RuntimeError, TypeError, ValueError):  # no fused SGD for this torch or device
        return torch.optim.SGD(params, **options)


def make_optimizer(model, config) -> torch.optim.SGD:
    """:func:`make_sgd` over ``model``'s parameter groups, with ``config``'s (a TrainConfig) settings."""
    return make_sgd(model.parameter_groups(config.lr, config.backbone_lr_mult),
                    lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)


def make_scheduler(optimizer: torch.optim.Optimizer, config, steps_per_epoch: int):
    """The learning-rate schedule of ``config`` (a TrainConfig); ``step()`` is called after every
    optimiser step for ``"cosine"`` and after every epoch for ``"step"``."""
    if config.schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {config.schedule!r}; choose one of {SCHEDULES}")
    if config.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=config.lr_step, gamma=config.lr_gamma)
    total = max(1, config.epochs * steps_per_epoch)
    warmup = int(round(config.warmup_epochs * steps_per_epoch))

    def factor(step: int) -> float:  # linear warm-up to 1, then a half cosine down to 0
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return 0.5 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def keep_kernel_choice(optimizer: torch.optim.Optimizer, state: dict) -> None:
    """Load ``state`` but keep this optimiser's fused/foreach choice (the checkpoint may come
    from another torch or device)."""
    kernels = [{key: group.get(key) for key in ("fused", "foreach")} for group in optimizer.param_groups]
    optimizer.load_state_dict(state)
    for group, kernel in zip(optimizer.param_groups, kernels):
        group.update(kernel)


def apply_new_hyperparameters(optimizer: torch.optim.Optimizer, scheduler, asked_groups: list[dict]) -> None:
    """Give a resumed optimiser this command's lr, momentum and weight decay.

    The schedule continues: each group's lr is the new initial lr times the factor the schedule
    had reached (current lr / initial lr of the checkpoint).
    """
    for group, asked in zip(optimizer.param_groups, asked_groups):
        factor = group["lr"] / group["initial_lr"] if group.get("initial_lr") else 1.0
        group["initial_lr"], group["lr"] = asked["lr"], asked["lr"] * factor
        group["momentum"], group["weight_decay"] = asked["momentum"], asked["weight_decay"]
    scheduler.base_lrs = [asked["lr"] for asked in asked_groups]
    scheduler._last_lr = [group["lr"] for group in optimizer.param_groups]

"""Training and evaluation: one loop for the CLI, the main job and the notebooks.

- SGD with two parameter groups (paper section 4.1; the split is the authors' code's): the
  backbone at 0.1 x the learning rate of the new layers; step decay x0.1 every ``lr_step`` epochs
  (``schedule="step"``), or a cosine decay per step after a linear warm-up (``schedule="cosine"``,
  what the CPU recipe uses).
- Loss: BCE-with-logits (paper eq. 1, averaged over labels and images) + lambda x the
  compactness loss (eq. 6, in the model's ``compactness_form``; lambda defaults to that form's).
- Optional bf16 autocast on CPUs with native bf16 (AVX-512 BF16 or AMX) and channels_last
  images, both measured in ``benchmarks/README.md``.
- Gradient clipping *after* backward (the authors' code clips before it, which does nothing).
- Automatic mixed precision on CUDA (bf16 where supported, else fp16 with a gradient scaler).
- Model selection on the validation split; the test split is only ever evaluated.
- ``last.pt`` (everything needed to resume exactly) and ``best.pt`` (best validation mAP),
  both written atomically after every epoch.
- Multi-GPU: under ``torchrun`` the same function trains with DistributedDataParallel; the
  batch size is then the global batch (see :mod:`msrn_core.running.distributed`).
"""
from __future__ import annotations

import math
import random
import time
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, RandomSampler, Sampler, Subset

from . import distributed
from .checkpoints import (check_signature, load_model_state, read_checkpoint, save_checkpoint,
                          transform_image_size)
from ..data.dataset import (SeededAugmentation, collate_skip_unreadable, report_unreadable,
                            warnings_above_progress_bars)
from ..layers import COMPACTNESS_FORMS
from ..metrics import compute_all_metrics, mean_average_precision
from ..utils import (atomic_write_json, check_writable_folder, display_path, get_device,
                     remove_orphan_temporaries)
from .guards import (DivergenceMonitor, ModelSelectionError, ResumeConflictError, check_validation_split,
                     no_selection_message, non_finite_message, resume_changes, resume_conflict_message)
from .progress import progress_bar
from .run_lock import holding_run_folder

RUN_FILES = ("last.pt", "best.pt", "history.json", "test_metrics.json")  # what a run folder holds


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite; the message says where and what to try."""


@dataclass
class TrainConfig:
    epochs: int = 90
    batch_size: int = 8  # images per optimiser step, summed over processes in a multi-GPU run
    lr: float = 0.01  # new layers; the backbone gets lr * backbone_lr_mult
    backbone_lr_mult: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    lr_step: int = 30  # decay the learning rate x lr_gamma every lr_step epochs
    lr_gamma: float = 0.1
    schedule: str = "step"  # step (x lr_gamma every lr_step epochs) | cosine (per step, after warm-up)
    warmup_epochs: float = 0.0  # cosine: linear warm-up from 0 over this many epochs
    compactness_weight: float | None = None  # lambda; None: the model's compactness form's own (paper 4.1: 1e-3)
    group_link_weight: float = 0.0  # Diffpool's link-prediction loss (model.group_link_loss); 0: the paper
    clip_grad_norm: float = 10.0
    amp: str = "auto"  # auto (CUDA: on; CPU: off) | bf16 (CUDA, or a CPU with native bf16) | fp16 | off
    channels_last: bool = False  # NHWC images and weights (faster convolutions on the CPU)
    num_workers: int = 2
    seed: int = 0
    device: str = "auto"
    max_steps_per_epoch: int | None = None  # a cap for smoke runs
    progress: bool = True
    sync_batchnorm: bool = True  # multi-GPU CUDA runs: BatchNorm statistics over the global batch


@dataclass
class TrainResult:
    history: list[dict]
    best_path: Path
    last_path: Path
    best_epoch: int
    best_val_map: float
    skipped_images: int = 0
    seconds: float = 0.0
    resumed_from_epoch: int | None = None
    extra: dict = field(default_factory=dict)


AMP_MODES = ("auto", "bf16", "fp16", "off")  # TrainConfig.amp and the CLIs' --amp
SCHEDULES = ("step", "cosine")


def cpu_has_native_bf16() -> bool:
    """True when this CPU computes bf16 natively (AVX-512 BF16 or AMX) and oneDNN is available.

    Without those instructions bf16 is emulated and slower than fp32, so ``amp="bf16"`` on such a
    CPU runs in fp32 instead.
    """
    if not torch.backends.mkldnn.is_available():
        return False
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:  # not Linux: ask torch's own CPU capability check
        return bool(getattr(torch.backends.mkldnn, "is_bf16_supported", lambda: False)())
    return "avx512_bf16" in flags or "amx_bf16" in flags


def autocast_dtype(device: torch.device, amp: str) -> torch.dtype | None:
    """The autocast dtype for ``amp`` on ``device`` (``None``: full precision).

    On the CPU only ``amp="bf16"`` autocasts, and only where :func:`cpu_has_native_bf16`.
    """
    if device.type == "cpu":
        return torch.bfloat16 if amp == "bf16" and cpu_has_native_bf16() else None
    if amp == "off" or device.type != "cuda":
        return None
    if amp == "fp16":
        return torch.float16
    if amp == "bf16" or torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float16


def autocast(device: torch.device, dtype: torch.dtype | None):
    """Autocast to ``dtype`` (from :func:`autocast_dtype`) on ``device``; full precision when it is None."""
    return torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None)


def optimizer_step(loss: torch.Tensor, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                   scaler: torch.amp.GradScaler, clip_grad_norm: float) -> None:
    """Backward and one optimiser step: gradients clipped *after* backward (the authors' code clips
    before it, which does nothing), at their true scale; ``scaler`` is a GradScaler, enabled for
    fp16 only (a disabled one passes through)."""
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
    torch.nn.utils.clip_grad_norm_(model.parameters(), clip_grad_norm)
    scaler.step(optimizer)
    scaler.update()


def make_loader(dataset, batch_size: int, shuffle: bool, num_workers: int, device: torch.device,
                generator: torch.Generator | None = None, sampler: Sampler | None = None,
                worker_init_fn=None) -> DataLoader:
    if sampler is None and shuffle:
        sampler = RandomSampler(dataset, generator=generator)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        shuffle=False,
        num_workers=num_workers,
        collate_fn=collate_skip_unreadable,
        pin_memory=device.type == "cuda",
        persistent_workers=False,
        generator=generator,
        worker_init_fn=worker_init_fn,
    )


def stop_loader_workers(batches) -> None:
    """Shut down the worker processes of a DataLoader iterator left before its end.

    A ``max_steps_per_epoch`` cap leaves the epoch's iterator with live workers; collected later,
    possibly inside a process forked meanwhile (the validation loader's workers), it fails with
    "AssertionError: can only test a child process". Stopped here, in the process that owns them.
    """
    shutdown = getattr(batches, "_shutdown_workers", None)
    if shutdown is not None:
        shutdown()


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


def _keep_kernel_choice(optimizer: torch.optim.Optimizer, state: dict) -> None:
    """Load ``state`` but keep this optimiser's fused/foreach choice (the checkpoint may come
    from another torch or device)."""
    kernels = [{key: group.get(key) for key in ("fused", "foreach")} for group in optimizer.param_groups]
    optimizer.load_state_dict(state)
    for group, kernel in zip(optimizer.param_groups, kernels):
        group.update(kernel)


def compactness_lambda(model, compactness_weight: float | None) -> float:
    """lambda: ``compactness_weight``, or (None) the weight of the model's compactness form."""
    if compactness_weight is not None:
        return compactness_weight
    form = getattr(getattr(getattr(model, "module", model), "config", None), "compactness_form", "paper")
    return COMPACTNESS_FORMS[form]


def loss_terms(output, targets: torch.Tensor, compactness_weight: float | None,
               model: torch.nn.Module | None = None,
               group_link_weight: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """``(total, main term)`` of one batch.

    MSRN and its baselines: BCE-with-logits (eq. 1) + lambda * compactness (eq. 6); lambda is
    ``compactness_weight``, or with None the weight of the model's compactness form; plus
    ``group_link_weight`` * Diffpool's link-prediction loss (``output.group_link``). A model
    with a loss of its own (DSDL, SDL) defines ``training_loss(output, targets)`` returning
    ``(total, main term)``, and that is used instead.
    """
    own_loss = getattr(getattr(model, "module", model), "training_loss", None)
    if own_loss is not None:
        return own_loss(output, targets)
    bce = F.binary_cross_entropy_with_logits(output.logits.float(), targets)
    total = bce + compactness_lambda(model, compactness_weight) * output.compactness.float()
    if group_link_weight and output.group_link is not None:
        total = total + group_link_weight * output.group_link.float()
    return total, bce


def make_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig, steps_per_epoch: int):
    """The learning-rate schedule; ``step()`` is called after every optimiser step for
    ``"cosine"`` and after every epoch for ``"step"`` (see :func:`steps_scheduler`)."""
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


def steps_per_epoch(train_set, config: TrainConfig) -> int:
    """Optimiser steps in one epoch (the global batch over the whole split, capped for smoke runs)."""
    steps = math.ceil(len(train_set) / config.batch_size)
    return steps if config.max_steps_per_epoch is None else min(steps, config.max_steps_per_epoch)


def _rng_state() -> dict:
    """Every random state, as tensors and plain values (checkpoints load with weights_only=True)."""
    kind, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    numpy_state = (kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, cached_gaussian)
    state = {"python": random.getstate(), "numpy": numpy_state, "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    kind, keys, *rest = state["numpy"]  # keys: a tensor (or an array in older checkpoints)
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), *rest))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@torch.no_grad()
def predict(model, dataset, batch_size: int = 32, device: str | torch.device = "auto",
            num_workers: int = 0, amp: str = "auto", progress: bool = False, desc: str = "predict",
            reported: set | None = None):
    """Scores (logits) for every readable image of ``dataset``.

    Returns ``(logits, targets, indices, skipped)`` as NumPy arrays (``skipped``: int). In a
    multi-process run each process predicts every N-th image (``batch_size`` per process) and
    every process returns the predictions of the whole dataset, ordered by image index.
    Unreadable images are warned about once per file (``reported``: the files already named).
    """
    device = get_device(device) if not isinstance(device, torch.device) else device
    model = model.to(device).eval()
    dtype = autocast_dtype(device, amp)
    processes = distributed.context()
    shard = Subset(dataset, distributed.shard_indices(len(dataset))) if processes.enabled else dataset
    loader = make_loader(shard, batch_size, False, num_workers, device)
    logits, targets, indices, skipped = [], [], [], 0
    reported = set() if reported is None else reported
    with warnings_above_progress_bars():
        for batch in progress_bar(loader, desc=desc, disable=not progress or not processes.is_main, leave=False):
            skipped += batch.skipped
            report_unreadable(batch, reported)
            if batch.images.numel() == 0:
                continue
            with autocast(device, dtype):
                output = model(batch.images.to(device, non_blocking=True))
            logits.append(output.logits.float().cpu())
            targets.append(batch.targets)
            indices.append(batch.indices)
    n = len(dataset.class_names)
    if not logits:
        logits, targets, indices = [torch.zeros(0, n)], [torch.zeros(0, n)], [torch.zeros(0, dtype=torch.long)]
    logits, targets, indices = torch.cat(logits), torch.cat(targets), torch.cat(indices)
    if processes.enabled:
        logits, targets, indices = (distributed.gather_rows(t) for t in (logits, targets, indices))
        order = torch.argsort(indices)
        logits, targets, indices = logits[order], targets[order], indices[order]
        skipped = int(distributed.sum_over_processes(skipped))
    return logits.numpy(), targets.numpy(), indices.numpy(), skipped


def evaluate(model, dataset, batch_size: int = 32, device="auto", num_workers: int = 0,
             json_path: str | Path | None = None, progress: bool = False, amp: str = "auto") -> dict:
    """All metrics of the field on ``dataset`` (:mod:`msrn_core.metrics`, notebook 06); optionally written to JSON."""
    logits, targets, indices, skipped = predict(
        model, dataset, batch_size, device, num_workers, amp=amp, progress=progress, desc="evaluate")
    metrics = metrics_of_predictions(dataset, logits, targets, indices, skipped)
    if json_path is not None and distributed.context().is_main:
        atomic_write_json(json_path, metrics)
    return metrics


def metrics_of_predictions(dataset, logits, targets, indices, skipped: int = 0) -> dict:
    """What :func:`evaluate` returns, from :func:`predict`'s outputs on ``dataset``: a notebook that
    needs the scores too (precision-recall curves) runs the model over the split once."""
    difficult = None if getattr(dataset, "difficult", None) is None else dataset.difficult[indices]
    metrics = compute_all_metrics(logits, targets, difficult=difficult,
                                  class_names=dataset.class_names, from_logits=True)
    metrics["num_images"] = int(len(indices))
    metrics["skipped_images"] = int(skipped)
    return metrics


def _restore_rng_states(checkpoint: dict, processes: distributed.ProcessContext) -> None:
    """Each process's random state from ``checkpoint`` (exact when the process count is the same)."""
    states = checkpoint.get("rng_by_rank", [checkpoint["rng"]])
    if len(states) == processes.world_size:
        _set_rng_state(states[processes.rank])
    else:  # another number of processes: continue from rank 0's streams, offset per process
        _set_rng_state(checkpoint["rng"])
        distributed.offset_random_streams(processes.rank)


def _loader_and_network(model, train_set, val_set, config: TrainConfig, device: torch.device,
                        generator: torch.Generator, processes: distributed.ProcessContext):
    """The training loader and the module to call: ``model`` itself, or DDP around it.

    In a multi-process run each process loads its share of every global batch, and DDP is told
    to look for unused parameters only when a probe finds some (it costs time every step).
    """
    train_set = SeededAugmentation(train_set, config.seed)  # the same augmentation in any process
    if not processes.enabled:
        return make_loader(train_set, config.batch_size, True, config.num_workers, device, generator), model
    sampler = distributed.ShardedRandomSampler(len(train_set), processes.rank, processes.world_size, generator)
    loader = make_loader(train_set, distributed.per_process_batch_size(config.batch_size, processes.world_size),
                         True, config.num_workers, device, generator, sampler=sampler,
                         worker_init_fn=partial(distributed.seed_worker_for_rank, rank=processes.rank))
    # the probe uses a validation image: its transform draws no random numbers
    image = next((item[0] for item in map(val_set.__getitem__, range(len(val_set))) if isinstance(item, tuple)),
                 None)
    if image is None:
        raise ModelSelectionError(no_selection_message(val_set, 0, len(val_set)))
    example = torch.zeros((2, *image.shape), device=device)
    targets = torch.zeros((2, len(train_set.class_names)), device=device)
    unused = distributed.parameters_without_gradient(
        model, lambda output: loss_terms(output, targets, config.compactness_weight, model,
                                         config.group_link_weight)[0], example)
    return loader, distributed.wrap_model(model, device, bool(unused), config.sync_batchnorm)


@holding_run_folder("run_dir")  # one run per folder: a second one stops at once
def train_model(model, train_set, val_set, config: TrainConfig, run_dir: str | Path,
                resume: bool = True) -> TrainResult:
    """Train ``model`` on ``train_set``, select the best epoch on ``val_set``.

    With ``resume`` and a ``last.pt`` in ``run_dir``, training continues exactly where that
    checkpoint stopped (same weights, optimiser, schedule, scaler and random streams).
    """
    run_dir = Path(run_dir)
    last_path, best_path = run_dir / "last.pt", run_dir / "best.pt"
    class_names = list(train_set.class_names)
    if list(val_set.class_names) != class_names:
        raise ValueError("the training and validation splits have different class lists")
    check_validation_split(val_set)
    processes = distributed.context()
    _prepare_run_folder(run_dir, processes)
    device = distributed.process_device(get_device(config.device))
    model.to(device)
    memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
    if config.channels_last:
        model.to(memory_format=torch.channels_last)

    optimizer = make_sgd(model.parameter_groups(config.lr, config.backbone_lr_mult),
                         lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    asked_groups = [dict(group) for group in optimizer.param_groups]  # this command's lr, momentum ...
    scheduler = make_scheduler(optimizer, config, steps_per_epoch(train_set, config))
    dtype = autocast_dtype(device, config.amp)
    scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)
    generator = torch.Generator().manual_seed(config.seed)

    history: list[dict] = []
    start_epoch, best_map, best_epoch, resumed_from = 0, -math.inf, -1, None
    if resume and last_path.exists():
        # RNG and generator states must stay on the CPU; load_state_dict moves the rest
        checkpoint = read_checkpoint(last_path, map_location="cpu")
        check_signature(checkpoint, model, class_names, last_path)
        applied, refused = resume_changes(checkpoint.get("train_config", {}), config)
        if refused:
            raise ResumeConflictError(resume_conflict_message(last_path, refused))
        model.load_state_dict(checkpoint["model"])
        _keep_kernel_choice(optimizer, checkpoint["optimizer"])
        scheduler.load_state_dict(checkpoint["scheduler"])
        if applied:
            _apply_new_hyperparameters(optimizer, scheduler, asked_groups)
        scaler.load_state_dict(checkpoint["scaler"])
        generator.set_state(checkpoint["sampler_generator"])
        _restore_rng_states(checkpoint, processes)
        history = checkpoint["history"]
        start_epoch = checkpoint["epoch"] + 1
        best_map, best_epoch = checkpoint["best_val_map"], checkpoint["best_epoch"]
        resumed_from = checkpoint["epoch"]
        if processes.is_main:
            print(f"resuming from {display_path(last_path)} after epoch {resumed_from + 1}")
            if applied:
                print("  changed since the checkpoint, applied from now on: " + "; ".join(applied))
            if start_epoch >= config.epochs:
                print(f"  the run already has {start_epoch} epochs (asked: {config.epochs}): nothing left to train")
    else:
        distributed.offset_random_streams(processes.rank)  # each process augments differently

    # the evaluation input size, so that predict rebuilds the preprocessing from the checkpoint alone
    image_size = transform_image_size(getattr(val_set, "transform", None))
    input_size = {"image_size": image_size} if image_size is not None else {}
    loader, network = _loader_and_network(model, train_set, val_set, config, device, generator, processes)
    skipped_total = sum(h.get("skipped_images", 0) for h in history)
    seconds_before = history[-1].get("seconds", 0.0) if history else 0.0  # history's seconds span resumes
    monitor, reported = DivergenceMonitor(config.lr), set()
    mixed_precision = dtype is not None
    started = time.perf_counter()
    for epoch in range(start_epoch, config.epochs):
        model.train()
        loader.dataset.set_epoch(epoch)
        losses, bces, skipped = [], [], 0
        steps = len(loader) if config.max_steps_per_epoch is None else min(len(loader), config.max_steps_per_epoch)
        batches = iter(loader)
        bar = progress_bar(batches, total=steps, desc=f"epoch {epoch + 1}/{config.epochs}",
                           disable=not config.progress or not processes.is_main, leave=False)
        for step, batch in enumerate(_above_bar(bar)):
            if step >= steps:
                break
            skipped += batch.skipped
            report_unreadable(batch, reported)
            if distributed.any_process(batch.images.numel() == 0):  # every process skips the step
                continue
            images = batch.images.to(device, non_blocking=True).contiguous(memory_format=memory_format)
            targets = batch.targets.to(device, non_blocking=True)
            with autocast(device, dtype):
                output = network(images)
            loss, bce = loss_terms(output, targets, config.compactness_weight, model, config.group_link_weight)
            if not torch.isfinite(loss):
                raise NonFiniteLossError(non_finite_message(
                    f"the loss became {loss.item()} (BCE {bce.item():.4g})", epoch + 1, step + 1, config.lr,
                    mixed_precision, last_path))
            optimizer_step(loss, model, optimizer, scaler, config.clip_grad_norm)
            if config.schedule == "cosine":
                scheduler.step()
            losses.append(loss.item())
            monitor.observe(losses[-1], epoch + 1, step + 1)
            bces.append(bce.item())
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.4f}", lr=f"{optimizer.param_groups[-1]['lr']:.2g}")
        bar.close()
        stop_loader_workers(batches)
        if config.schedule == "step":
            scheduler.step()

        val_logits, val_targets, val_indices, val_skipped = predict(
            model, val_set, batch_size=max(config.batch_size, 16), device=device, num_workers=config.num_workers,
            amp=config.amp, reported=reported)
        if not np.isfinite(val_logits).all():
            raise NonFiniteLossError(non_finite_message(
                "the validation scores became non-finite (NaN or infinite)", epoch + 1, None, config.lr,
                mixed_precision, last_path))
        difficult = None if getattr(val_set, "difficult", None) is None else val_set.difficult[val_indices]
        val_map = mean_average_precision(val_logits, val_targets, difficult)
        if not math.isfinite(val_map) and not math.isfinite(best_map):
            raise ModelSelectionError(no_selection_message(val_set, len(val_indices), val_skipped))
        skipped = int(distributed.sum_over_processes(skipped))
        record = {
            "epoch": epoch + 1,
            "train_loss": distributed.mean_over_processes(float(np.mean(losses)) if losses else float("nan")),
            "train_bce": distributed.mean_over_processes(float(np.mean(bces)) if bces else float("nan")),
            "val_mAP": float(val_map),
            "lr": optimizer.param_groups[-1]["lr"],
            "skipped_images": skipped + val_skipped,
            "seconds": seconds_before + time.perf_counter() - started,
        }
        history.append(record)
        skipped_total += skipped + val_skipped
        if config.progress and processes.is_main:
            print(f"epoch {epoch + 1}/{config.epochs}: loss {record['train_loss']:.4f}  "
                  f"val mAP {100 * val_map:.2f}" + (f"  skipped {skipped + val_skipped} unreadable images"
                                                    if skipped + val_skipped else ""))
        improved = val_map > best_map
        if improved:
            best_map, best_epoch = float(val_map), epoch
        rng_states = distributed.gather_objects(_rng_state())
        if processes.is_main:  # one writer; the others wait at the barrier below
            if improved:
                save_checkpoint(best_path, model, class_names, epoch=epoch, val_mAP=float(val_map),
                                train_config=asdict(config), **input_size)
            save_checkpoint(
                last_path, model, class_names,
                optimizer=optimizer.state_dict(), scheduler=scheduler.state_dict(), scaler=scaler.state_dict(),
                sampler_generator=generator.get_state(), rng=rng_states[0], epoch=epoch, history=history,
                best_val_map=best_map, best_epoch=best_epoch, train_config=asdict(config), **input_size,
                **({"rng_by_rank": rng_states} if processes.enabled else {}),
            )
            atomic_write_json(run_dir / "history.json", history)
        distributed.barrier()

    distributed.unwrap_model(network)
    if skipped_total and processes.is_main:
        print(f"note: {skipped_total} unreadable images were skipped in total (see the warnings above)")
    return TrainResult(history, best_path, last_path, best_epoch + 1, best_map, skipped_total,
                       time.perf_counter() - started, resumed_from)


def _gradient_norm(parameters) -> float:
    norms = [p.grad.detach().float().norm() for p in parameters if p.grad is not None]
    return float(torch.linalg.vector_norm(torch.stack(norms))) if norms else 0.0


def loss_gradient_norms(model, train_set, config: TrainConfig, steps: int = 20) -> dict:
    """The gradient norms of the BCE and of the weighted compactness term, separately, over the
    first ``steps`` training steps of ``config`` (for the "before / after" figure of notebook 05).

    Trains a copy of ``model`` (``model`` itself is left as it is) exactly as :func:`train_model`
    would for those steps, and before each optimiser step measures the global L2 norm of the
    gradient of ``bce`` alone, of ``lambda * compactness`` alone and of the weighted Diffpool
    link-prediction term alone (``config.group_link_weight``; 0 when off).
    Returns per-step lists: ``bce``, ``compactness``, ``group_link`` (the weighted terms'
    gradient norms), ``total``, ``clip_scale`` (the factor clip-norm ``config.clip_grad_norm``
    multiplied the whole gradient by: 1 when not clipped), ``bce_value``, ``compactness_value``
    and ``group_link_value`` (the weighted terms), plus ``compactness_weight`` (lambda) and ``form``.
    """
    import copy

    device = get_device(config.device)
    model = copy.deepcopy(model).to(device).train()
    weight = compactness_lambda(model, config.compactness_weight)
    optimizer = make_sgd(model.parameter_groups(config.lr, config.backbone_lr_mult),
                         lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    scheduler = make_scheduler(optimizer, config, steps_per_epoch(train_set, config))
    dtype = autocast_dtype(device, config.amp)
    loader = make_loader(train_set, config.batch_size, True, 0, device,
                         torch.Generator().manual_seed(config.seed))
    parameters = [p for p in model.parameters() if p.requires_grad]
    record = {key: [] for key in ("bce", "compactness", "group_link", "total", "clip_scale", "bce_value",
                                  "compactness_value", "group_link_value")}
    batches = iter(loader)
    for _ in range(steps):
        batch = next(batches, None)
        if batch is None:
            batches = iter(loader)
            batch = next(batches)
        targets = batch.targets.to(device)
        with autocast(device, dtype):
            output = model(batch.images.to(device))
        bce = F.binary_cross_entropy_with_logits(output.logits.float(), targets)
        compactness = weight * output.compactness.float()
        link = (config.group_link_weight * output.group_link.float() if output.group_link is not None
                else compactness.new_zeros(()))
        for name, term in (("compactness", compactness), ("group_link", link), ("bce", bce)):
            optimizer.zero_grad(set_to_none=True)
            if term.requires_grad:
                term.backward(retain_graph=True)
            record[name].append(_gradient_norm(parameters) if term.requires_grad else 0.0)
        optimizer.zero_grad(set_to_none=True)
        (bce + compactness + link).backward()
        total = torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip_grad_norm)
        record["total"].append(float(total))
        record["clip_scale"].append(min(1.0, config.clip_grad_norm / (float(total) + 1e-6)))
        record["bce_value"].append(float(bce.detach()))
        record["compactness_value"].append(float(compactness.detach()))
        record["group_link_value"].append(float(link.detach()))
        optimizer.step()
        if config.schedule == "cosine":
            scheduler.step()
    form = getattr(getattr(model, "config", None), "compactness_form", None)
    return {**record, "compactness_weight": weight, "form": form}


def _prepare_run_folder(run_dir: Path, processes: distributed.ProcessContext) -> None:
    """Create ``run_dir``, prove it writable and remove temporary files an interrupted write left."""
    if processes.is_main:
        check_writable_folder(run_dir)
        removed = remove_orphan_temporaries(run_dir, RUN_FILES)
        if removed:
            print(f"removed {len(removed)} temporary file(s) an interrupted write left in {run_dir}")
    distributed.barrier()


def _above_bar(batches):
    """Iterate ``batches`` with warnings printed above the progress bar."""
    with warnings_above_progress_bars():
        yield from batches


def _apply_new_hyperparameters(optimizer: torch.optim.Optimizer, scheduler, asked_groups: list[dict]) -> None:
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


def load_best(model, run_dir: str | Path, class_names: Sequence[str]) -> dict:
    """Load ``best.pt`` from ``run_dir`` into ``model`` (signature-checked)."""
    return load_model_state(Path(run_dir) / "best.pt", model, class_names)


def training_finished(run_dir: str | Path, epochs: int) -> bool:
    """True when ``run_dir`` holds a run that completed ``epochs`` epochs."""
    last = Path(run_dir) / "last.pt"
    if not last.exists() or not (Path(run_dir) / "best.pt").exists():
        return False
    return read_checkpoint(last)["epoch"] + 1 >= epochs


def load_or_train(model, train_set, val_set, config: TrainConfig, run_dir: str | Path,
                  force: bool = False) -> TrainResult:
    """Load the best checkpoint of a finished run in ``run_dir``, else train (resuming if possible).

    ``force=True`` trains from scratch even when a finished run exists. Either way the model
    ends with the best validation weights and the run's history is returned.
    """
    run_dir = Path(run_dir)
    if force:
        for name in ("last.pt", "best.pt", "history.json"):
            (run_dir / name).unlink(missing_ok=True)
    elif training_finished(run_dir, config.epochs):
        load_best(model, run_dir, train_set.class_names)
        last = read_checkpoint(run_dir / "last.pt")
        print(f"loaded the finished run in {display_path(run_dir)} (pass force=True to train again)")
        return TrainResult(last["history"], run_dir / "best.pt", run_dir / "last.pt", last["best_epoch"] + 1,
                           last["best_val_map"], extra={"loaded": True})
    result = train_model(model, train_set, val_set, config, run_dir)
    load_best(model, run_dir, train_set.class_names)
    return result

"""The training loop: one for the CLI, the main job and the notebooks.

Each step is :func:`msrn_core.training_step.training_step` on the objective of
:mod:`msrn_core.objective` (eq. 1's BCE + lambda x eq. 6's compactness, + Diffpool's link term
where the recipe weights it). Beside this loop:

- :mod:`.optimization`: SGD with the backbone at 0.1 x the learning rate (paper section 4.1),
  step or cosine schedule;
- :mod:`.precision`: autocast (bf16 on CUDA, or on CPUs with native bf16; fp16 with a gradient
  scaler where CUDA has no bf16), measured in ``benchmarks/README.md``;
- :mod:`.loaders`: seeded batch order and augmentation; :mod:`.evaluation`: scores and metrics;
- :mod:`.run_folder`: ``last.pt`` (everything needed to resume exactly) and ``best.pt`` (best
  validation mAP), both written atomically after every epoch.

Model selection is on the validation split; the test split is only ever evaluated. Under
``torchrun`` the same function trains with DistributedDataParallel; the batch size is then the
global batch (see :mod:`msrn_core.running.distributed`).
"""
from __future__ import annotations

import copy
import math
import numbers
import time
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

import numpy as np
import torch

# Also imported from here by the command lines, notebooks, tests and benchmarks: the names this
# module re-exports from its neighbours (marked noqa: F401).
from . import distributed
from .checkpoints import read_checkpoint, transform_image_size
from .evaluation import evaluate, metrics_of_predictions, predict  # noqa: F401  (predict: looked up here, so tests can replace it)
from .guards import (DivergenceMonitor, ModelSelectionError, check_validation_split, no_selection_message,
                     non_finite_message)
from .loaders import loader_and_network, make_loader, steps_per_epoch, stop_loader_workers, training_loader  # noqa: F401
from .optimization import SCHEDULES, make_optimizer, make_scheduler, make_sgd  # noqa: F401
from .optimization import keep_kernel_choice as _keep_kernel_choice  # noqa: F401
from .precision import AMP_MODES, autocast, autocast_dtype, gradient_scaler  # noqa: F401
from .progress import progress_bar
from .run_lock import holding_run_folder
from .run_folder import (RUN_FILES, RunProgress, load_best, prepare_run_folder, resume_run,  # noqa: F401
                         save_epoch, training_finished)
from ..data.dataset import report_unreadable, warnings_above_progress_bars
from ..metrics import mean_average_precision
from ..objective import LossFunction, compactness_lambda, loss_terms, loss_weights, main_term, model_objective  # noqa: F401
from ..training_step import NonFiniteLossError, training_step
from ..utils import display_path, get_device


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
    cudnn_benchmark: bool = True  # CUDA: cuDNN times its convolution algorithms for the fixed input size
    num_workers: int = 2
    seed: int = 0
    device: str = "auto"
    max_steps_per_epoch: int | None = None  # a cap for smoke runs
    # the first epoch (counted from 1) after which the validation split is scored: the epochs before it
    # are not validated and cannot be selected (1: every epoch; a run whose best epoch lies in the window
    # selects the same checkpoint either way)
    validate_from_epoch: int = 1
    # progressive resizing: the side each epoch's training images are resized to, one per epoch (smaller
    # images early train faster); None: every epoch at the loader's size. Validation always uses that size.
    epoch_image_sizes: tuple[int, ...] | None = None
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


@dataclass
class _Run:
    """What every epoch of one :func:`train_model` call uses."""

    model: torch.nn.Module
    network: torch.nn.Module  # the model, or DistributedDataParallel around it
    config: TrainConfig
    device: torch.device
    loss: LossFunction
    optimizer: torch.optim.Optimizer
    scheduler: object
    scaler: torch.amp.GradScaler
    dtype: torch.dtype | None
    generator: torch.Generator
    processes: distributed.ProcessContext
    run_dir: Path
    reported: set = field(default_factory=set)  # unreadable files already warned about

    def non_finite(self, what: str, epoch: int, step: int | None) -> NonFiniteLossError:
        return NonFiniteLossError(non_finite_message(what, epoch + 1, step, self.config.lr, self.dtype is not None,
                                                     self.run_dir / "last.pt"))


@holding_run_folder("run_dir")  # one run per folder: a second one stops at once
def train_model(model, train_set, val_set, config: TrainConfig, run_dir: str | Path,
                resume: bool = True) -> TrainResult:
    """Train ``model`` on ``train_set``, select the best epoch on ``val_set``.

    With ``resume`` and a ``last.pt`` in ``run_dir``, training continues exactly where that
    checkpoint stopped (same weights, optimiser, schedule, scaler and random streams).
    """
    run_dir = Path(run_dir)
    class_names = list(train_set.class_names)
    if list(val_set.class_names) != class_names:
        raise ValueError("the training and validation splits have different class lists")
    check_validation_split(val_set)
    if not 1 <= config.validate_from_epoch <= config.epochs:
        raise ValueError(f"validate_from_epoch must be between 1 and epochs ({config.epochs}) so that an epoch "
                         f"can be selected, got {config.validate_from_epoch}")
    check_epoch_image_sizes(config)
    processes = distributed.context()
    prepare_run_folder(run_dir, processes)
    device = distributed.process_device(get_device(config.device))
    model.to(device)
    if config.channels_last:
        model.to(memory_format=torch.channels_last)

    optimizer = make_optimizer(model, config)
    asked_groups = [dict(group) for group in optimizer.param_groups]  # this command's lr, momentum ...
    scheduler = make_scheduler(optimizer, config, steps_per_epoch(train_set, config))
    dtype = autocast_dtype(device, config.amp)
    scaler = gradient_scaler(dtype)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = config.cudnn_benchmark
    generator = torch.Generator().manual_seed(config.seed)
    if resume and (run_dir / "last.pt").exists():
        progress = resume_run(run_dir / "last.pt", model, class_names, config, optimizer, scheduler, scaler,
                              generator, asked_groups, processes)
    else:
        progress = RunProgress()
        distributed.offset_random_streams(processes.rank)  # each process augments differently

    # the evaluation input size, so that predict rebuilds the preprocessing from the checkpoint alone
    image_size = transform_image_size(getattr(val_set, "transform", None))
    input_size = {"image_size": image_size} if image_size is not None else {}
    loss = model_objective(model, loss_weights(model, config.compactness_weight, config.group_link_weight))
    loader, network = loader_and_network(model, train_set, val_set, config, device, generator, processes, loss)
    run = _Run(model, network, config, device, loss, optimizer, scheduler, scaler, dtype, generator, processes,
               run_dir)
    skipped_total = sum(h.get("skipped_images", 0) for h in progress.history)
    seconds_before = progress.history[-1].get("seconds", 0.0) if progress.history else 0.0  # spans resumes
    monitor = DivergenceMonitor(config.lr)
    started = time.perf_counter()
    for epoch in range(progress.start_epoch, config.epochs):
        losses, bces, skipped = _train_epoch(run, loader, epoch, monitor)
        validated = epoch + 1 >= config.validate_from_epoch
        val_map, val_skipped = _validate(run, val_set, epoch, progress.best_map) if validated else (None, 0)
        skipped = int(distributed.sum_over_processes(skipped)) + val_skipped
        record = _epoch_record(epoch, losses, bces, val_map, optimizer, skipped,
                               seconds_before + time.perf_counter() - started)
        progress.history.append(record)
        skipped_total += skipped
        if config.progress and processes.is_main:
            print(epoch_line(record, config.epochs))
        improved = validated and val_map > progress.best_map
        if improved:
            progress.best_map, progress.best_epoch = float(val_map), epoch
        save_epoch(run_dir, model, class_names, config, epoch, val_map, improved, progress, optimizer, scheduler,
                   scaler, generator, input_size, processes)

    distributed.unwrap_model(network)
    if skipped_total and processes.is_main:
        print(f"note: {skipped_total} unreadable images were skipped in total (see the warnings above)")
    return TrainResult(progress.history, run_dir / "best.pt", run_dir / "last.pt", progress.best_epoch + 1,
                       progress.best_map, skipped_total, time.perf_counter() - started, progress.resumed_from)


def _train_epoch(run: _Run, loader, epoch: int, monitor: DivergenceMonitor) -> tuple[list, list, int]:
    """One epoch of training steps: the losses and main terms of its steps, and the images skipped."""
    config = run.config
    memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
    run.model.train()
    loader.dataset.set_epoch(epoch)
    losses, bces, skipped = [], [], 0
    steps = len(loader) if config.max_steps_per_epoch is None else min(len(loader), config.max_steps_per_epoch)
    batches = iter(loader)
    bar = progress_bar(batches, total=steps, desc=f"epoch {epoch + 1}/{config.epochs}",
                       disable=not config.progress or not run.processes.is_main, leave=False)
    for step, batch in enumerate(_above_bar(bar)):
        if step >= steps:
            break
        skipped += batch.skipped
        report_unreadable(batch, run.reported)
        if distributed.any_process(batch.images.numel() == 0):  # every process skips the step
            continue
        images = epoch_images(batch.images.to(run.device, non_blocking=True), config, epoch)
        images = images.contiguous(memory_format=memory_format)
        targets = batch.targets.to(run.device, non_blocking=True)
        try:
            done = training_step(run.network, images, targets, run.loss, run.optimizer, run.scaler,
                                 config.clip_grad_norm, run.dtype)
        except NonFiniteLossError as error:
            raise run.non_finite(str(error), epoch, step + 1) from None
        if config.schedule == "cosine":
            run.scheduler.step()
        losses.append(done.loss.item())
        monitor.observe(losses[-1], epoch + 1, step + 1)
        bces.append(main_term(done.terms).item())
        bar.set_postfix(loss=f"{np.mean(losses[-20:]):.4f}", lr=f"{run.optimizer.param_groups[-1]['lr']:.2g}")
    bar.close()
    stop_loader_workers(batches)
    if config.schedule == "step":
        run.scheduler.step()
    return losses, bces, skipped


def check_epoch_image_sizes(config: TrainConfig) -> None:
    """One clear error for a progressive-resizing schedule that does not give every epoch a side."""
    sizes = config.epoch_image_sizes
    if sizes is None:
        return
    if (not isinstance(sizes, (tuple, list)) or len(sizes) != config.epochs
            or not all(isinstance(size, numbers.Integral) and not isinstance(size, bool) and size > 0
                       for size in sizes)):
        raise ValueError(f"epoch_image_sizes must give one positive image side per epoch ({config.epochs}), "
                         f"got {sizes!r}")


def epoch_images(images: torch.Tensor, config: TrainConfig, epoch: int) -> torch.Tensor:
    """The training images of ``epoch`` (counted from 0): resized to ``config.epoch_image_sizes[epoch]``
    (bilinear, antialiased) for progressive resizing, unchanged without a schedule or at the loaded size."""
    if config.epoch_image_sizes is None:
        return images
    side = int(config.epoch_image_sizes[epoch])
    if tuple(images.shape[-2:]) == (side, side):
        return images
    return torch.nn.functional.interpolate(images, size=(side, side), mode="bilinear", align_corners=False,
                                           antialias=True)


def _validate(run: _Run, val_set, epoch: int, best_map: float) -> tuple[float, int]:
    """``(validation mAP, images skipped)`` after ``epoch``; a clear error when none can be selected."""
    config = run.config
    val_logits, val_targets, val_indices, val_skipped = predict(
        run.model, val_set, batch_size=max(config.batch_size, 16), device=run.device,
        num_workers=config.num_workers, amp=config.amp, reported=run.reported)
    if not np.isfinite(val_logits).all():
        raise run.non_finite("the validation scores became non-finite (NaN or infinite)", epoch, None)
    difficult = None if getattr(val_set, "difficult", None) is None else val_set.difficult[val_indices]
    val_map = mean_average_precision(val_logits, val_targets, difficult)
    if not math.isfinite(val_map) and not math.isfinite(best_map):
        raise ModelSelectionError(no_selection_message(val_set, len(val_indices), val_skipped))
    return val_map, val_skipped


def epoch_line(record: dict, epochs: int) -> str:
    """How a run prints one epoch of its history, while it trains and when a finished run is loaded."""
    val_map, skipped = record.get("val_mAP"), record.get("skipped_images", 0)
    return (f"epoch {record['epoch']}/{epochs}: loss {record['train_loss']:.4f}  "
            + (f"val mAP {100 * val_map:.2f}" if val_map is not None else "not validated")
            + (f"  skipped {skipped} unreadable images" if skipped else ""))


def finished_run_line(run_dir: Path, best_epoch: int, best_val_map: float) -> str:
    """The line that closes a run, the same whether it was trained now or loaded: where it is kept
    (a second run loads it from there) and the epoch selected."""
    return f"{display_path(run_dir)}: finished, best epoch {best_epoch} (validation mAP {100 * best_val_map:.2f})"


def _epoch_record(epoch: int, losses: list, bces: list, val_map: float | None, optimizer, skipped: int,
                  seconds: float) -> dict:
    """One epoch's line of the history (training means over every process; ``val_mAP`` None when the
    epoch was not validated)."""
    def mean(values: list) -> float:
        return distributed.mean_over_processes(float(np.mean(values)) if values else float("nan"))

    return {"epoch": epoch + 1, "train_loss": mean(losses), "train_bce": mean(bces),
            "val_mAP": None if val_map is None else float(val_map),
            "lr": optimizer.param_groups[-1]["lr"], "skipped_images": skipped, "seconds": seconds}


def _above_bar(batches):
    """Iterate ``batches`` with warnings printed above the progress bar."""
    with warnings_above_progress_bars():
        yield from batches


def _gradient_norm(parameters) -> float:
    norms = [p.grad.detach().float().norm() for p in parameters if p.grad is not None]
    return float(torch.linalg.vector_norm(torch.stack(norms))) if norms else 0.0


def loss_gradient_norms(model, train_set, config: TrainConfig, steps: int = 20) -> dict:
    """The gradient norms of the BCE and of the weighted compactness term, separately, over the
    first ``steps`` training steps of ``config`` (for the "before / after" figure of notebook 05).

    Trains a copy of ``model`` (``model`` itself is left as it is) with :func:`train_model`'s
    step, loader and settings, and before each step's backward pass measures the global L2 norm of
    the gradient of ``bce`` alone, of ``lambda * compactness`` alone and of the weighted Diffpool
    link-prediction term alone (``config.group_link_weight``; 0 when off).
    Returns per-step lists: ``bce``, ``compactness``, ``group_link`` (the weighted terms'
    gradient norms), ``total``, ``clip_scale`` (the factor clip-norm ``config.clip_grad_norm``
    multiplied the whole gradient by: 1 when not clipped), ``bce_value``, ``compactness_value``
    and ``group_link_value`` (the weighted terms), plus ``compactness_weight`` (lambda) and ``form``.
    """
    device = get_device(config.device)
    model = copy.deepcopy(model).to(device).train()
    memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
    if config.channels_last:
        model.to(memory_format=memory_format)
    weights = loss_weights(model, config.compactness_weight, config.group_link_weight)
    optimizer = make_optimizer(model, config)
    per_epoch = steps_per_epoch(train_set, config)
    scheduler = make_scheduler(optimizer, config, per_epoch)
    dtype = autocast_dtype(device, config.amp)
    scaler = gradient_scaler(dtype)
    loader = training_loader(train_set, config, device, torch.Generator().manual_seed(config.seed), num_workers=0)
    parameters = [p for p in model.parameters() if p.requires_grad]
    names = ("bce", "compactness", "group_link")
    record = {key: [] for key in (*names, "total", "clip_scale", *(f"{name}_value" for name in names))}

    def measure(terms: dict) -> None:  # each weighted term's own gradient, before the step's backward
        for name in ("compactness", "group_link", "bce"):
            term = terms.get(name)
            optimizer.zero_grad(set_to_none=True)
            if term is not None and term.requires_grad:
                term.backward(retain_graph=True)
            record[name].append(_gradient_norm(parameters) if term is not None and term.requires_grad else 0.0)
            record[f"{name}_value"].append(float(term.detach()) if term is not None else 0.0)

    epoch = 0
    while len(record["total"]) < steps:
        loader.dataset.set_epoch(epoch)
        for batch in islice(loader, min(per_epoch, steps - len(record["total"]))):
            images = batch.images.to(device).contiguous(memory_format=memory_format)
            done = training_step(model, images, batch.targets.to(device), model_objective(model, weights),
                                 optimizer, scaler, config.clip_grad_norm, dtype, before_backward=measure)
            record["total"].append(float(done.gradient_norm))
            record["clip_scale"].append(min(1.0, config.clip_grad_norm / (float(done.gradient_norm) + 1e-6)))
            if config.schedule == "cosine":
                scheduler.step()
        if config.schedule == "step":
            scheduler.step()
        epoch += 1
    form = getattr(getattr(model, "config", None), "compactness_form", None)
    return {**record, "compactness_weight": weights.compactness, "form": form}


def load_or_train(model, train_set, val_set, config: TrainConfig, run_dir: str | Path,
                  force: bool = False, announce: bool = True) -> TrainResult:
    """Load the best checkpoint of a finished run in ``run_dir``, else train (resuming if possible).

    ``force=True`` trains from scratch even when a finished run exists. Either way the model
    ends with the best validation weights and the run's history is returned, and (with
    ``config.progress``) the same lines are printed: a loaded run prints its stored epochs as
    training printed them, then both print :func:`finished_run_line`, so a notebook that trains
    and the same notebook run again show the same text. ``announce=False`` loads a finished run
    without a word (a shared backbone loaded to start another model from).
    """
    run_dir = Path(run_dir)
    if force:
        for name in ("last.pt", "best.pt", "history.json"):
            (run_dir / name).unlink(missing_ok=True)
    elif training_finished(run_dir, config.epochs):
        load_best(model, run_dir, train_set.class_names)
        last = read_checkpoint(run_dir / "last.pt")
        result = TrainResult(last["history"], run_dir / "best.pt", run_dir / "last.pt", last["best_epoch"] + 1,
                             last["best_val_map"], extra={"loaded": True})
        if announce and config.progress:
            for record in result.history:
                print(epoch_line(record, config.epochs))
            print(finished_run_line(run_dir, result.best_epoch, result.best_val_map))
        return result
    result = train_model(model, train_set, val_set, config, run_dir)
    load_best(model, run_dir, train_set.class_names)
    if config.progress and distributed.context().is_main:
        print(finished_run_line(run_dir, result.best_epoch, result.best_val_map))
    return result

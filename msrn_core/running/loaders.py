"""The data loaders of training and evaluation.

Training batches come in the order of a seeded generator and every image's augmentation is
seeded by (seed, epoch, image) (:class:`msrn_core.data.dataset.SeededAugmentation`), so a run,
a resumed run and a multi-process run see the same augmented images.
"""
from __future__ import annotations

import math
from functools import partial

import torch
from torch.utils.data import DataLoader, RandomSampler, Sampler

from . import distributed
from ..data.dataset import SeededAugmentation, collate_skip_unreadable
from .guards import ModelSelectionError, no_selection_message


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


def steps_per_epoch(train_set, config) -> int:
    """Optimiser steps in one epoch of ``config`` (a TrainConfig): the global batch over the whole
    split, capped for smoke runs."""
    steps = math.ceil(len(train_set) / config.batch_size)
    return steps if config.max_steps_per_epoch is None else min(steps, config.max_steps_per_epoch)


def training_loader(train_set, config, device: torch.device, generator: torch.Generator,
                    num_workers: int | None = None) -> DataLoader:
    """The single-process training loader of ``config``: seeded order, seeded augmentation."""
    train_set = SeededAugmentation(train_set, config.seed)  # the same augmentation in any process
    workers = config.num_workers if num_workers is None else num_workers
    return make_loader(train_set, config.batch_size, True, workers, device, generator)


def loader_and_network(model, train_set, val_set, config, device: torch.device, generator: torch.Generator,
                       processes: distributed.ProcessContext, loss):
    """The training loader and the module to call: ``model`` itself, or DDP around it.

    In a multi-process run each process loads its share of every global batch, and DDP is told
    to look for unused parameters only when a probe finds some (it costs time every step);
    ``loss(output, targets) -> (total, terms)`` is what the probe differentiates.
    """
    if not processes.enabled:
        return training_loader(train_set, config, device, generator), model
    train_set = SeededAugmentation(train_set, config.seed)
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
    unused = distributed.parameters_without_gradient(model, lambda output: loss(output, targets)[0], example)
    return loader, distributed.wrap_model(model, device, bool(unused), config.sync_batchnorm)

"""Scores and metrics of a model on a split, in one process or sharded over several."""
from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import Subset

from . import distributed
from .loaders import make_loader
from .precision import autocast, autocast_dtype
from .progress import progress_bar
from ..data.dataset import report_unreadable, warnings_above_progress_bars
from ..metrics import compute_all_metrics
from ..utils import atomic_write_json, get_device


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

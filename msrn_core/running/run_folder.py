"""What a training run keeps in its folder, and how a run resumes from it.

``last.pt`` holds everything needed to resume exactly (weights, optimiser, schedule, gradient
scaler, sampler generator, every random state, history); ``best.pt`` the weights of the best
validation mAP. Both are written atomically after every epoch, with ``history.json`` beside them.
"""
from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from . import distributed
from .checkpoints import check_signature, load_model_state, read_checkpoint, save_checkpoint
from .guards import ResumeConflictError, resume_changes, resume_conflict_message
from .optimization import apply_new_hyperparameters, keep_kernel_choice
from ..utils import atomic_write_json, check_writable_folder, display_path, remove_orphan_temporaries

RUN_FILES = ("last.pt", "best.pt", "history.json", "test_metrics.json")  # what a run folder holds


def prepare_run_folder(run_dir: Path, processes: distributed.ProcessContext) -> None:
    """Create ``run_dir``, prove it writable and remove temporary files an interrupted write left."""
    if processes.is_main:
        check_writable_folder(run_dir)
        removed = remove_orphan_temporaries(run_dir, RUN_FILES)
        if removed:
            print(f"removed {len(removed)} temporary file(s) an interrupted write left in {run_dir}")
    distributed.barrier()


def rng_state() -> dict:
    """Every random state, as tensors and plain values (checkpoints load with weights_only=True)."""
    kind, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    numpy_state = (kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, cached_gaussian)
    state = {"python": random.getstate(), "numpy": numpy_state, "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    kind, keys, *rest = state["numpy"]  # keys: a tensor (or an array in older checkpoints)
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), *rest))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def restore_rng_states(checkpoint: dict, processes: distributed.ProcessContext) -> None:
    """Each process's random state from ``checkpoint`` (exact when the process count is the same)."""
    states = checkpoint.get("rng_by_rank", [checkpoint["rng"]])
    if len(states) == processes.world_size:
        set_rng_state(states[processes.rank])
    else:  # another number of processes: continue from rank 0's streams, offset per process
        set_rng_state(checkpoint["rng"])
        distributed.offset_random_streams(processes.rank)


@dataclass
class RunProgress:
    """Where a run stands: the epochs done and the best one so far."""

    history: list[dict] = field(default_factory=list)
    start_epoch: int = 0
    best_map: float = -math.inf
    best_epoch: int = -1  # 0-based
    resumed_from: int | None = None


def resume_run(last_path: Path, model, class_names: Sequence[str], config, optimizer, scheduler, scaler,
               generator: torch.Generator, asked_groups: list[dict],
               processes: distributed.ProcessContext) -> RunProgress:
    """Load ``last.pt`` into the model, optimiser, schedule, scaler, generator and random streams.

    Settings of ``config`` (a TrainConfig) that may change on resume are applied from now on;
    the others must match the checkpoint (ResumeConflictError otherwise).
    """
    # RNG and generator states must stay on the CPU; load_state_dict moves the rest
    checkpoint = read_checkpoint(last_path, map_location="cpu")
    check_signature(checkpoint, model, class_names, last_path)
    applied, refused = resume_changes(checkpoint.get("train_config", {}), config)
    if refused:
        raise ResumeConflictError(resume_conflict_message(last_path, refused))
    model.load_state_dict(checkpoint["model"])
    keep_kernel_choice(optimizer, checkpoint["optimizer"])
    scheduler.load_state_dict(checkpoint["scheduler"])
    if applied:
        apply_new_hyperparameters(optimizer, scheduler, asked_groups)
    scaler.load_state_dict(checkpoint["scaler"])
    generator.set_state(checkpoint["sampler_generator"])
    restore_rng_states(checkpoint, processes)
    progress = RunProgress(checkpoint["history"], checkpoint["epoch"] + 1, checkpoint["best_val_map"],
                           checkpoint["best_epoch"], checkpoint["epoch"])
    if processes.is_main:
        print(f"resuming from {display_path(last_path)} after epoch {progress.resumed_from + 1}")
        if applied:
            print("  changed since the checkpoint, applied from now on: " + "; ".join(applied))
        if progress.start_epoch >= config.epochs:
            print(f"  the run already has {progress.start_epoch} epochs (asked: {config.epochs}): "
                  "nothing left to train")
    return progress


def save_epoch(run_dir: Path, model, class_names: Sequence[str], config, epoch: int, val_map: float,
               improved: bool, progress: RunProgress, optimizer, scheduler, scaler, generator: torch.Generator,
               input_size: dict, processes: distributed.ProcessContext) -> None:
    """After an epoch: ``best.pt`` when it ``improved``, ``last.pt`` and ``history.json`` (one writer)."""
    rng_states = distributed.gather_objects(rng_state())
    if processes.is_main:  # one writer; the others wait at the barrier below
        if improved:
            save_checkpoint(run_dir / "best.pt", model, class_names, epoch=epoch, val_mAP=float(val_map),
                            train_config=asdict(config), **input_size)
        save_checkpoint(
            run_dir / "last.pt", model, class_names,
            optimizer=optimizer.state_dict(), scheduler=scheduler.state_dict(), scaler=scaler.state_dict(),
            sampler_generator=generator.get_state(), rng=rng_states[0], epoch=epoch, history=progress.history,
            best_val_map=progress.best_map, best_epoch=progress.best_epoch, train_config=asdict(config),
            **input_size, **({"rng_by_rank": rng_states} if processes.enabled else {}),
        )
        atomic_write_json(run_dir / "history.json", progress.history)
    distributed.barrier()


def load_best(model, run_dir: str | Path, class_names: Sequence[str]) -> dict:
    """Load ``best.pt`` from ``run_dir`` into ``model`` (signature-checked)."""
    return load_model_state(Path(run_dir) / "best.pt", model, class_names)


def training_finished(run_dir: str | Path, epochs: int) -> bool:
    """True when ``run_dir`` holds a run that completed ``epochs`` epochs."""
    last = Path(run_dir) / "last.pt"
    if not last.exists() or not (Path(run_dir) / "best.pt").exists():
        return False
    return read_checkpoint(last)["epoch"] + 1 >= epochs

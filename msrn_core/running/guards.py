"""What the training loop checks so that a run never fails late, silently or misleadingly.

- **Divergence** (:class:`DivergenceMonitor`): a loss that grows by orders of magnitude over
  the run's first steps warns once; a non-finite loss or non-finite validation scores stop the
  run (:func:`non_finite_message` says where, the last checkpoint that exists, and the fix
  that applies to this device).
- **Model selection** (:func:`check_validation_split`, :func:`no_selection_message`): a
  validation split without positives, or without a single readable image, cannot select an
  epoch; the run stops at the start or after its first validation, not after the last epoch.
- **Resuming** (:func:`resume_changes`): options that differ from the checkpoint's are listed;
  those with a well-defined meaning mid-run are applied, the others refused.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import fields
from pathlib import Path


class LossDivergenceWarning(UserWarning):
    """The training loss grew by orders of magnitude: the learning rate is probably too high."""


class ModelSelectionError(ValueError):
    """The validation split cannot select a best epoch (no positives, no readable image)."""


class ResumeConflictError(ValueError):
    """The command asks for settings a checkpoint's run cannot change midway."""


# a loss this many times its first value counts as divergence (BCE starts near log 2)
DIVERGENCE_FACTOR = 100.0


class DivergenceMonitor:
    """Warn once when the loss exceeds ``factor`` times the first loss the run observed."""

    def __init__(self, lr: float, factor: float = DIVERGENCE_FACTOR):
        self.lr, self.factor = lr, factor
        self.reference: float | None = None
        self.warned = False

    def observe(self, loss: float, epoch: int, step: int) -> None:
        if not math.isfinite(loss):
            return
        if self.reference is None:
            self.reference = max(loss, 1e-8)
            return
        if not self.warned and loss > self.factor * self.reference:
            self.warned = True
            warnings.warn(
                f"the training loss grew from {self.reference:.3g} to {loss:.3g} (x{loss / self.reference:.3g}) "
                f"by epoch {epoch}, step {step}: training is diverging. Lower the learning rate (now "
                f"{self.lr:g}; CLI --lr) and train again with --fresh", LossDivergenceWarning, stacklevel=2)


def last_saved_state(last_path: Path) -> str:
    """Where the run can be resumed from: the epoch of ``last_path``, or that there is none."""
    if not Path(last_path).is_file():
        return "No checkpoint was written yet, so the run starts over when you rerun it"
    try:
        from .checkpoints import read_checkpoint

        epoch = read_checkpoint(last_path)["epoch"] + 1
    except (ValueError, OSError, KeyError):
        return f"{last_path} exists but cannot be read; train again with --fresh"
    return (f"The last saved state is {last_path} (after epoch {epoch}): rerunning the command with a lower "
            "--lr resumes from it")


def non_finite_message(what: str, epoch: int, step: int | None, lr: float, mixed_precision: bool,
                       last_path: Path) -> str:
    """The message of a NonFiniteLossError: where, the fix for this device, what is saved."""
    where = f"epoch {epoch}" + (f", step {step}" if step is not None else " (validation)")
    fixes = [f"Lower the learning rate (now {lr:g}; CLI --lr, e.g. {lr / 10:g})"]
    if mixed_precision:
        fixes.append("turn mixed precision off (amp='off', CLI --amp off)")
    return f"{what} at {where}. {' or '.join(fixes)}. {last_saved_state(last_path)}."


def check_validation_split(val_set) -> None:
    """Refuse, before training, a validation split that can never give a finite mAP."""
    if len(val_set) == 0:
        raise ModelSelectionError(
            f"the validation split {getattr(val_set, 'name', '')!r} is empty: there is nothing to select the "
            "best epoch on. Give it images (real benchmarks: a larger --val-fraction)")
    labels = getattr(val_set, "labels", None)
    if labels is not None and not labels.any():
        raise ModelSelectionError(
            f"the validation split {getattr(val_set, 'name', '')!r} has no positive label in its "
            f"{len(val_set)} images: its mAP is undefined, so no epoch can be selected. Use a validation "
            "split with positives (real benchmarks: a larger --val-fraction or another --split-seed)")


def no_selection_message(val_set, images_read: int, skipped: int) -> str:
    """Why the first validation gave no finite mAP, and the fix."""
    if images_read == 0:
        return (f"no validation image could be read ({skipped} of {len(val_set)} were unreadable, see the "
                "warnings above): no epoch can be selected. Check or regenerate the dataset's images")
    return (f"the {images_read} readable validation images have no positive label: their mAP is undefined, "
            "so no epoch can be selected. Use a validation split with positives (real benchmarks: a larger "
            "--val-fraction or another --split-seed)")


# TrainConfig fields a resumed run takes from the command: they have a clear meaning from the
# next epoch on (the learning rate and momentum apply to the rest of the schedule)
APPLIED_ON_RESUME = ("epochs", "lr", "backbone_lr_mult", "momentum", "weight_decay", "compactness_weight",
                     "clip_grad_norm", "amp", "device", "max_steps_per_epoch")
# fields that never change what is computed
IRRELEVANT_ON_RESUME = ("num_workers", "progress", "cudnn_benchmark")
# CLI spellings that differ from "--" + the field name with dashes
CLI_NAMES = {"compactness_weight": "--lambda", "max_steps_per_epoch": "--small"}
# the other TrainConfig fields that `python -m msrn_core.running.train` sets, each by its own name
# (tests/test_faults.py checks this against the command line's parser)
ON_THE_COMMAND_LINE = {"amp", "backbone_lr_mult", "batch_size", "device", "epochs", "lr", "lr_step", "seed"}


def cli_option(name: str) -> str:
    """How a reader sets TrainConfig field ``name``: its command-line option, or, for a field only a
    recipe or a study sets (no option), the field itself."""
    if name in CLI_NAMES:
        return CLI_NAMES[name]
    return "--" + name.replace("_", "-") if name in ON_THE_COMMAND_LINE else f"TrainConfig.{name}"


def resume_changes(saved: dict, config) -> tuple[list[str], list[str]]:
    """``(applied, refused)``: descriptions of the options ``config`` changes against ``saved``.

    ``saved`` is the checkpoint's ``train_config``; a field it lacks had its default then.
    Every field not known to be safe to change (including fields added later) is refused.
    """
    applied, refused = [], []
    for field in fields(config):
        if field.name in IRRELEVANT_ON_RESUME:
            continue
        before, now = saved.get(field.name, field.default), getattr(config, field.name)
        if before == now or (isinstance(before, (list, tuple)) and list(before) == list(now or [])):
            continue
        line = f"{field.name} {before!r} -> {now!r} ({cli_option(field.name)})"
        (applied if field.name in APPLIED_ON_RESUME else refused).append(line)
    return applied, refused


def resume_conflict_message(last_path: Path, refused: list[str]) -> str:
    return (f"{last_path} belongs to a run with other settings: {'; '.join(refused)}. These cannot change in "
            "the middle of a run. Pass the checkpoint's values to continue it, or --fresh (or another --out) "
            "to start a new run with the new ones")

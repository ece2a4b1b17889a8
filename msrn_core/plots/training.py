"""Training curves: loss and validation mAP per epoch, and each loss term's gradient norm per step."""
from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from .common import _finish, class_colors


def plot_training_curves(histories: Mapping[str, Sequence[Mapping]], save_as: str | None = None) -> Figure:
    """Training loss and validation mAP (%) per epoch, one line per run.

    ``histories`` maps a run name to its history: a list of dicts with ``"epoch"``,
    ``"train_loss"`` and ``"val_mAP"`` (a fraction, as :func:`msrn_core.running.training.train` stores it).
    """
    fig, (loss_ax, map_ax) = plt.subplots(1, 2, figsize=(12, 4.5))
    for name, history in histories.items():
        epochs = [record["epoch"] for record in history]
        loss_ax.plot(epochs, [record.get("train_loss", np.nan) for record in history], marker="o", label=name)
        val = [np.nan if record.get("val_mAP") is None else 100.0 * record["val_mAP"] for record in history]
        map_ax.plot(epochs, val, marker="o", label=name)
    loss_ax.set(title="Training loss", xlabel="epoch", ylabel="loss (BCE + compactness)")
    map_ax.set(title="Validation mAP", xlabel="epoch", ylabel="mAP (%)")
    for ax in (loss_ax, map_ax):
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.legend()
    fig.tight_layout()
    return _finish(fig, save_as)


def plot_loss_gradient_norms(curves: Mapping[str, Mapping[str, Sequence[float]]], clip_norm: float | None = None,
                             title: str | None = None, save_as: str | None = None) -> Figure:
    """Gradient norms of each loss term over the first training steps, one panel per compactness form.

    ``curves``: panel title -> {term name -> norms per step} (e.g. ``"BCE"`` and
    ``"lambda x compactness"``). A dashed line marks ``clip_norm``: a term above it sets the
    clipping factor of the whole gradient. Log scale, shared across the panels.
    """
    if not curves:
        raise ValueError("plot_loss_gradient_norms needs at least one set of curves")
    fig, axes = plt.subplots(1, len(curves), figsize=(5.5 * len(curves), 4.2), sharey=True, squeeze=False)
    for ax, (panel, terms) in zip(axes[0], curves.items()):
        for (term, norms), color in zip(terms.items(), class_colors(max(len(terms), 1))):
            norms = np.asarray(norms, dtype=float)
            ax.plot(np.arange(len(norms)), np.where(norms > 0, norms, np.nan), marker=".", color=color, label=term)
        if clip_norm is not None:
            ax.axhline(clip_norm, color="gray", linestyle="--", linewidth=1, label=f"clip norm {clip_norm:g}")
        ax.set(title=panel, xlabel="training step", yscale="log")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    axes[0, 0].set_ylabel("gradient norm of the term")
    fig.suptitle(title or "Both loss terms' gradient norms over the first steps", fontsize=11)
    fig.tight_layout()
    return _finish(fig, save_as)


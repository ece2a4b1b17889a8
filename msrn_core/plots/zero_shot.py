"""Figures of notebook 08 (zero-shot with SDL): how unseen tags relate to seen ones, and SDL's
principal vectors."""
from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from .common import _finish, _image_array, _to_numpy

UNSEEN_COLOR = "tab:orange"



def plot_unseen_similarity(similarity, unseen_names: Sequence[str], seen_names: Sequence[str],
                           families: Mapping[str, str] | None = None, save_as: str | None = None) -> Figure:
    """Cosine similarity of each unseen tag's label vector (rows) to each seen tag's (columns).

    The most similar seen tag of every row is framed; with ``families`` (tag -> family) a dot
    marks the seen tags of the unseen tag's own family, so one sees whether the label vectors
    point to the relatives that share its appearance.
    """
    similarity = _to_numpy(similarity)
    if similarity.shape != (len(unseen_names), len(seen_names)):
        raise ValueError(f"similarity has shape {similarity.shape}, expected "
                         f"{len(unseen_names)} unseen x {len(seen_names)} seen tags")
    fig, ax = plt.subplots(figsize=(min(16.0, 0.45 * len(seen_names) + 3.5), 0.45 * len(unseen_names) + 2.2))
    sns.heatmap(similarity, ax=ax, cmap="viridis", annot=True, fmt=".2f", annot_kws={"fontsize": 7},
                xticklabels=seen_names, yticklabels=unseen_names, cbar_kws={"shrink": 0.8, "label": "cosine"})
    for row, name in enumerate(unseen_names):
        best = int(np.argmax(similarity[row]))
        ax.add_patch(Rectangle((best, row), 1, 1, fill=False, edgecolor="white", linewidth=2))
        if families is not None:
            for col, seen in enumerate(seen_names):
                if families.get(seen) == families.get(name):
                    ax.plot(col + 0.88, row + 0.15, "o", color="red", markersize=3.5)
    ax.set_xticklabels(ax.get_xticklabels(), rotation=60, ha="right", rotation_mode="anchor", fontsize=9)
    ax.set_yticklabels(ax.get_yticklabels(), rotation=0, fontsize=9, color=UNSEEN_COLOR)
    ax.set_xlabel("seen tags (training)")
    ax.set_ylabel("unseen tags")
    ax.set_title("Label-vector similarity of unseen to seen tags (frame: most similar"
                 + ("; red dot: same family)" if families is not None else ")"))
    fig.tight_layout()
    return _finish(fig, save_as)


def plot_principal_vectors(image, principal_vectors, tag_vectors, tag_names: Sequence[str],
                           unseen: Sequence[str], positives: Sequence[str], top: int = 3,
                           title: str | None = None, save_as: str | None = None) -> Figure:
    """One image through SDL: its top unseen tags, its k principal vectors against every tag, the ranking.

    Args:
        image: a PIL image or a (3, H, W) tensor in [0, 1] (``data.denormalize`` first).
        principal_vectors: the image's ``A`` (k x w).
        tag_vectors: the label vectors of ``tag_names`` (n x w).
        unseen: the names of the unseen tags (drawn in orange).
        positives: the image's true tags (bold; a check mark or a cross on the image).
        top: how many of the highest-ranked unseen tags to write on the image.

    Left: the image with its ``top`` highest-scored unseen tags. Middle: ``<A_r, v_j>`` for every
    principal vector r (rows) and tag j (columns); the dot marks the vector that gives tag j its
    score ``max_r``. Right: the unseen tags ranked by that score (green: in the image), each
    labelled with the principal vector that scores it.
    """
    principal = _to_numpy(principal_vectors).astype(float)
    tags = _to_numpy(tag_vectors).astype(float)
    names = list(tag_names)
    if principal.ndim != 2 or tags.ndim != 2 or principal.shape[1] != tags.shape[1] or len(tags) != len(names):
        raise ValueError(f"principal vectors {principal.shape} and tag vectors {tags.shape} must be k x w and "
                         f"n x w with n = {len(names)} tag names")
    unseen_set, positive_set = set(unseen), set(positives)
    products = principal @ tags.T  # k x n
    scores = products.max(axis=0)
    fig, (image_ax, heat_ax, rank_ax) = plt.subplots(
        1, 3, figsize=(17, 5), gridspec_kw={"width_ratios": [1.0, 2.4, 1.0]})

    image_ax.imshow(_image_array(image))
    image_ax.set_xticks([])
    image_ax.set_yticks([])
    ranked = sorted((j for j, n in enumerate(names) if n in unseen_set), key=lambda j: -scores[j])[:top]
    lines = [("top unseen tags", "white")] + [
        (f"{i + 1}. {names[j]} {'✓' if names[j] in positive_set else '✗'}",
         "#7CFC00" if names[j] in positive_set else "#FF6347") for i, j in enumerate(ranked)]
    for row, (text, color) in enumerate(lines):
        image_ax.text(0.03, 0.97 - 0.085 * row, text, transform=image_ax.transAxes, va="top", fontsize=10,
                      color=color, fontweight="bold", bbox=dict(facecolor="black", alpha=0.6, edgecolor="none", pad=2))
    truth = [n for n in names if n in positive_set]
    image_ax.set_xlabel("true: " + ", ".join(
        f"{n}*" if n in unseen_set else n for n in truth) + "\n(* unseen)", fontsize=9)

    limit = float(np.abs(products).max()) or 1.0
    heat_ax.imshow(products, cmap="coolwarm", vmin=-limit, vmax=limit, aspect="auto")
    heat_ax.plot(np.arange(len(names)), products.argmax(axis=0), "o", color="black", markersize=4)
    heat_ax.set_xticks(np.arange(len(names)))
    heat_ax.set_xticklabels(names, rotation=70, ha="right", rotation_mode="anchor", fontsize=8)
    for label, name in zip(heat_ax.get_xticklabels(), names):
        label.set_color(UNSEEN_COLOR if name in unseen_set else "black")
        label.set_fontweight("bold" if name in positive_set else "normal")
    heat_ax.set_yticks(np.arange(len(principal)))
    heat_ax.set_yticklabels([f"A{r + 1}" for r in range(len(principal))], fontsize=8)
    heat_ax.set_title("<A_r, v_j>: principal vector r vs tag j (dot: the max, the tag's score)", fontsize=10)

    order = sorted((j for j, n in enumerate(names) if n in unseen_set), key=lambda j: scores[j])
    winners = products.argmax(axis=0)
    bars = rank_ax.barh(np.arange(len(order)), [scores[j] for j in order],
                       color=["tab:green" if names[j] in positive_set else "lightgrey" for j in order])
    rank_ax.bar_label(bars, labels=[f"A{winners[j] + 1}" for j in order], fontsize=8, padding=2)
    rank_ax.set_yticks(np.arange(len(order)))
    rank_ax.set_yticklabels([names[j] for j in order], fontsize=9, color=UNSEEN_COLOR)
    rank_ax.axvline(0, color="black", linewidth=0.8)
    rank_ax.set_xlabel("score s_j = max_r <A_r, v_j>")
    rank_ax.set_title("ZSL ranking of the unseen tags\n(green: in the image; label: the winning vector)", fontsize=10)
    rank_ax.margins(x=0.15)
    fig.suptitle(title or "SDL: one image, k principal vectors", fontsize=12)
    fig.tight_layout()
    return _finish(fig, save_as)


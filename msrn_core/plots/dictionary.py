"""Figures of notebook 07 (the semantic dictionary of DSDL): the dictionary DSDL builds from the
label vectors, the coefficients that represent an image with it, and its alternating updates
(APUS) step by step."""
from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from ..label_features import cosine_similarity_matrix
from .common import _finish, _image_array, _label_fontsize, _to_numpy


def _group_order(class_names: Sequence[str], groups: Mapping[str, str] | None) -> tuple[list[int], list[int]]:
    """Class indices sorted by group (stable) and the positions where a new group starts."""
    if groups is None:
        return list(range(len(class_names))), []
    group_names = list(dict.fromkeys(groups.get(name) for name in class_names))
    order = sorted(range(len(class_names)), key=lambda i: group_names.index(groups.get(class_names[i])))
    keys = [groups.get(class_names[i]) for i in order]
    return order, [i for i in range(1, len(keys)) if keys[i] != keys[i - 1]]


def plot_dictionary_atoms(dictionary, label_features, class_names: Sequence[str],
                          groups: Mapping[str, str] | None = None, channels: int = 48,
                          save_as: str | None = None) -> Figure:
    """The dictionary D (one atom per class, in visual space) beside the label vectors S it comes from.

    Left: each atom over the ``channels`` feature channels that vary most across atoms (each
    atom scaled to unit length). Middle: cosine similarity of the label vectors, ``cos(S_i, S_j)``.
    Right: cosine similarity of the atoms, ``cos(D_i, D_j)``. With ``groups`` (class -> group,
    e.g. the dataset's visual families) the classes are ordered by group and the groups are
    separated by lines, so one sees which semantic neighbourhoods the dictionary keeps.
    """
    atoms, semantics = _to_numpy(dictionary).astype(float), _to_numpy(label_features).astype(float)
    n = len(class_names)
    if atoms.shape[0] != n or semantics.shape[0] != n:
        raise ValueError(f"dictionary {atoms.shape} and label features {semantics.shape} need one row per "
                         f"class ({n} class names)")
    order, starts = _group_order(class_names, groups)
    names = [class_names[i] for i in order]
    atoms, semantics = atoms[order], semantics[order]
    unit_atoms = atoms / np.linalg.norm(atoms, axis=1, keepdims=True).clip(1e-12)
    shown = np.sort(np.argsort(-unit_atoms.var(axis=0))[:min(channels, atoms.shape[1])])

    fig, axes = plt.subplots(1, 3, figsize=(19, 6.5), gridspec_kw={"width_ratios": [1.3, 1.0, 1.0]})
    limit = float(np.abs(unit_atoms[:, shown]).max()) or 1.0
    image = axes[0].imshow(unit_atoms[:, shown], cmap="coolwarm", vmin=-limit, vmax=limit, aspect="auto")
    fig.colorbar(image, ax=axes[0], shrink=0.8)
    axes[0].set_xlabel(f"feature channel (the {len(shown)} of {atoms.shape[1]} that vary most across atoms)")
    axes[0].set_title("Atoms D_i (unit length)")
    for ax, matrix, title in [(axes[1], cosine_similarity_matrix(semantics), "Label vectors: cos(S_i, S_j)"),
                              (axes[2], cosine_similarity_matrix(atoms), "Dictionary atoms: cos(D_i, D_j)")]:
        image = ax.imshow(matrix, cmap="viridis", vmin=-1 if matrix.min() < 0 else 0, vmax=1)
        fig.colorbar(image, ax=ax, shrink=0.8)
        ax.set_xticks(np.arange(n))
        ax.set_xticklabels(names, rotation=70, ha="right", rotation_mode="anchor", fontsize=_label_fontsize(n) - 1)
        ax.set_title(title)
    for ax in axes:
        ax.set_yticks(np.arange(n))
        ax.set_yticklabels(names, fontsize=_label_fontsize(n) - 1)
        for start in starts:
            ax.axhline(start - 0.5, color="white" if ax is not axes[0] else "black", linewidth=1)
            if ax is not axes[0]:
                ax.axvline(start - 0.5, color="white", linewidth=1)
    fig.suptitle("The semantic dictionary: label vectors S -> encoder -> atoms D in visual space", fontsize=12)
    fig.tight_layout()
    return _finish(fig, save_as)


def plot_coefficients(images: Sequence, coefficients, targets, class_names: Sequence[str],
                      save_as: str | None = None) -> Figure:
    """Each image beside its representation coefficients ``a`` (one per class, the class scores).

    ``images``: PIL images or (3, H, W) tensors in [0, 1]; ``coefficients`` and ``targets`` are
    (images x classes). Bars of the image's true classes are coloured, the others grey; the
    three largest coefficients are named in the title.
    """
    values, truth = _to_numpy(coefficients).astype(float), _to_numpy(targets) > 0.5
    n = len(class_names)
    if values.shape != (len(images), n) or truth.shape != values.shape:
        raise ValueError(f"coefficients {values.shape} and targets {truth.shape} must be "
                         f"{len(images)} images x {n} classes")
    fig, axes = plt.subplots(len(images), 2, figsize=(14, 2.9 * len(images)), squeeze=False,
                             gridspec_kw={"width_ratios": [1.0, 4.5]})
    for row, image in enumerate(images):
        axes[row, 0].imshow(_image_array(image))
        axes[row, 0].set_xticks([])
        axes[row, 0].set_yticks([])
        bar_ax = axes[row, 1]
        bar_ax.bar(np.arange(n), values[row], color=["tab:green" if t else "lightgrey" for t in truth[row]])
        bar_ax.axhline(0.0, color="black", linewidth=0.8)
        top = np.argsort(-values[row])[:3]
        bar_ax.set_title("largest: " + ", ".join(
            f"{class_names[j]} {'✓' if truth[row, j] else '✗'}" for j in top), fontsize=10)
        bar_ax.set_xticks(np.arange(n))
        bar_ax.set_xticklabels(class_names if row == len(images) - 1 else [], rotation=70, ha="right",
                               rotation_mode="anchor", fontsize=_label_fontsize(n) - 1)
        bar_ax.set_ylabel("coefficient a_j")
        bar_ax.grid(axis="y", alpha=0.3)
    fig.suptitle("Representation coefficients: f ~ a D (one coefficient per class = its score)", fontsize=12,
                 x=0.02, ha="left")
    fig.legend(handles=[Rectangle((0, 0), 1, 1, color="tab:green", label="true class"),
                        Rectangle((0, 0), 1, 1, color="lightgrey", label="absent class")],
               loc="upper right", ncol=2, fontsize=9, frameon=False)  # above the panels, over no bar
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 / fig.get_figheight()))
    return _finish(fig, save_as)


def plot_apus_steps(records: Sequence[Mapping], save_as: str | None = None) -> Figure:
    """APUS alternation by alternation: loss terms and how far each backward pass moves the dictionary.

    ``records``: one dict per alternation with ``"loss"``, ``"classification"``,
    ``"ridge_objective"`` and ``"dictionary_change"`` (``||D_after - D_before|| / ||D_before||``).
    """
    if not records:
        raise ValueError("plot_apus_steps needs at least one alternation")
    steps = np.arange(1, len(records) + 1)
    fig, (loss_ax, change_ax) = plt.subplots(1, 2, figsize=(12, 4.2))
    for key, label in [("loss", "total loss"), ("classification", "classification (BCE on A)"),
                       ("ridge_objective", "ridge objective (||F - AD||^2 + lambda||A||^2) / C, before x beta")]:
        loss_ax.plot(steps, [r[key] for r in records], marker="o", label=label)
    loss_ax.set(title="Forward: loss with A solved for the current D", xlabel="alternation", ylabel="value")
    loss_ax.legend(fontsize=9)
    change_ax.plot(steps, [100.0 * r["dictionary_change"] for r in records], marker="o", color="tab:purple")
    change_ax.set(title="Backward: relative change of D per update", xlabel="alternation",
                  ylabel="||D_after - D_before|| / ||D_before|| (%)")
    for ax in (loss_ax, change_ax):
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    fig.tight_layout()
    return _finish(fig, save_as)


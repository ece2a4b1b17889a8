"""Label groups: the graph coloured by the groups of each m, and the Diffpool assignment S (notebook 03)."""
from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import networkx as nx
import numpy as np
import seaborn as sns
from matplotlib.figure import Figure

from ..graph import LabelGraph
from .common import _finish, _label_fontsize, _to_numpy
from .graph import plot_label_graph


def plot_groups_for_m(graph: LabelGraph | nx.DiGraph, groups_by_m: Mapping[int, object],
                      titles: Mapping[int, str] | None = None,
                      group_names_by_m: Mapping[int, Sequence[str]] | None = None,
                      save_as: str | None = None) -> Figure:
    """The label graph once per number of groups m, nodes coloured by that m's groups, one panel a row
    (``group_names_by_m``: each m's legend names, e.g. ``score_groups(...)["group_names"]``).

    One column keeps each panel as wide as the notebook, so node labels stay legible (three
    graphs side by side shrink them to a third).
    """
    if not groups_by_m:
        raise ValueError("plot_groups_for_m needs the groups of at least one m")
    fig, axes = plt.subplots(len(groups_by_m), 1, figsize=(10, 7.0 * len(groups_by_m)), squeeze=False)
    for ax, (m, groups) in zip(axes[:, 0], groups_by_m.items()):
        plot_label_graph(graph, groups=groups, group_names=(group_names_by_m or {}).get(m), ax=ax)
        ax.set_title((titles or {}).get(m, f"m = {m}"), fontsize=13)
    fig.tight_layout()
    return _finish(fig, save_as)


def plot_assignment(assignment, class_names: Sequence[str], group_names: Sequence[str] | None = None,
                    save_as: str | None = None) -> Figure:
    """The Diffpool assignment S (n labels x m groups), rows sorted by their argmax group.

    Within a group, the labels most confidently assigned to it come first; lines separate
    the groups.
    """
    S = _to_numpy(assignment).astype(float)
    n, m = S.shape
    if len(class_names) != n:
        raise ValueError(f"{len(class_names)} class names for an assignment with {n} rows")
    group_names = list(group_names) if group_names is not None else [f"group {g}" for g in range(m)]
    best = S.argmax(axis=1)
    order = np.lexsort((-S[np.arange(n), best], best))
    fig, ax = plt.subplots(figsize=(min(12.0, 5.0 + 0.8 * m), min(14.0, max(4.0, 0.3 * n + 1.5))))
    sns.heatmap(S[order], ax=ax, cmap="Blues", vmin=0, vmax=1, annot=n * m <= 160, fmt=".2f",
                annot_kws={"fontsize": 8}, xticklabels=group_names,
                yticklabels=[class_names[i] for i in order], cbar_kws={"label": "S[label, group]"})
    for boundary in np.flatnonzero(np.diff(best[order])) + 1:
        ax.axhline(boundary, color="black", linewidth=1.5)
    ax.set_yticklabels(ax.get_yticklabels(), rotation=0, fontsize=_label_fontsize(n))
    ax.set_xticklabels(ax.get_xticklabels(), rotation=30, ha="right", rotation_mode="anchor")
    ax.set_xlabel("label group")
    ax.set_ylabel("label (sorted by argmax group)")
    ax.set_title("Diffpool assignment S: soft label-to-group memberships")
    fig.tight_layout()
    return _finish(fig, save_as)


"""The label graph: label statistics as heatmaps, the thresholded co-occurrence graph, how t
thins it, and a GAT layer's learned attention over its edges (notebooks 01 and 02)."""
from __future__ import annotations

import math
from typing import Sequence

import matplotlib.pyplot as plt
import networkx as nx
import numpy as np
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from .. import defaults
from ..graph import LabelGraph, edge_density, to_networkx
from .common import _finish, _label_fontsize, _to_numpy, class_colors


def plot_label_heatmap(matrix, class_names: Sequence[str], title: str, fmt: str | None = None,
                       cmap: str = "viridis", save_as: str | None = None) -> Figure:
    """An n x n label statistic as a heatmap: row = label i, column = label j.

    Use it for co-occurrence counts, the conditional probabilities P(j | i) or cosine
    similarities of label features. Cells are annotated when n <= 12 (``fmt`` defaults to
    ``"d"`` for integer matrices, ``".2f"`` otherwise).
    """
    matrix = _to_numpy(matrix)
    n = len(class_names)
    if matrix.shape != (n, n):
        raise ValueError(f"matrix has shape {matrix.shape}, expected {n} x {n} for {n} class names")
    if fmt is None:
        fmt = "d" if np.issubdtype(matrix.dtype, np.integer) else ".2f"
    side = min(12.0, max(6.0, 0.3 * n + 3.0))
    fig, ax = plt.subplots(figsize=(side + 1.5, side))
    sns.heatmap(matrix, ax=ax, cmap=cmap, annot=n <= 12, fmt=fmt, square=True,
                xticklabels=class_names, yticklabels=class_names, annot_kws={"fontsize": 8},
                cbar_kws={"shrink": 0.8})
    fontsize = _label_fontsize(n)
    ax.set_xticklabels(ax.get_xticklabels(), rotation=60, ha="right", rotation_mode="anchor", fontsize=fontsize)
    ax.set_yticklabels(ax.get_yticklabels(), rotation=0, fontsize=fontsize)
    ax.set_xlabel("label j")
    ax.set_ylabel("label i")
    ax.set_title(title)
    fig.tight_layout()
    return _finish(fig, save_as)


def _cluster_layout(G: nx.DiGraph, seed: int) -> dict:
    """Positions that keep clusters apart: each connected component gets its own spring layout
    (seeded, k above networkx's default) in a cell of a grid, largest first; labels without any
    edge go in rows below. (One spring layout of the whole graph pushes unconnected clusters to
    the corners and squashes each into a blob.)"""
    U = G.to_undirected()
    order = {v: i for i, v in enumerate(G.nodes)}
    components = sorted((sorted(c, key=order.get) for c in nx.connected_components(U)),
                        key=lambda c: (-len(c), order[c[0]]))
    cells = [c for c in components if len(c) > 1]
    isolated = [c[0] for c in components if len(c) == 1]
    ncols = max(1, math.ceil(math.sqrt(len(cells))))
    pos = {}
    for index, members in enumerate(cells):
        row, col = divmod(index, ncols)
        sub = nx.Graph()  # built node by node: a subgraph view's order would follow a set (hash seed)
        sub.add_nodes_from(members)
        sub.add_edges_from(U.subgraph(members).edges(data=True))
        local = nx.spring_layout(sub, k=1.5 / math.sqrt(len(members)), seed=seed, iterations=200,
                                 weight="weight")
        scale = min(1.2, 0.35 * math.sqrt(len(members)))  # small clusters stay small
        for v in members:
            pos[v] = np.array([3.0 * col, -3.0 * row]) + scale * np.asarray(local[v], dtype=float)
    top = -3.0 * math.ceil(len(cells) / ncols) + 1.0 if cells else 0.0
    per_row = max(3 * ncols + 1, math.ceil(math.sqrt(2 * len(isolated))))  # one label per unit of width
    for i, v in enumerate(isolated):
        row, col = divmod(i, per_row)
        pos[v] = np.array([-1.5 + col, top - 0.8 * row])
    return pos


def plot_label_graph(graph: LabelGraph | nx.DiGraph, groups=None, group_names: Sequence[str] | None = None,
                     layout_seed: int = 0, save_as: str | None = None, ax=None) -> Figure:
    """The thresholded co-occurrence graph (edges i -> j where P(j | i) >= t).

    Edge width grows with P(j | i); node size with the number of images holding the label.
    ``groups`` (n ints, e.g. the argmax of the Diffpool assignment or the ground-truth themes)
    colours the nodes, with a legend naming each group (``group_names``). Labels without any
    edge are still drawn. ``ax`` draws into a panel of another figure (returned, not saved).
    """
    G = to_networkx(graph) if isinstance(graph, LabelGraph) else graph
    nodes = list(G.nodes)
    n = len(nodes)
    pos = _cluster_layout(G, layout_seed)
    counts = np.array([G.nodes[v].get("count") or 0 for v in nodes], dtype=float)
    sizes = 250 + 1250 * counts / counts.max() if counts.max() > 0 else np.full(n, 600.0)
    sizes = sizes * min(1.0, math.sqrt(20 / max(n, 1)))  # smaller nodes when there are many labels

    own_figure = ax is None
    fig, ax = plt.subplots(figsize=(11, 9)) if own_figure else (ax.figure, ax)
    if groups is None:
        node_colors = ["#7aa6d6"] * n
    else:
        groups = _to_numpy(groups).astype(int).ravel()
        if len(groups) != n:
            raise ValueError(f"groups has {len(groups)} entries for {n} labels")
        palette = class_colors(int(groups.max()) + 1)
        node_colors = [palette[g] for g in groups]
        names = list(group_names or [])
        names += [f"group {g}" for g in range(len(names), len(palette))]
        handles = [Line2D([], [], marker="o", linestyle="", markersize=10, color=palette[g], label=names[g])
                   for g in sorted(set(groups.tolist()))]
        ax.legend(handles=handles, title="label group", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    edges = list(G.edges(data="weight"))
    nx.draw_networkx_nodes(G, pos, ax=ax, node_size=sizes, node_color=node_colors,
                           edgecolors="black", linewidths=0.5)
    nx.draw_networkx_edges(G, pos, ax=ax, edgelist=[(u, v) for u, v, _ in edges],
                           width=[5.0 * w for _, _, w in edges], edge_color="gray", alpha=0.6,
                           arrows=True, arrowstyle="-|>", arrowsize=12, node_size=sizes,
                           connectionstyle="arc3,rad=0.1")
    nx.draw_networkx_labels(G, pos, ax=ax, font_size=9 if n <= 40 else 7,
                            bbox=dict(facecolor="white", edgecolor="none", alpha=0.7, pad=0.5))
    isolated = [v for v in nodes if G.degree(v) == 0]
    if isolated and len(isolated) < n:
        y_top = max(pos[v][1] for v in isolated)
        ax.text(min(p[0] for p in pos.values()), y_top + 0.5, f"labels without an edge ({len(isolated)}):",
                fontsize=10, style="italic")
    t = G.graph.get("t")
    ax.set_title(f"Label co-occurrence graph ({G.number_of_edges()} directed edges"
                 + (f", t = {t:g}" if t is not None else "") + ")\n"
                 "edge width ~ P(j | i), node size ~ number of images with the label")
    ax.axis("off")
    ax.margins(0.08)
    if not own_figure:
        return fig
    fig.tight_layout()
    return _finish(fig, save_as)


def plot_edge_density(probabilities, thresholds: Sequence[float] | None = None, highlight_t: float | None = defaults.T,
                      save_as: str | None = None) -> Figure:
    """Number of directed edges (left axis) and density (right axis) versus the threshold t.

    ``probabilities`` is the matrix P(j | i) (or a :class:`LabelGraph`). A dashed line marks
    ``highlight_t`` (default: ML-GCN's t = 0.4; None draws no line).
    """
    P = probabilities.probabilities if isinstance(probabilities, LabelGraph) else _to_numpy(probabilities)
    thresholds = np.round(np.arange(0.05, 1.0001, 0.05), 2) if thresholds is None else np.asarray(thresholds)
    num_edges, _ = edge_density(P, thresholds)
    n = P.shape[0]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    ax.plot(thresholds, num_edges, marker="o", color="tab:blue")
    ax.set_xlabel("threshold t (edge i -> j when P(j | i) >= t)")
    ax.set_ylabel("directed edges", color="tab:blue")
    density_ax = ax.twinx()
    possible = max(n * (n - 1), 1)
    density_ax.set_ylim(ax.get_ylim()[0] / possible, ax.get_ylim()[1] / possible)  # same curve, 2nd scale
    density_ax.set_ylabel(f"density (edges / n(n-1), n = {n})")
    if highlight_t is not None:
        edges_at, density_at = edge_density(P, [highlight_t])
        ax.axvline(highlight_t, color="tab:red", linestyle="--",
                   label=f"t = {highlight_t:g}: {edges_at[0]} edges, density {density_at[0]:.3f}")
        ax.legend(loc="upper right")
    ax.set_title("How the threshold t thins the label graph")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _finish(fig, save_as)


def plot_attention_graph(attention, mask, class_names: Sequence[str], groups, group_names: Sequence[str],
                         inner: Sequence[str] = (), order: Sequence[str] | None = None, layer: int = 2,
                         save_as: str | None = None) -> Figure:
    """A GAT layer's learned attention as a directed graph: an arrow j -> i for every edge of the
    mask (j's message into i), its width and colour alpha_ij (eq. 2).

    ``attention``: alpha (n x n); ``mask``: the GAT mask (n x n, self loops not drawn); ``groups``
    (n ints) colours the nodes, ``group_names`` names them in the legend. The classes in ``inner``
    (e.g. the hub and bridge classes) sit on an inner circle, the others on an outer one, in the
    order of ``order`` (default: ``class_names``). The strongest edges are drawn last, on top.
    """
    from matplotlib.colors import Normalize

    alpha, mask = _to_numpy(attention), _to_numpy(mask).astype(bool)
    class_names = list(class_names)
    G = nx.DiGraph()
    G.add_nodes_from(class_names)
    for i, j in zip(*np.nonzero(mask)):
        if i != j:
            G.add_edge(class_names[j], class_names[i], weight=float(alpha[i, j]))  # j's message into i
    inner = list(inner)
    others = [c for c in (order if order is not None else class_names) if c not in inner]
    pos = nx.shell_layout(G, nlist=[inner, others] if inner else [others])

    palette = class_colors(len(group_names))
    edges = sorted(G.edges(data="weight"), key=lambda edge: edge[2])  # strongest drawn last, on top
    weights = np.array([w for _, _, w in edges])
    norm = Normalize(vmin=0.0, vmax=float(weights.max()) if len(weights) else 1.0)
    cmap = plt.get_cmap("viridis")
    fig, ax = plt.subplots(figsize=(12, 11))
    nx.draw_networkx_edges(G, pos, ax=ax, edgelist=[(u, v) for u, v, _ in edges], width=0.5 + 8.0 * norm(weights),
                           edge_color=[cmap(norm(w)) for w in weights], alpha=0.85, arrows=True, arrowstyle="-|>",
                           arrowsize=10, node_size=900, connectionstyle="arc3,rad=0.12")
    nx.draw_networkx_nodes(G, pos, ax=ax, node_size=900, edgecolors="black", linewidths=0.5,
                           node_color=[palette[groups[class_names.index(v)]] for v in G.nodes])
    nx.draw_networkx_labels(G, pos, ax=ax, font_size=9,
                            bbox=dict(facecolor="white", edgecolor="none", alpha=0.7, pad=0.5))
    fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, shrink=0.6, label=f"alpha_ij (layer {layer})")
    ax.legend(handles=[plt.Line2D([], [], marker="o", linestyle="", markersize=10, color=palette[g], label=name)
                       for g, name in enumerate(group_names)], title="theme", loc="upper left")
    ax.set_title(f"Learned GAT attention (layer {layer}): arrow j -> i, width and colour = alpha_ij")
    ax.axis("off")
    fig.tight_layout()
    return _finish(fig, save_as)


"""Every figure of the tutorial, saved through one helper.

Each plotting function returns a :class:`matplotlib.figure.Figure` (notebooks display it; no
``plt.show()`` here) and, when ``save_as="name"`` is given, also writes it with
:func:`save_figure` to ``<FIGURES_DIR>/name.png``.

- :func:`save_figure`          the single place that writes a figure (stable, palette PNG bytes)
- :func:`use_compact_inline_figures` the same compact PNGs for figures shown in a notebook
- :func:`plot_samples`         images with their label names and their object boxes
- :func:`plot_label_heatmap`   an n x n label statistic: counts, P(j | i), cosine similarity
- :func:`plot_label_graph`     the thresholded co-occurrence graph, coloured by label group
- :func:`plot_groups_for_m`    that graph once per number of groups m (one panel a row)
- :func:`plot_branch_statistics` how focused each attention branch is, and where it points
- :func:`plot_edge_density`    number of directed edges (and density) versus the threshold t
- :func:`plot_assignment`      the Diffpool assignment S (n labels x m groups)
- :func:`plot_per_class_ap`    per-class AP of several models side by side
- :func:`plot_attention_maps`  semantic guided attention of each branch over one image (one colour scale)
- :func:`plot_pointing_game`   pointing-game hit rates of several maps beside their baselines and ceilings
- :func:`plot_training_curves` training loss and validation mAP per epoch
- :func:`plot_metrics_bars`    mAP / CF1 / OF1 ... of several models
- :func:`plot_seed_bars`       one metric per setting over several seeds: mean, spread, each seed
- :func:`plot_loss_gradient_norms`  both loss terms' gradient norms over the first steps

``FIGURES_DIR`` is ``figures/`` at the repository root when running from a checkout, else
``./figures``; the environment variable ``MSRN_FIGURES_DIR`` overrides it. In small mode (the
smoke-test size, from any client: the runner, JupyterLab, papermill, nbmake) figures go to
``runs/notebooks/small/figures`` instead, so that a smoke test never overwrites a committed figure.
"""
from __future__ import annotations

import io
import math
import os
import textwrap
from pathlib import Path
from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import networkx as nx
import numpy as np
import seaborn as sns
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

from . import defaults
from .graph import LabelGraph, edge_density, to_networkx
from .label_features import cosine_similarity_matrix

__all__ = [
    "FIGURES_DIR",
    "class_colors",
    "plot_assignment",
    "plot_attention_maps",
    "plot_branch_statistics",
    "plot_groups_for_m",
    "plot_pointing_game",
    "plot_seed_bars",
    "plot_loss_gradient_norms",
    "relative_to_flat",
    "plot_edge_density",
    "plot_label_graph",
    "plot_label_heatmap",
    "plot_metrics_bars",
    "plot_per_class_ap",
    "plot_samples",
    "plot_training_curves",
    "figures_dir",
    "save_figure",
]


def _default_figures_dir() -> Path:
    """``MSRN_FIGURES_DIR`` if set, else the checkout's ``figures/``, else ``./figures``."""
    if os.environ.get("MSRN_FIGURES_DIR"):
        return Path(os.environ["MSRN_FIGURES_DIR"])
    root = Path(__file__).resolve().parents[1]
    return root / "figures" if (root / "pyproject.toml").exists() else Path.cwd() / "figures"


FIGURES_DIR = _default_figures_dir()


def small_figures_dir() -> Path:
    """Where small mode's figures go: beside the runs, never into the committed ``figures/``."""
    from .utils import project_root

    return project_root() / "runs" / "notebooks" / "small" / "figures"


def figures_dir() -> Path:
    """Where figures go now (read at call time): ``MSRN_FIGURES_DIR`` if set, else
    :func:`small_figures_dir` in small mode (``recipes.small_mode_requested``), else :data:`FIGURES_DIR`."""
    from .running.recipes import small_mode_requested

    if os.environ.get("MSRN_FIGURES_DIR"):
        return Path(os.environ["MSRN_FIGURES_DIR"])
    return small_figures_dir() if small_mode_requested() else FIGURES_DIR


# --------------------------------------------------------------------------- saving
INLINE_DPI = 80  # figures shown inside a notebook: readable at notebook width, light to store


def figure_png(fig: Figure, dpi: int = 120) -> bytes:
    """``fig`` as a compact PNG: rendered at ``dpi``, flattened to RGB and stored with a 256-colour
    palette (no dithering). Plots and the noisy scene images alike shrink about four-fold against
    matplotlib's RGBA PNG with no visible change; the same figure always gives the same bytes."""
    from PIL import Image

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight", facecolor="white")
    with Image.open(buffer) as image:
        palette = image.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    out = io.BytesIO()
    palette.save(out, format="PNG", optimize=True)
    return out.getvalue()


def save_figure(fig: Figure, name: str, directory: str | Path | None = None, dpi: int = 120) -> Path:
    """Save ``fig`` as ``<directory>/<name>.png`` (a :func:`figure_png`) and return that path.

    ``directory`` defaults to :func:`figures_dir` (small mode never writes into ``figures/``).
    The PNG carries no matplotlib version, so saving the same figure again gives the same bytes
    and committed figures only change when the picture does. The figure is closed in pyplot (it
    can still be displayed, changed and saved again), so a notebook stores it once.
    """
    name = str(name)
    if name.lower().endswith(".png"):
        name = name[:-4]
    if not name:
        raise ValueError("save_figure needs a non-empty file name")
    if directory is None:
        directory = figures_dir()
    path = Path(directory) / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(figure_png(fig, dpi))
    plt.close(fig)  # finished: shown once by the cell that displays or returns it, not again at its end
    return path


def use_compact_inline_figures(dpi: int = INLINE_DPI) -> bool:
    """Show figures in this IPython kernel as :func:`figure_png` at ``dpi`` (notebooks stay light).

    Replaces the inline backend's PNG formatter for figures. The backend installs its own when
    pyplot first loads it (at the first figure), so that is done here first. Returns False
    outside IPython.
    """
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    if shell is None or not hasattr(shell, "display_formatter"):
        return False
    import base64

    plt.close(plt.figure())  # loads the backend now: its formatter set-up must not come after ours
    formatters = shell.display_formatter.formatters
    for mime in ("image/svg+xml", "image/jpeg", "application/pdf"):  # one image per figure, PNG
        formatters[mime].pop(Figure, None)
    formatters["image/png"].for_type(Figure, lambda fig: base64.b64encode(figure_png(fig, dpi)).decode("ascii"))
    return True


def _finish(fig: Figure, save_as: str | None) -> Figure:
    """Save the figure when ``save_as`` is given; return it, closed in pyplot.

    Closed, the figure is shown once: by the cell that displays or returns it, never a second
    time by the inline backend at the end of the cell (a figure stored twice in the notebook).
    """
    if save_as:
        save_figure(fig, save_as)
    plt.close(fig)
    return fig


# --------------------------------------------------------------------------- small helpers
def _to_numpy(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().float().numpy()
    return np.asarray(x)


def class_colors(n: int) -> list:
    """n distinct colours (tab10 / tab20, then a sampled hue wheel), one per class or group."""
    if n <= 10:
        return list(plt.get_cmap("tab10").colors[:n])
    if n <= 20:
        return list(plt.get_cmap("tab20").colors[:n])
    return [plt.get_cmap("hsv")(i / n) for i in range(n)]


def _label_fontsize(n: int) -> float:
    """Tick-label font size that keeps n labels legible without overlapping."""
    return 10 if n <= 20 else 8 if n <= 40 else 6


def _draw_boxes(ax, boxes, class_names: Sequence[str], colors, only_class: int | None = None):
    """Rectangles (class_idx, x0, y0, x1, y1) in image pixels, with the class name on top."""
    for class_idx, x0, y0, x1, y1 in boxes:
        class_idx = int(class_idx)
        if only_class is not None and class_idx != only_class:
            continue
        color = colors[class_idx % len(colors)]
        ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor=color, linewidth=2))
        ax.text(x0, y0, class_names[class_idx], fontsize=7, color="white", va="bottom",
                bbox=dict(facecolor=color, edgecolor="none", pad=1, alpha=0.85))


# --------------------------------------------------------------------------- data
def plot_samples(dataset, indices: Sequence[int], ncols: int = 4, show_boxes: bool = True,
                 save_as: str | None = None) -> Figure:
    """A grid of images (``dataset.load_image(i)``) titled with their label names.

    When the dataset has ``.boxes`` (one list of ``(class_idx, x0, y0, x1, y1)`` per image)
    and ``show_boxes`` is true, every object is framed in its class colour.
    """
    indices = list(indices)
    if not indices:
        raise ValueError("plot_samples needs at least one image index")
    ncols = max(1, min(ncols, len(indices)))
    nrows = math.ceil(len(indices) / ncols)
    size = min(3.0, 12.0 / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, (size + 0.5) * nrows), squeeze=False)
    colors = class_colors(len(dataset.class_names))
    boxes = getattr(dataset, "boxes", None) if show_boxes else None
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, indices):
        image = dataset.load_image(i)
        names = [dataset.class_names[c] for c in np.flatnonzero(dataset.labels[i])]
        ax.set_title(textwrap.fill(", ".join(names) or "(no label)", width=int(9 * size)), fontsize=9)
        if image is None:
            ax.text(0.5, 0.5, f"image {i}\nunreadable", ha="center", va="center", transform=ax.transAxes)
            continue
        ax.imshow(image)
        if boxes is not None:
            _draw_boxes(ax, boxes[i], dataset.class_names, colors)
    fig.tight_layout()
    return _finish(fig, save_as)


# --------------------------------------------------------------------------- label graph
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


def plot_groups_for_m(graph: LabelGraph | nx.DiGraph, groups_by_m: Mapping[int, object],
                      titles: Mapping[int, str] | None = None, save_as: str | None = None) -> Figure:
    """The label graph once per number of groups m, nodes coloured by that m's groups, one panel a row.

    One column keeps each panel as wide as the notebook, so node labels stay legible (three
    graphs side by side shrink them to a third).
    """
    if not groups_by_m:
        raise ValueError("plot_groups_for_m needs the groups of at least one m")
    fig, axes = plt.subplots(len(groups_by_m), 1, figsize=(10, 7.0 * len(groups_by_m)), squeeze=False)
    for ax, (m, groups) in zip(axes[:, 0], groups_by_m.items()):
        plot_label_graph(graph, groups=groups, ax=ax)
        ax.set_title((titles or {}).get(m, f"m = {m}"), fontsize=13)
    fig.tight_layout()
    return _finish(fig, save_as)


def plot_branch_statistics(stats, save_as: str | None = None) -> Figure:
    """Semantic guided attention per branch (the rows of ``stats``, named like "layer2 (8x8)").

    ``stats`` has the columns "peak ratio" (HW * max a: 1 for flat attention, HW for all weight on
    one cell), "mass in boxes", "box area share (= chance)", "pointing hit" and "centre baseline".
    The peak ratio is drawn as a marker with its value on a log axis whose bars start at 1 (flat
    attention), so a ratio near 1 stays visible; legends sit below the panels, over no bar.
    """
    names = [str(name) for name in stats.index]
    cells = [int(name.split("(")[1].split("x")[0]) ** 2 for name in names]  # HW of each branch
    x = np.arange(len(names))
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.8))

    ax = axes[0]
    ratio = np.asarray(stats["peak ratio"], dtype=float)
    ax.bar(x, np.asarray(cells, dtype=float) - 1.0, bottom=1.0, width=0.6, color="lightgray",
           label="all weight on one cell (= HW)")
    ax.bar(x, np.maximum(ratio - 1.0, 0.0), bottom=1.0, width=0.3, color="tab:blue")
    ax.plot(x, ratio, "o", color="tab:blue", markersize=8, label="peak ratio HW * max a")
    for xi, value in zip(x, ratio):
        ax.annotate(f"{value:.2f}", (xi, value), xytext=(9, 6), textcoords="offset points", va="bottom",
                    fontsize=9, color="tab:blue")
    ax.axhline(1.0, color="black", linestyle="--", linewidth=1, label="flat attention (= 1)")
    ax.set(title="how focused: peak ratio (log scale)", yscale="log", ylim=(0.8, max(cells) * 1.5))

    ax = axes[1]
    ax.bar(x - 0.2, stats["mass in boxes"], width=0.4, color="tab:blue", label="attention mass in boxes")
    ax.bar(x + 0.2, stats["box area share (= chance)"], width=0.4, color="tab:orange",
           label="box area share (flat attention)")
    ax.set(title="attention inside the label's boxes")

    ax = axes[2]
    ax.bar(x - 0.2, stats["pointing hit"], width=0.4, color="tab:blue", label="pointing game: hit rate")
    ax.bar(x + 0.2, stats["box area share (= chance)"], width=0.4, color="tab:orange",
           label="chance (random point)")
    ax.axhline(float(np.asarray(stats["centre baseline"])[0]), color="black", linestyle="--", linewidth=1,
               label="always the image centre")
    ax.set(title="pointing game: the most attended cell's centre in a box", ylim=(0, 1.05))

    for ax in axes:
        ax.set_xticks(x)
        ax.set_xticklabels(names, fontsize=9)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.1), frameon=False)
    fig.suptitle("Semantic guided attention per branch, averaged over test images and true labels")
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


# --------------------------------------------------------------------------- results
def _ap_values(values, class_names: Sequence[str]) -> np.ndarray:
    """Per-class AP as a float array in class order (None -> nan), from a dict or a sequence."""
    if isinstance(values, Mapping):
        values = [values.get(name) for name in class_names]
    elif isinstance(values, torch.Tensor):
        values = values.tolist()
    return np.array([np.nan if v is None else float(v) for v in values], dtype=float)


def plot_per_class_ap(results: Mapping[str, object], class_names: Sequence[str],
                      save_as: str | None = None) -> Figure:
    """Per-class AP (%) of several models as grouped horizontal bars, one colour per model.

    ``results`` maps a model name to its ``per_class_ap`` (the dict of
    :func:`~msrn_core.metrics.compute_all_metrics`, or an array in class order). A class whose
    AP is undefined (no positive example: None / nan) gets an "x" instead of a bar. The legend
    gives each model's mAP, the mean over the defined classes.
    """
    n, k = len(class_names), len(results)
    if k == 0:
        raise ValueError("plot_per_class_ap needs at least one model")
    height = 0.8 / k
    colors = class_colors(k)
    fig, ax = plt.subplots(figsize=(10, min(24.0, max(4.0, 0.12 * n * k + 0.2 * n + 1.5))))
    y = np.arange(n)
    any_missing = False
    for j, (name, values) in enumerate(results.items()):
        ap = 100.0 * _ap_values(values, class_names)
        if len(ap) != n:
            raise ValueError(f"{name}: {len(ap)} AP values for {n} classes")
        offset = y - 0.4 + height * (j + 0.5)
        mean = np.nanmean(ap) if np.isfinite(ap).any() else np.nan
        label = f"{name} (mAP {mean:.1f}%)" if np.isfinite(mean) else f"{name} (mAP n/a)"
        ax.barh(offset, np.nan_to_num(ap), height=height, color=colors[j], label=label)
        missing = np.isnan(ap)
        if missing.any():
            any_missing = True
            ax.plot(np.full(missing.sum(), 1.5), offset[missing], "x", color=colors[j], markersize=7, mew=2)
    handles, _ = ax.get_legend_handles_labels()
    if any_missing:
        handles.append(Line2D([], [], marker="x", linestyle="", color="black", mew=2,
                              label="AP undefined (no positive)"))
    ax.set_yticks(y)
    ax.set_yticklabels(class_names, fontsize=_label_fontsize(n))
    ax.set_ylim(n - 0.5, -0.5)  # first class on top
    ax.set_xlim(0, 100)
    ax.set_xlabel("average precision (%)")
    ax.set_title("Per-class average precision")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return _finish(fig, save_as)


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


def plot_metrics_bars(results: Mapping[str, Mapping], metrics: Sequence[str] = ("mAP", "CF1", "OF1"),
                      save_as: str | None = None) -> Figure:
    """Grouped bars: one group per metric, one bar (and colour) per model, values in percent.

    ``results`` maps a model name to a metrics dict (fractions, as
    :func:`~msrn_core.metrics.compute_all_metrics` returns); a missing metric shows "n/a".
    """
    k = len(results)
    if k == 0:
        raise ValueError("plot_metrics_bars needs at least one model")
    width = 0.8 / k
    colors = class_colors(k)
    x = np.arange(len(metrics))
    upright = k >= 3
    fig, ax = plt.subplots(figsize=(min(12.0, max(8.0, 1.0 + 0.5 * k * len(metrics))), 5))
    for j, (name, values) in enumerate(results.items()):
        heights = [100.0 * v if isinstance(v, (int, float)) else np.nan
                   for v in (values.get(metric) for metric in metrics)]
        bars = ax.bar(x - 0.4 + width * (j + 0.5), np.nan_to_num(heights), width=width, color=colors[j],
                      label=name)
        # Side by side, three or more labels per group overlap ("18.618.4"): stand them upright.
        ax.bar_label(bars, labels=["n/a" if np.isnan(h) else f"{h:.1f}" for h in heights], fontsize=8, padding=2,
                     rotation=90 if upright else 0)
    ax.set_xticks(x)
    ax.set_xticklabels(metrics)
    ax.set_ylim(0, 118 if upright else 108)
    ax.set_ylabel("score (%)")
    ax.set_title("Model comparison")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return _finish(fig, save_as)


def plot_seed_bars(results: Mapping[str, Sequence[float]], reference: Mapping[str, float] | None = None,
                   metric: str = "test mAP", title: str | None = None, save_as: str | None = None) -> Figure:
    """One column per setting: a dot per seed, the mean (a bar-shaped marker) and one standard deviation.

    ``results``: setting -> values (fractions), one per seed, e.g. the test mAPs of the trained
    ablation study. A setting with a single seed gets no error bar. ``reference`` (setting -> a
    percentage, e.g. the paper's VOC 2007 mAP) is written under the setting's name. The axis
    spans the values, not 0-100, so there are no bars: a bar cut off below would exaggerate the
    gaps; the axis label says where it starts.
    """
    if not results:
        raise ValueError("plot_seed_bars needs at least one setting with values")
    names = list(results)
    values = [100.0 * np.asarray(results[name], dtype=float) for name in names]
    if any(len(v) == 0 for v in values):
        raise ValueError("every setting of plot_seed_bars needs at least one seed's value")
    means = np.array([v.mean() for v in values])
    spreads = np.array([v.std(ddof=1) if len(v) > 1 else 0.0 for v in values])
    fig, ax = plt.subplots(figsize=(max(6.0, 1.4 * len(names) + 1.5), 4.8))
    x = np.arange(len(names))
    for i, (mean, spread, v, color) in enumerate(zip(means, spreads, values, class_colors(len(names)))):
        if len(v) > 1:
            ax.errorbar(x[i], mean, yerr=spread, fmt="none", capsize=6, color=color)
        ax.plot([x[i]], [mean], marker="_", markersize=28, markeredgewidth=3, color=color, gid="mean")
        ax.plot(np.full(len(v), x[i]) + np.linspace(-0.15, 0.15, len(v)), v, "o", color="black", markersize=4)
        ax.annotate(f"{mean:.1f}" + (f" ± {spread:.1f}" if len(v) > 1 else ""), (x[i], max(v.max(), mean + spread)),
                    xytext=(0, 8), textcoords="offset points", ha="center", fontsize=9)
    labels = [f"{name}\n({len(v)} seed{'s' if len(v) > 1 else ''})" for name, v in zip(names, values)]
    if reference:
        labels = [label + (f"\npaper {reference[name]:.2f}" if name in reference else "")
                  for label, name in zip(labels, names)]
    ax.set_xticks(x)
    ax.set_xticklabels(labels, fontsize=9)
    ax.set_xlim(-0.6, len(names) - 0.4)
    low = min(float(v.min()) for v in values)
    high = max(float(v.max()) for v in values)
    margin = max(1.0, 0.15 * (high - low))
    ax.set_ylim(max(0.0, low - margin), min(100.0, high + 2 * margin))
    ax.set_ylabel(f"{metric} (%; the axis does not start at 0)")
    ax.set_title(title or f"{metric}: mean ± sd over seeds (dots: single seeds)")
    ax.grid(axis="y", alpha=0.3)
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


# --------------------------------------------------------------------------- attention
def _image_array(image) -> np.ndarray:
    """A PIL image or a (3, H, W) tensor / array in [0, 1] as an H x W x 3 float array."""
    if isinstance(image, (torch.Tensor, np.ndarray)):
        array = _to_numpy(image).astype(float)
        if array.ndim != 3 or array.shape[0] not in (1, 3):
            raise ValueError(f"image tensor must be (3, H, W), got shape {array.shape}")
        array = np.repeat(array, 3 // array.shape[0], axis=0)  # grey (1, H, W) -> 3 channels
        return np.clip(np.moveaxis(array, 0, -1), 0.0, 1.0)  # denormalize() normalised tensors first
    return np.asarray(image.convert("RGB"), dtype=float) / 255.0


def plot_pointing_game(rates: Mapping[str, float], centre: float, random: float,
                       ceilings: Mapping[str, float] | None = None, num_trials: int | None = None,
                       title: str | None = None, save_as: str | None = None) -> Figure:
    """Pointing-game hit rates (%) of several maps beside the image-centre and random-point baselines.

    ``rates``: map name -> hit rate (a fraction), e.g. MSRN's branches and a plain ResNet's CAM
    (:func:`msrn_core.attention.pointing_game_score`); ``ceilings``: map name -> the share of
    trials a map on that grid can hit at all, drawn as a black tick above the bar. Dashed lines
    carry both baselines across the figure.
    """
    if not rates:
        raise ValueError("plot_pointing_game needs at least one map's hit rate")
    names = [*rates, "image centre", "random point"]
    values = [100.0 * float(v) for v in rates.values()] + [100.0 * centre, 100.0 * random]
    colors = [*class_colors(len(rates)), "darkgray", "lightgray"]
    fig, ax = plt.subplots(figsize=(max(7.0, 1.3 * len(names) + 1.5), 4.8))
    x = np.arange(len(names))
    bars = ax.bar(x, values, color=colors)
    ax.bar_label(bars, labels=[f"{v:.1f}" for v in values], padding=2, fontsize=9)
    for value, style, label in ((centre, "--", "image centre"), (random, ":", "random point")):
        ax.axhline(100.0 * value, color="gray", linestyle=style, linewidth=1, label=label)
    if ceilings:
        xs = [i for i, name in enumerate(rates) if name in ceilings]
        ax.plot(xs, [100.0 * ceilings[names[i]] for i in xs], "_", color="black", markersize=28, mew=2.5,
                label="ceiling of the map's grid")
    ax.set_xticks(x)
    ax.set_xticklabels([textwrap.fill(n, 14) for n in names], fontsize=9)
    ax.set(ylabel="pointing-game hit rate (%)", ylim=(0, 105))
    ax.set_title(title or "Does the map point at the label's object?"
                 + (f"\n({num_trials} (image, true label) trials)" if num_trials else ""))
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    return _finish(fig, save_as)


def relative_to_flat(attention_map) -> torch.Tensor:
    """A non-negative map divided by its mean: 1 everywhere for a flat map, ``hw`` on the only
    non-zero cell of a one-hot one. For an SGA attention map (it sums to 1) this is ``hw * a``.

    This is the one scale every attention figure uses, so maps of grids of different sizes, and
    of different models, compare directly. A map that is zero everywhere counts as flat.
    """
    values = torch.as_tensor(attention_map).detach().float().cpu()
    if (values < 0).any():
        raise ValueError("relative_to_flat needs a non-negative map: pass relu(CAM) or an attention map")
    mean = values.mean(dim=(-2, -1), keepdim=True)
    return torch.where(mean > 0, values / mean.clamp_min(1e-30), torch.ones_like(values))


def _map_rows(branch, what: str) -> torch.Tensor:
    branch = torch.as_tensor(branch).detach().float().cpu()
    if branch.ndim == 4 and branch.shape[0] == 1:
        branch = branch[0]
    if branch.ndim != 3:
        raise ValueError(f"each {what} must be (rows, h, w) for one image, got {tuple(branch.shape)}")
    return branch


def plot_attention_maps(image, attention_maps: Sequence, class_names: Sequence[str], labels: Sequence[int],
                        branch_stages: Sequence[int], scores=None, boxes=None, cam=None,
                        cam_title: str = "plain ResNet: CAM", title: str | None = None,
                        save_as: str | None = None) -> Figure:
    """Where each branch looks for each label: one row per label, columns = image + branches (+ CAM).

    Args:
        image: a PIL image or a (3, H, W) tensor in [0, 1] (use ``data.denormalize`` first).
        attention_maps: one entry per branch, each (rows, h, w) for ONE image (e.g.
            ``details["label_attention"][k][b]``); a leading batch axis of size 1 is accepted.
        class_names: names of the attention rows.
        labels: the rows to show (indices, or names from ``class_names``).
        branch_stages: the backbone stage of each branch (``details["branch_stages"]``).
        scores: optional per-label probabilities, shown next to the class name.
        boxes: optional ``(class_idx, x0, y0, x1, y1)`` boxes in image pixels; each row shows
            the boxes of its own class on the image.
        cam: optional class activation maps of another model for the same image (rows, h, w),
            e.g. a plain ResNet's ``details["class_activation_map"][b]``, drawn in a last column
            as ``relu(CAM)`` (where the evidence for the label is).

    Every map is bilinearly upsampled to the image size, divided by its mean
    (:func:`relative_to_flat`: 1 = a flat map) and overlaid on **one colour scale for the whole
    figure**, from 0 to the largest value shown, with a colour bar: a flat map looks flat.
    """
    if len(attention_maps) != len(branch_stages):
        raise ValueError(f"got {len(attention_maps)} attention maps but {len(branch_stages)} branch_stages "
                         f"{list(branch_stages)}: pass one map per branch, in the same order")
    labels = [list(class_names).index(c) if isinstance(c, str) else int(c) for c in labels]
    if not labels:
        raise ValueError("labels must name at least one label row to show")
    picture = _image_array(image)
    height, width = picture.shape[:2]
    columns = [(f"layer{stage} ({branch.shape[-2]}x{branch.shape[-1]})", branch)
               for stage, branch in zip(branch_stages, (_map_rows(b, "attention map") for b in attention_maps))]
    if cam is not None:
        cam = _map_rows(cam, "class activation map").clamp_min(0.0)
        columns.append((f"{cam_title} ({cam.shape[-2]}x{cam.shape[-1]})", cam))
    overlays = [[F.interpolate(relative_to_flat(branch[c])[None, None], size=(height, width), mode="bilinear",
                               align_corners=False)[0, 0].numpy() for _, branch in columns] for c in labels]
    vmax = max(1.0, max(float(o.max()) for row in overlays for o in row))
    scores = None if scores is None else _to_numpy(scores).ravel()
    colors = class_colors(len(class_names))

    ncols = 1 + len(columns)
    cell = min(2.8, 13.0 / ncols)
    fig, axes = plt.subplots(len(labels), ncols, figsize=(cell * ncols + 0.8, cell * len(labels) + 0.5),
                             squeeze=False)
    for row, c in enumerate(labels):
        axes[row, 0].imshow(picture)
        if boxes is not None:
            _draw_boxes(axes[row, 0], boxes, class_names, colors, only_class=c)
        name = class_names[c] + (f"\np = {scores[c]:.2f}" if scores is not None else "")
        axes[row, 0].set_ylabel(name, fontsize=10)
        for col, ((heading, _), overlay) in enumerate(zip(columns, overlays[row]), start=1):
            axes[row, col].imshow(picture)
            shown = axes[row, col].imshow(overlay, cmap="magma", alpha=0.6, vmin=0.0, vmax=vmax)
            if row == 0:
                axes[row, col].set_title(textwrap.fill(heading, 24), fontsize=9)
    axes[0, 0].set_title("image", fontsize=10)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title or "Semantic guided attention per branch (one colour scale: 1 = a flat map)", fontsize=11)
    fig.tight_layout()
    bar = fig.colorbar(shown, ax=axes.ravel().tolist(), shrink=0.8, pad=0.02)
    bar.solids.set_alpha(1.0)
    bar.set_label("weight / mean weight (1 = flat)")
    return _finish(fig, save_as)


# =========================================================================== zero-shot (SDL)
# Figures of notebook 08: how unseen tags relate to seen ones, and SDL's principal vectors.
__all__ += ["plot_principal_vectors", "plot_unseen_similarity"]

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


# =========================================================================== semantic dictionary (DSDL)
# Figures of notebook 07: the dictionary DSDL builds from the label vectors, the coefficients
# that represent an image with it, and its alternating updates (APUS) step by step.
__all__ += ["plot_apus_steps", "plot_coefficients", "plot_dictionary_atoms"]


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

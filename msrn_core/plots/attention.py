"""Where the model looks: semantic guided attention per branch and per label, on one colour scale,
and the pointing game against its baselines (notebooks 04 and 06)."""
from __future__ import annotations

import textwrap
from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

from .common import _draw_boxes, _finish, _image_array, _to_numpy, class_colors


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
    figure**, from 0 to the largest value shown, with a colour bar: a flat map looks flat. The scale
    is this image's (its colour bar says so): two figures of different images have different scales.
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
    return _finish_map_grid(fig, axes, shown, title or "Semantic guided attention per branch "
                                                     "(one colour scale: 1 = a flat map)", save_as,
                            bar_label=f"weight / mean weight (1 = flat)\nthis image's scale: 0 to {vmax:.1f}")


def _finish_map_grid(fig: Figure, axes, shown, title: str, save_as: str | None,
                     bar_label: str = "weight / mean weight (1 = flat)") -> Figure:
    """No ticks, the title, and one colour bar for the whole grid of overlays (``shown``: the last one)."""
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    bar = fig.colorbar(shown, ax=axes.ravel().tolist(), shrink=0.8, pad=0.02)
    bar.solids.set_alpha(1.0)
    bar.set_label(bar_label)
    return _finish(fig, save_as)



def plot_map_comparison(images: Sequence, maps: Sequence[Mapping[str, object]], row_titles: Sequence[str],
                        boxes: Sequence | None = None, classes: Sequence[int] | None = None,
                        class_names: Sequence[str] | None = None, title: str | None = None,
                        save_as: str | None = None) -> Figure:
    """Several maps of the same image side by side, one row per (image, label), on one colour scale.

    Args:
        images: one image per row (a PIL image or a (3, H, W) tensor in [0, 1]).
        maps: one mapping per row, column title -> a non-negative h x w map of that row's label
            (an attention map, or ``relu`` of a class activation map); every row has the same
            columns, in the same order, and the grids may differ from column to column.
        row_titles: the name of each row (e.g. the label and its image).
        boxes, classes, class_names: optional ``(class_idx, x0, y0, x1, y1)`` boxes per row, and
            the class of each row whose boxes are drawn on its image.

    Each map is divided by its mean (:func:`relative_to_flat`: 1 = a flat map), bilinearly
    upsampled to the image and overlaid on **one colour scale for the whole figure**, as in
    :func:`plot_attention_maps`, so a flat map looks flat beside a peaked one.
    """
    if not maps or len(maps) != len(images) or len(row_titles) != len(images):
        raise ValueError(f"plot_map_comparison needs one image, one mapping of maps and one title per row, "
                         f"got {len(images)} images, {len(maps)} mappings and {len(row_titles)} titles")
    headings = list(maps[0])
    if not headings or any(list(row) != headings for row in maps):
        raise ValueError(f"every row needs the same map columns, in the same order: {headings}")
    pictures = [_image_array(image) for image in images]
    overlays = []
    for picture, row in zip(pictures, maps):
        height, width = picture.shape[:2]
        overlays.append([F.interpolate(relative_to_flat(torch.as_tensor(m).reshape(
            torch.as_tensor(m).shape[-2:]))[None, None], size=(height, width), mode="bilinear",
            align_corners=False)[0, 0].numpy() for m in row.values()])
    vmax = max(1.0, max(float(o.max()) for row in overlays for o in row))
    colors = class_colors(len(class_names)) if class_names is not None else None
    ncols = 1 + len(headings)
    cell = min(2.6, 14.0 / ncols)
    fig, axes = plt.subplots(len(images), ncols, figsize=(cell * ncols + 0.8, cell * len(images) + 0.6),
                             squeeze=False)
    for r, (picture, row_overlays) in enumerate(zip(pictures, overlays)):
        axes[r, 0].imshow(picture)
        if boxes is not None and classes is not None and class_names is not None:
            _draw_boxes(axes[r, 0], boxes[r], class_names, colors, only_class=int(classes[r]))
        axes[r, 0].set_ylabel(textwrap.fill(str(row_titles[r]), 18), fontsize=9)
        for col, overlay in enumerate(row_overlays, start=1):
            axes[r, col].imshow(picture)
            shown = axes[r, col].imshow(overlay, cmap="magma", alpha=0.6, vmin=0.0, vmax=vmax)
    for col, heading in enumerate(["image", *headings]):
        axes[0, col].set_title(textwrap.fill(heading, 22), fontsize=9)
    return _finish_map_grid(fig, axes, shown, title or "Maps side by side (one colour scale: 1 = a flat map)",
                            save_as)

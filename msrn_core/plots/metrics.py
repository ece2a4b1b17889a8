"""Results: per-class AP, several metrics of several models, one metric over seeds."""
from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
from matplotlib.text import Text

from ..metrics import format_p_value, rank_correlation
from .common import _finish, _label_fontsize, class_colors


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
    ax.set_title(f"Per-class average precision: {' vs '.join(results)}")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return _finish(fig, save_as)


def plot_metrics_bars(results: Mapping[str, Mapping], metrics: Sequence[str] = ("mAP", "CF1", "OF1"),
                      title: str | None = None, save_as: str | None = None) -> Figure:
    """Grouped bars: one group per metric, one bar (and colour) per model, values in percent.

    ``results`` maps a model name to a metrics dict (fractions, as
    :func:`~msrn_core.metrics.compute_all_metrics` returns); a missing metric shows "n/a". The
    title (default: the metrics and the models compared, "mAP, CF1: plain vs MSRN") should also
    name the split the metrics were measured on.
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
    ax.set_title(title or f"{', '.join(metrics)}: {' vs '.join(results)}")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return _finish(fig, save_as)


def plot_seed_bars(results: Mapping[str, Sequence[float]], reference: Mapping[str, float] | None = None,
                   metric: str = "test mAP", title: str | None = None, save_as: str | None = None,
                   reference_label: str = "reference") -> Figure:
    """One column per setting: a dot per seed, the mean (a bar-shaped marker) and one standard deviation.

    ``results``: setting -> values (fractions), one per seed, e.g. the test mAPs of the trained
    ablation study. A setting with a single seed gets no error bar. ``reference`` (setting -> a
    percentage) is written under the setting's name after ``reference_label``, which must say where
    it comes from when that is not the data plotted (``"paper, VOC 2007"`` for the paper's mAP). The axis
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
        # the reference on lines of its own: beside the value, "paper, VOC 2007: 94.85" ran into the next column
        labels = [label + (f"\n{reference_label}:\n{reference[name]:.2f}" if name in reference else "")
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


def plot_gain_against(gains: Mapping[str, Sequence[float]], covariates: Mapping[str, Sequence[float]],
                      class_names: Sequence[str], log_scale: Sequence[str] = (), named: int = 3,
                      permutations: int = 10_000, save_as: str | None = None) -> Figure:
    """Each class's AP gain (points) against per-class quantities: one row per gain, one column per quantity.

    ``gains``: a name ("MSRN - plain") -> one value per class, in points, nan where undefined;
    ``covariates``: a name ("training images") -> one value per class; those named in ``log_scale``
    get a logarithmic axis (symmetric-logarithmic where a value is 0). Each panel has a dot per
    class, a line at 0 (no gain), the ``named`` classes of largest |gain| written beside their dots
    (each tied to its dot by a leader line), and in its title Spearman's rho with its permutation p-value
    (:func:`~msrn_core.metrics.rank_correlation`).
    """
    if not gains or not covariates:
        raise ValueError("plot_gain_against needs at least one gain and one per-class quantity")
    n = len(class_names)
    for what in (gains, covariates):
        for name, values in what.items():
            if len(values) != n:
                raise ValueError(f"{name}: {len(values)} values for {n} classes")
    rows, cols = len(gains), len(covariates)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.9 * rows), squeeze=False)
    spread = max(float(np.nanmax(np.abs(np.asarray(v, dtype=float)))) for v in gains.values())
    spread = 1.0 if not np.isfinite(spread) or spread == 0 else 1.1 * spread
    for row, (gain_name, gain) in enumerate(gains.items()):
        gain = np.asarray(gain, dtype=float)
        for col, (covariate_name, covariate) in enumerate(covariates.items()):
            ax = axes[row, col]
            covariate = np.asarray(covariate, dtype=float)
            ax.axhline(0.0, color="grey", linewidth=1)
            ax.scatter(covariate, gain, s=22, color=class_colors(rows)[row])
            for k in np.argsort(-np.nan_to_num(np.abs(gain), nan=-1.0))[:named]:
                if np.isfinite(gain[k]):
                    ax.annotate(class_names[k], (covariate[k], gain[k]), xytext=(6, 4), textcoords="offset points",
                                fontsize=8, gid="class name",  # a leader line ties a moved name to its dot
                                arrowprops=dict(arrowstyle="-", color="0.35", linewidth=0.6, shrinkA=0, shrinkB=2))
            if covariate_name in log_scale:
                if np.nanmin(covariate) > 0:
                    ax.set_xscale("log")
                else:  # symlog keeps a class with a count of 0 on the axis
                    ax.set_xscale("symlog", linthresh=1.0)
                positive = covariate[covariate > 0]
                decades = np.log10(positive.max() / positive.min()) if len(positive) else 0.0
                ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 3.0, 5.0) if decades < 1.5 else (1.0,)))
                ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))  # 200, not 2 x 10^2
                ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_ylim(-spread, spread)  # one scale for every panel: the rows compare
            rho, p = rank_correlation(covariate, gain, permutations=permutations)
            ax.set_title(f"{gain_name}: Spearman ρ {rho:+.2f} ({format_p_value(p)})", fontsize=10)
            ax.set_xlabel(covariate_name)
            ax.set_ylabel(f"{gain_name} (AP points)")
            ax.grid(alpha=0.3)
    fig.tight_layout()
    _separate_class_names(fig)
    return _finish(fig, save_as)


def _separate_class_names(fig: Figure, step: float = 9.0, tries: int = 8) -> None:
    """Move a class name down, a line at a time, while it overlaps one written before it in its panel
    (two classes with about the same value and gain)."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()

    def name_box(name):  # the text alone: an annotation's own extent includes its leader line
        name.update_positions(renderer)
        return Text.get_window_extent(name, renderer)

    for ax in fig.axes:
        placed = []
        for text in (t for t in ax.texts if t.get_gid() == "class name"):
            for _ in range(tries):
                box = name_box(text)
                if not any(box.overlaps(other) for other in placed):
                    break
                x, y = text.xyann
                text.xyann = (x, y - step)
            placed.append(name_box(text))

"""Every figure of the tutorial, saved through one helper.

Each plotting function returns a :class:`matplotlib.figure.Figure` (notebooks display it; no
``plt.show()`` here) and, when ``save_as="name"`` is given, also writes it with
:func:`save_figure` to ``<figures folder>/name.png`` (:func:`msrn_core.mode.figures_dir`).
``from msrn_core import plots; plots.plot_label_graph(...)`` reaches every one of them.

- ``common``     :func:`save_figure` the single place that writes a figure (stable PNG bytes:
                 full colour for colour scales, else a palette), :func:`use_compact_inline_figures` the same compact PNGs in a notebook,
                 :func:`class_colors`
- ``samples``    :func:`plot_samples` images with their label names and their object boxes
- ``graph``      :func:`plot_label_heatmap` an n x n label statistic (counts, P(j | i), cosine),
                 :func:`plot_label_graph` the thresholded co-occurrence graph coloured by group,
                 :func:`plot_edge_density` edges (and density) versus the threshold t,
                 :func:`plot_attention_graph` a GAT layer's learned attention over the edges
- ``groups``     :func:`plot_groups_for_m` the graph once per number of groups m,
                 :func:`plot_assignment` the Diffpool assignment S (n labels x m groups)
- ``attention``  :func:`plot_branch_statistics` how focused each branch is and where it points,
                 :func:`plot_attention_maps` each branch's attention over one image (one colour
                 scale, :func:`relative_to_flat`), :func:`plot_pointing_game` hit rates beside
                 their baselines and ceilings, :func:`plot_map_comparison` several models' (or
                 temperatures') maps of the same images side by side
- ``training``   :func:`plot_training_curves` loss and validation mAP per epoch,
                 :func:`plot_loss_gradient_norms` the loss terms' gradient norms per step
- ``metrics``    :func:`plot_per_class_ap`, :func:`plot_metrics_bars` (mAP / CF1 / OF1 ... of
                 several models), :func:`plot_seed_bars` (one metric over seeds),
                 :func:`plot_gain_against` per-class AP gains against class frequency or degree
- ``zero_shot``  notebook 08: :func:`plot_unseen_similarity`, :func:`plot_principal_vectors`
- ``dictionary`` notebook 07: :func:`plot_dictionary_atoms`, :func:`plot_coefficients`,
                 :func:`plot_apus_steps`
"""
from ..mode import FIGURES_DIR, figures_dir, small_figures_dir
from .attention import (plot_attention_maps, plot_branch_statistics, plot_map_comparison, plot_pointing_game,
                        relative_to_flat)
from .common import INLINE_DPI, class_colors, figure_png, save_figure, use_compact_inline_figures
from .dictionary import plot_apus_steps, plot_coefficients, plot_dictionary_atoms
from .graph import plot_attention_graph, plot_edge_density, plot_label_graph, plot_label_heatmap
from .groups import plot_assignment, plot_groups_for_m
from .metrics import plot_gain_against, plot_metrics_bars, plot_per_class_ap, plot_seed_bars
from .samples import plot_samples
from .training import plot_loss_gradient_norms, plot_training_curves
from .zero_shot import UNSEEN_COLOR, plot_principal_vectors, plot_unseen_similarity

__all__ = [
    "FIGURES_DIR", "INLINE_DPI", "UNSEEN_COLOR", "class_colors", "figure_png", "figures_dir",
    "plot_apus_steps", "plot_assignment", "plot_attention_graph", "plot_attention_maps",
    "plot_branch_statistics", "plot_coefficients", "plot_dictionary_atoms", "plot_edge_density",
    "plot_gain_against", "plot_groups_for_m", "plot_label_graph", "plot_label_heatmap", "plot_loss_gradient_norms",
    "plot_map_comparison",
    "plot_metrics_bars", "plot_per_class_ap", "plot_pointing_game", "plot_principal_vectors",
    "plot_samples", "plot_seed_bars", "plot_training_curves", "plot_unseen_similarity",
    "relative_to_flat", "save_figure", "small_figures_dir", "use_compact_inline_figures",
]

"""Images of a dataset with their label names and their object boxes."""
from __future__ import annotations

import math
import textwrap
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from .common import _draw_boxes, _finish, class_colors


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


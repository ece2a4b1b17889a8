"""What every notebook's opening cells call, so that the notebooks stay short and alike.

- :func:`notebook_setup`  versions, device and seeding (the "versions-and-device" cell)
- :func:`tutorial_data`   the built-in dataset with its label graph and label features
- :func:`trained_model`   ``load_or_train`` with the shared recipe and run folders, so that a
  model trained by one notebook is loaded by the next instead of trained again; every model
  starts from the recipe's shared backbone (:func:`shared_backbone`), trained once;
  :func:`trained_attention_models` CSRA and the MSRN variant of ``recipes.ATTENTION_VARIANT``
- :func:`runs_root`       where those run folders live: ``runs/notebooks`` in the checkout, or the
  folder a notebook's ``RUNS`` parameter names (on Colab, a Google Drive folder keeps the runs
  between notebooks, which each run on their own machine)
- :func:`show`, :func:`show_static_view`, :func:`figure_png`, :func:`float_tensor`  small helpers several notebooks use

The runs the notebooks share (``tutorial_data`` to ``runs_root``) live in
:mod:`msrn_core.running.shared_runs`, beside the ablation study that shares them too; they are
named here so that a notebook imports what it opens with from one place.
"""
from __future__ import annotations

import io
import platform
import sys
from pathlib import Path

import numpy as np
import torch
import torchvision

from . import __version__, plots
from .mode import use_small_mode
from .running import recipes
from .running.shared_runs import (RECIPE_FILE, SHARED_BACKBONE_KINDS, RecipeChangedError, attention_variant_title,
                                  check_recipe_folder, run_folder, runs_root, shared_backbone, trained_attention_models,
                                  trained_model, tutorial_data, use_runs_root)
from .utils import get_device, seed_everything

__all__ = [
    "RECIPE_FILE", "REPOSITORY", "SHARED_BACKBONE_KINDS", "RecipeChangedError", "attention_variant_title",
    "check_recipe_folder", "figure_png", "float_tensor", "notebook_setup", "run_folder", "runs_root", "shared_backbone",
    "show", "trained_attention_models", "trained_model", "tutorial_data",
]

REPOSITORY = "https://github.com/msrn-tutorial/msrn-tutorial"


def notebook_setup(seed: int = 0, small=None, runs: str | Path | None = None) -> torch.device:
    """Print Python, PyTorch, torchvision and msrn_core versions, the device and the mode; seed.

    ``small`` is the notebook's ``SMALL`` parameter: ``None`` reads ``MSRN_SMALL``. The mode is
    settled for the kernel (recipes, run folders and the figures folder follow it) and the mode
    line says what set it; the recipe is the kernel's (``recipes.recipe_for_device``: GPU on a
    CUDA kernel, else CPU). ``runs`` (the ``RUNS`` parameter) moves the run folders, see :func:`runs_root`.
    """
    device = get_device()
    mode = use_small_mode(small, device)
    runs_folder = use_runs_root(runs)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "CPU"
    print(f"Python {sys.version.split()[0]} | torch {torch.__version__} | torchvision {torchvision.__version__} "
          f"| msrn_core {__version__}")
    print(f"device: {device} ({name}), {torch.get_num_threads()} CPU threads | "
          f"mode: {'small' if mode.on else 'full'} ({mode.source}) | "
          f"recipe {recipes.default_recipe().name} | seed {seed}")
    if runs:
        print(f"runs: {runs_folder}")
    plots.use_compact_inline_figures()
    if int(np.__version__.split(".")[0]) >= 2:  # NumPy 2 prints scalars as np.float64(0.87): print 0.87
        np.set_printoptions(legacy="1.25")
    seed_everything(seed)
    return device


def show(fig) -> None:
    """Display a figure once and close it (so the inline backend does not show it again)."""
    import matplotlib.pyplot as plt
    from IPython.display import display

    display(fig)
    plt.close(fig)


def show_static_view(fig):
    """Display ``fig``, a widget's view at its default setting, as a plain image output; return a
    function that removes it.

    A saved notebook keeps no widget state: GitHub, nbviewer and the book show this image where a
    live kernel shows the widget. Call the returned function when the widget first redraws, so a
    reader in a kernel sees one view at a time.
    """
    import matplotlib.pyplot as plt
    from IPython.display import display

    handle = display(fig, display_id=True)
    plt.close(fig)

    def remove(*_):
        handle.update({"text/plain": ""}, raw=True)

    return remove


def figure_png(fig, dpi: int = 80) -> bytes:
    """A figure as PNG bytes for an ipywidgets Image (the figure is closed)."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def float_tensor(x) -> torch.Tensor:
    """``x`` (a number, list or NumPy array) as a float32 tensor: the notebooks' ``t``."""
    return torch.as_tensor(x, dtype=torch.float32)

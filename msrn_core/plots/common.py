"""What every figure shares: the one place that writes a figure, its compact PNG, the class
colours and the small conversions the plotting functions use."""
from __future__ import annotations

import io
from pathlib import Path
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from ..mode import figures_dir

# --------------------------------------------------------------------------- saving
INLINE_DPI = 80  # figures shown inside a notebook: readable at notebook width, light to store
# A figure with a colour scale is drawn at 0.8 x the dpi (0.64 x the pixels) and dithered: figures/ and
# the notebooks stay within their size limits.
FULL_COLOUR_DPI_SCALE = 0.8



def has_continuous_colour_scale(fig: Figure) -> bool:
    """Whether ``fig`` shows values through a continuous colour map: a heat map, an attention
    overlay, a colour bar. Pictures (RGB arrays) and a few categorical colours (tab10) are not."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import ListedColormap

    for artist in fig.findobj(lambda a: isinstance(a, ScalarMappable)):
        values = artist.get_array()
        if values is None or np.ndim(values) == 3:  # no values, or an RGB(A) picture
            continue
        colour_map = artist.get_cmap()
        if isinstance(colour_map, ListedColormap) and colour_map.N <= 32:  # categorical colours
            continue
        return True
    return False


def figure_png(fig: Figure, dpi: int = 120) -> bytes:
    """``fig`` as a compact PNG, rendered at ``dpi`` on white; the same figure always gives the same bytes.

    Every figure is stored with a 256-colour palette: plots and the noisy scene images alike shrink
    about four-fold against matplotlib's RGBA PNG with no visible change. A figure with a continuous
    colour scale (:func:`has_continuous_colour_scale`) is drawn at ``FULL_COLOUR_DPI_SCALE`` x ``dpi``
    and its palette is dithered (Floyd-Steinberg), so its gradients stay smooth instead of showing
    the steps a plain palette gives, at under half the bytes of a full-colour PNG.
    """
    from PIL import Image

    full_colour = has_continuous_colour_scale(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi * FULL_COLOUR_DPI_SCALE if full_colour else dpi, bbox_inches="tight",
                facecolor="white")
    with Image.open(buffer) as image:
        picture = image.convert("RGB")
    # a palette either way; a colour scale's gradient is dithered so it shows no steps. Pillow's
    # quantize(colours) ignores its dither argument: the dithering is a second pass onto the palette.
    paletted = picture.quantize(256, method=Image.Quantize.MEDIANCUT)
    if full_colour:
        dithered = picture.quantize(palette=paletted, dither=Image.Dither.FLOYDSTEINBERG)
        paletted = _keep_exact_colours(picture, dithered)
    out = io.BytesIO()
    paletted.save(out, format="PNG", optimize=True)
    return out.getvalue()


def _keep_exact_colours(picture, paletted):
    """``paletted`` with every pixel whose colour in ``picture`` is in the palette set to that colour:
    Pillow maps onto a given palette through a cache of reduced precision, which turns the white
    background into (250, 250, 250)."""
    rgb = np.asarray(picture, dtype=np.int32)
    codes = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    palette = np.asarray(paletted.getpalette()[:768], dtype=np.int32).reshape(-1, 3)
    palette_codes = (palette[:, 0] << 16) | (palette[:, 1] << 8) | palette[:, 2]
    order = np.argsort(palette_codes, kind="stable")
    position = np.clip(np.searchsorted(palette_codes[order], codes), 0, len(order) - 1)
    exact = palette_codes[order][position] == codes
    indices = np.asarray(paletted).copy()
    indices[exact] = order[position][exact]
    result = paletted.copy()
    result.frombytes(indices.astype(np.uint8).tobytes())
    return result


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


def _image_array(image) -> np.ndarray:
    """A PIL image or a (3, H, W) tensor / array in [0, 1] as an H x W x 3 float array."""
    if isinstance(image, (torch.Tensor, np.ndarray)):
        array = _to_numpy(image).astype(float)
        if array.ndim != 3 or array.shape[0] not in (1, 3):
            raise ValueError(f"image tensor must be (3, H, W), got shape {array.shape}")
        array = np.repeat(array, 3 // array.shape[0], axis=0)  # grey (1, H, W) -> 3 channels
        return np.clip(np.moveaxis(array, 0, -1), 0.0, 1.0)  # denormalize() normalised tensors first
    return np.asarray(image.convert("RGB"), dtype=float) / 255.0


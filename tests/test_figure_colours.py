"""Colour scales stay smooth: every figure is stored with a 256-colour palette, and one with a
continuous colour map is dithered onto it, so its colour bars and maps show no steps."""
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from msrn_core.plots import figure_png  # noqa: E402
from msrn_core.plots.common import has_continuous_colour_scale  # noqa: E402


def _mode(fig) -> str:
    return Image.open(io.BytesIO(figure_png(fig, dpi=40))).mode


def test_colour_scales_are_detected_and_every_figure_is_stored_with_a_palette():
    rng = np.random.default_rng(0)
    heat, ax = plt.subplots()
    heat.colorbar(ax.imshow(rng.random((8, 8)), cmap="viridis"))
    lines, ax = plt.subplots()
    ax.plot(rng.random(20))
    ax.scatter(rng.random(10), rng.random(10), c=np.arange(10) % 3, cmap="tab10")
    photo, ax = plt.subplots()
    ax.imshow(rng.random((16, 16, 3)))
    assert [has_continuous_colour_scale(f) for f in (heat, lines, photo)] == [True, False, False]
    assert [_mode(f) for f in (heat, lines, photo)] == ["P", "P", "P"]  # the colour scale's palette is dithered
    plt.close("all")



def test_a_colour_scale_keeps_its_mean_colour_where_a_plain_palette_shows_steps():
    """A narrow gradient beside a large smooth colour field that takes most of the 256 colours:
    the stored gradient, averaged over 6 x 6 pixel blocks, matches matplotlib's full-colour
    rendering far better than the same palette without dithering, whose gradient falls into bands."""
    from msrn_core.plots.common import FULL_COLOUR_DPI_SCALE

    rng = np.random.default_rng(0)
    fig, (photo, gradient) = plt.subplots(1, 2, figsize=(6, 3), width_ratios=(12, 1))
    photo.imshow(rng.random((12, 24, 3)), interpolation="bilinear")
    gradient.imshow(np.linspace(0, 1, 200)[:, None].repeat(20, axis=1), cmap="magma", aspect="auto")
    for ax in (photo, gradient):
        ax.axis("off")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100 * FULL_COLOUR_DPI_SCALE, bbox_inches="tight", facecolor="white")
    truth = Image.open(buffer).convert("RGB")
    stored = Image.open(io.BytesIO(figure_png(fig, dpi=100)))
    banded = truth.quantize(256, method=Image.Quantize.MEDIANCUT)  # a palette, no dithering
    plt.close(fig)

    def gradient_error(picture):
        a, b = (np.asarray(p.convert("RGB"), dtype=float)[:, -truth.width // 14:] for p in (picture, truth))
        h, w = (s - s % 6 for s in a.shape[:2])
        blocks = lambda x: x[:h, :w].reshape(h // 6, 6, w // 6, 6, 3).mean(axis=(1, 3))  # noqa: E731
        return np.abs(blocks(a) - blocks(b)).mean()

    assert stored.mode == "P" and stored.size == truth.size
    assert stored.convert("RGB").getpixel((0, 0)) == (255, 255, 255)  # colours in the palette stay exact
    assert gradient_error(stored) < 0.5 * gradient_error(banded)

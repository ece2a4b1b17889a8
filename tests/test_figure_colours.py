"""Colour scales stay smooth: a figure with a continuous colour map is a full-colour PNG, never a
256-colour palette one (whose colour bars show steps); the others keep the compact palette."""
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

"""Tests for msrn_core.plots: every figure builds on small fake inputs and saves stably."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # no display in tests (msrn_core.plots itself never forces a backend)

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from matplotlib.text import Text
from PIL import Image

from msrn_core import mode, plots
from msrn_core.graph import LabelGraph

CLASS_NAMES = ["car", "bus", "person", "oven", "cup", "bottle", "boat", "bird with a very long name"]
N_CLASSES = len(CLASS_NAMES)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture
def rng():
    return np.random.default_rng(0)


class FakeDataset:
    """The dataset interface msrn_core.plots relies on: class_names, labels, boxes, load_image."""

    def __init__(self, rng, n_images=6, size=64, with_boxes=True):
        self.class_names = list(CLASS_NAMES)
        self.labels = (rng.random((n_images, N_CLASSES)) < 0.4).astype(np.uint8)
        self.labels[0] = 0  # an image without any label
        self.size = size
        if with_boxes:
            self.boxes = [[(int(c), 5, 5, 40, 50) for c in np.flatnonzero(row)] for row in self.labels]

    def load_image(self, index):
        value = (index * 40) % 255
        return Image.new("RGB", (self.size, self.size), (value, 255 - value, 128))


@pytest.fixture
def label_graph(rng):
    labels = (rng.random((60, N_CLASSES)) < 0.35).astype(np.uint8)
    labels[:, 1] |= labels[:, 0]  # car -> bus always: at least one edge
    labels[:, -1] = 0  # a label that never occurs: isolated node
    return LabelGraph.from_labels(labels, CLASS_NAMES)


def _attention_maps(rng, sizes=((8, 8), (4, 4), (2, 2)), rows=N_CLASSES + 2):
    maps = []
    for h, w in sizes:
        logits = torch.as_tensor(rng.normal(size=(rows, h * w)), dtype=torch.float32)
        maps.append(torch.softmax(logits, dim=-1).view(rows, h, w))  # sums to 1 over h, w
    return maps


def _assert_png(path, expected_name):
    assert path.name == expected_name
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size[0] > 50 and image.size[1] > 50


# --------------------------------------------------------------------------- save_figure
def test_save_figure_stable_name_and_bytes(tmp_path):
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([0, 1, 2], [1, 0, 1])
    ax.set_title("line")
    path = plots.save_figure(fig, "my_figure", directory=tmp_path / "nested")
    assert path == tmp_path / "nested" / "my_figure.png"
    _assert_png(path, "my_figure.png")
    first = path.read_bytes()
    again = plots.save_figure(fig, "my_figure.png", directory=tmp_path / "nested")  # extension tolerated
    assert again == path
    assert path.read_bytes() == first
    assert b"matplotlib" not in first.lower()  # no version stamp in the PNG metadata


def test_save_figure_uses_env_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("MSRN_FIGURES_DIR", str(tmp_path / "env_figs"))
    fig, _ = plt.subplots()
    path = plots.save_figure(fig, "from_env")
    assert path == tmp_path / "env_figs" / "from_env.png"
    _assert_png(path, "from_env.png")


def test_save_figure_rejects_empty_name(tmp_path):
    fig, _ = plt.subplots()
    with pytest.raises(ValueError):
        plots.save_figure(fig, "", directory=tmp_path)


def test_default_figures_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("MSRN_FIGURES_DIR", str(tmp_path))
    assert mode._default_figures_dir() == tmp_path
    monkeypatch.delenv("MSRN_FIGURES_DIR")
    assert mode._default_figures_dir().name == "figures"


def test_saving_a_complex_figure_twice_gives_identical_bytes(tmp_path, label_graph):
    fig = plots.plot_label_graph(label_graph, groups=np.arange(N_CLASSES) % 2)
    first = plots.save_figure(fig, "graph", directory=tmp_path / "a").read_bytes()
    second = plots.save_figure(fig, "graph", directory=tmp_path / "b").read_bytes()
    assert first == second


def test_save_as_writes_through_save_figure(tmp_path, monkeypatch, rng):
    monkeypatch.setenv("MSRN_FIGURES_DIR", str(tmp_path))
    fig = plots.plot_label_heatmap(rng.random((3, 3)), CLASS_NAMES[:3], "tiny", save_as="tiny_heatmap")
    assert isinstance(fig, Figure)
    _assert_png(tmp_path / "tiny_heatmap.png", "tiny_heatmap.png")


# --------------------------------------------------------------------------- data figures
@pytest.mark.parametrize("with_boxes", [True, False])
def test_plot_samples(tmp_path, rng, with_boxes):
    dataset = FakeDataset(rng, with_boxes=with_boxes)
    fig = plots.plot_samples(dataset, range(5), ncols=3)
    assert isinstance(fig, Figure)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles[0] == "(no label)"
    assert len(titles) == 5
    n_rectangles = sum(len(ax.patches) for ax in fig.axes)
    assert n_rectangles == (int(dataset.labels[:5].sum()) if with_boxes else 0)
    _assert_png(plots.save_figure(fig, "samples", directory=tmp_path), "samples.png")


def test_plot_samples_can_hide_boxes(rng):
    fig = plots.plot_samples(FakeDataset(rng), [1, 2], show_boxes=False)
    assert sum(len(ax.patches) for ax in fig.axes) == 0


# --------------------------------------------------------------------------- graph figures
@pytest.mark.parametrize("n", [5, 20])
def test_plot_label_heatmap(tmp_path, rng, n):
    names = [f"label {i}" for i in range(n)]
    counts = rng.integers(0, 30, size=(n, n))
    fig = plots.plot_label_heatmap(counts, names, "co-occurrence counts")
    assert isinstance(fig, Figure)
    assert fig.axes[0].get_title() == "co-occurrence counts"
    annotated = len(fig.axes[0].texts) > 0
    assert annotated == (n <= 12)
    fig2 = plots.plot_label_heatmap(torch.rand(n, n), names, "cosine similarity", cmap="coolwarm")
    _assert_png(plots.save_figure(fig2, "heatmap", directory=tmp_path), "heatmap.png")


def test_plot_label_heatmap_checks_shape(rng):
    with pytest.raises(ValueError):
        plots.plot_label_heatmap(rng.random((3, 4)), CLASS_NAMES[:3], "bad")


def test_plot_label_graph(tmp_path, label_graph):
    groups = np.arange(N_CLASSES) % 3
    fig = plots.plot_label_graph(label_graph, groups=groups, group_names=["street", "kitchen", "beach"])
    assert isinstance(fig, Figure)
    legend = fig.axes[0].get_legend()
    assert [text.get_text() for text in legend.get_texts()] == ["street", "kitchen", "beach"]
    # every label is drawn, including the isolated one
    drawn = {text.get_text() for text in fig.axes[0].texts}
    assert set(CLASS_NAMES) <= drawn
    _assert_png(plots.save_figure(fig, "graph", directory=tmp_path), "graph.png")


def test_plot_label_graph_without_groups_or_edges():
    labels = np.eye(4, dtype=np.uint8)  # no co-occurrence at all: every label isolated
    graph = LabelGraph.from_labels(labels, CLASS_NAMES[:4])
    fig = plots.plot_label_graph(graph)
    assert fig.axes[0].get_legend() is None
    assert set(CLASS_NAMES[:4]) <= {text.get_text() for text in fig.axes[0].texts}


def test_plot_label_graph_layout_is_seeded(label_graph):
    def positions(seed):
        fig = plots.plot_label_graph(label_graph, layout_seed=seed)
        return sorted((t.get_text(), t.get_position()) for t in fig.axes[0].texts)

    assert positions(0) == positions(0)


def test_plot_attention_graph_draws_one_arrow_per_masked_edge(tmp_path, monkeypatch, rng):
    monkeypatch.setenv("MSRN_FIGURES_DIR", str(tmp_path))
    n = 5
    mask = np.eye(n, dtype=bool)
    mask[0, 1] = mask[1, 0] = mask[2, 3] = True  # three edges besides the self loops
    attention = rng.random((n, n)) * mask
    names, groups = CLASS_NAMES[:n], np.array([0, 0, 1, 1, 2])
    fig = plots.plot_attention_graph(attention, torch.as_tensor(mask), names, groups, ["g0", "g1", "hub"],
                                     inner=[names[4]], save_as="attention_graph")
    ax = fig.axes[0]
    assert len(ax.patches) == 3  # one arrow per off-diagonal edge of the mask, none for self loops
    assert set(names) <= {text.get_text() for text in ax.texts}
    assert [text.get_text() for text in ax.get_legend().get_texts()] == ["g0", "g1", "hub"]
    assert len(fig.axes) == 2 and "layer 2" in ax.get_title()  # the colour bar of alpha
    _assert_png(tmp_path / "attention_graph.png", "attention_graph.png")


def test_plot_edge_density(tmp_path, label_graph):
    fig = plots.plot_edge_density(label_graph.probabilities)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 2  # edges and density (twin axis)
    main = fig.axes[0]
    assert any(list(line.get_xdata()) == [0.4, 0.4] for line in main.lines)  # the t = 0.4 marker
    fig2 = plots.plot_edge_density(label_graph, thresholds=[0.1, 0.5, 0.9], highlight_t=0.5)
    _assert_png(plots.save_figure(fig2, "density", directory=tmp_path), "density.png")


def test_plot_assignment_sorts_rows_by_group(tmp_path, rng):
    S = torch.softmax(torch.as_tensor(rng.normal(size=(N_CLASSES, 3)) * 3), dim=1)
    fig = plots.plot_assignment(S, CLASS_NAMES, ["g0", "g1", "g2"])
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    shown = [t.get_text() for t in ax.get_yticklabels()]
    best = S.argmax(dim=1).numpy()
    assert [int(best[CLASS_NAMES.index(name)]) for name in shown] == sorted(best.tolist())
    assert [t.get_text() for t in ax.get_xticklabels()] == ["g0", "g1", "g2"]
    _assert_png(plots.save_figure(fig, "assignment", directory=tmp_path), "assignment.png")


# --------------------------------------------------------------------------- result figures
def test_plot_per_class_ap(tmp_path, rng):
    ap_dict = {name: float(rng.random()) for name in CLASS_NAMES}
    ap_dict["bird with a very long name"] = None  # undefined: no positive
    ap_array = rng.random(N_CLASSES)
    ap_array[2] = np.nan
    fig = plots.plot_per_class_ap({"MSRN": ap_dict, "ML-GCN": ap_array}, CLASS_NAMES)
    assert isinstance(fig, Figure)
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    expected = 100 * np.nanmean([v for v in ap_dict.values() if v is not None])
    assert legend[0] == f"MSRN (mAP {expected:.1f}%)"
    assert legend[1].startswith("ML-GCN (mAP ")
    assert any("undefined" in text for text in legend)
    assert fig.axes[0].get_title() == "Per-class average precision: MSRN vs ML-GCN"
    _assert_png(plots.save_figure(fig, "per_class_ap", directory=tmp_path), "per_class_ap.png")


def test_plot_training_curves(tmp_path):
    history = [{"epoch": e, "train_loss": 1.0 / e, "val_mAP": 0.1 * e} for e in range(1, 5)]
    fig = plots.plot_training_curves({"msrn": history, "plain": history[:2]})
    assert isinstance(fig, Figure)
    loss_ax, map_ax = fig.axes
    assert np.allclose(map_ax.lines[0].get_ydata(), [10, 20, 30, 40])  # percent
    assert "mAP" in map_ax.get_ylabel()
    _assert_png(plots.save_figure(fig, "curves", directory=tmp_path), "curves.png")


def test_plot_metrics_bars(tmp_path):
    results = {"plain": {"mAP": 0.6, "CF1": 0.5, "OF1": 0.55}, "msrn": {"mAP": 0.7, "CF1": 0.6}}
    fig = plots.plot_metrics_bars(results)
    assert isinstance(fig, Figure)
    heights = [bar.get_height() for bar in fig.axes[0].patches]
    assert np.allclose(heights, [60, 50, 55, 70, 60, 0])  # missing OF1 -> empty bar, "n/a" label
    assert fig.axes[0].get_title() == "mAP, CF1, OF1: plain vs msrn"  # what is compared
    _assert_png(plots.save_figure(fig, "metrics", directory=tmp_path), "metrics.png")


# --------------------------------------------------------------------------- attention
@pytest.mark.parametrize("as_tensor", [False, True])
def test_plot_attention_maps(tmp_path, rng, as_tensor):
    image = FakeDataset(rng).load_image(3)
    if as_tensor:
        image = torch.rand(3, 48, 64)
    maps = _attention_maps(rng)
    boxes = [(0, 2, 2, 20, 30), (2, 10, 10, 40, 40)]
    fig = plots.plot_attention_maps(image, maps, CLASS_NAMES, labels=[0, 2], branch_stages=[2, 3, 4],
                                    scores=torch.rand(N_CLASSES), boxes=boxes)
    assert isinstance(fig, Figure)
    axes = np.array(fig.axes[:-1]).reshape(2, 4)  # the last axes: the figure's one colour bar
    assert [ax.get_title() for ax in axes[0]] == ["image", "layer2 (8x8)", "layer3 (4x4)", "layer4 (2x2)"]
    assert axes[0, 0].get_ylabel().startswith("car\np = ")
    assert len(axes[0, 0].patches) == 1 and len(axes[1, 0].patches) == 1  # each row: its class's boxes
    height, width = (48, 64) if as_tensor else (64, 64)
    overlay = axes[0, 1].images[-1].get_array()
    assert overlay.shape == (height, width)  # upsampled to the image size
    vmax = max(ax.images[-1].get_clim()[1] for ax in axes[:, 1:].flat)
    assert {ax.images[-1].get_clim() for ax in axes[:, 1:].flat} == {(0.0, vmax)}
    assert fig.axes[-1].get_ylabel().endswith(f"this image's scale: 0 to {vmax:.1f}")  # says the scale is per image
    _assert_png(plots.save_figure(fig, "attention", directory=tmp_path), "attention.png")


def test_plot_attention_maps_accepts_batch_of_one_names_and_grey_images(rng):
    maps = [m[None] for m in _attention_maps(rng, sizes=((4, 4), (2, 2)))]  # (1, rows, h, w)
    fig = plots.plot_attention_maps(torch.rand(1, 32, 32), maps, CLASS_NAMES, ["bus"], [3, 4])
    assert len(fig.axes) == 3 + 1  # image, two branches, the colour bar
    assert fig.axes[0].get_ylabel() == "bus"


def test_plot_attention_maps_rejects_mismatched_branches(rng):
    maps = _attention_maps(rng)  # three branches
    with pytest.raises(ValueError, match="3 attention maps but 2 branch_stages"):
        plots.plot_attention_maps(torch.rand(3, 32, 32), maps, CLASS_NAMES, [0], [3, 4])


def test_plot_map_comparison_puts_every_map_on_one_colour_scale(tmp_path):
    flat = torch.full((8, 8), 1 / 64)
    peaked = torch.zeros(4, 4)
    peaked[1, 2] = 1.0  # relative to flat: 16 on one cell
    rows = [{"flat (8x8)": flat, "peaked (4x4)": peaked}, {"flat (8x8)": flat[None], "peaked (4x4)": peaked}]
    boxes = [[(0, 2, 2, 20, 30), (2, 10, 10, 40, 40)], [(2, 1, 1, 9, 9)]]
    fig = plots.plot_map_comparison([torch.rand(3, 48, 64), torch.rand(3, 48, 64)], rows, ["car", "person"],
                                    boxes=boxes, classes=[0, 2], class_names=CLASS_NAMES, title="two maps")
    axes = np.array(fig.axes[:-1]).reshape(2, 3)  # the last axes: the colour bar
    assert [ax.get_title() for ax in axes[0]] == ["image", "flat (8x8)", "peaked (4x4)"]
    assert axes[1, 0].get_ylabel() == "person" and len(axes[0, 0].patches) == 1
    flat_overlay, peaked_overlay = axes[0, 1].images[-1], axes[0, 2].images[-1]
    assert flat_overlay.get_array().shape == (48, 64)
    np.testing.assert_allclose(flat_overlay.get_array(), 1.0, rtol=1e-5)  # a flat map stays 1 everywhere
    assert flat_overlay.get_clim() == peaked_overlay.get_clim()  # one scale for the figure
    assert 1.0 < peaked_overlay.get_clim()[1] <= 16.0
    _assert_png(plots.save_figure(fig, "comparison", directory=tmp_path), "comparison.png")


def test_plot_map_comparison_rejects_rows_that_differ():
    with pytest.raises(ValueError, match="same map columns"):
        plots.plot_map_comparison([torch.rand(3, 8, 8)] * 2, [{"a": torch.ones(2, 2)}, {"b": torch.ones(2, 2)}],
                                  ["x", "y"])
    with pytest.raises(ValueError, match="one image, one mapping"):
        plots.plot_map_comparison([torch.rand(3, 8, 8)], [{"a": torch.ones(2, 2)}], ["x", "y"])


def test_graph_layout_does_not_depend_on_the_hash_seed():
    """Node names are strings: a layout that follows set order would move between runs."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import numpy as np\n"
        "from msrn_core.plots.graph import _cluster_layout\n"
        "from msrn_core.graph import LabelGraph, to_networkx\n"
        "rng = np.random.default_rng(1)\n"
        "labels = np.zeros((200, 16), np.uint8)\n"  # 4 themes of 3 labels + 4 labels never seen
        "for row in labels:\n"
        "    row[3 * rng.integers(4) + rng.choice(3, size=2, replace=False)] = 1\n"
        "names = [f'label {i}' for i in range(16)]\n"
        "pos = _cluster_layout(to_networkx(LabelGraph.from_labels(labels, names)), 0)\n"
        "print(sorted((k, [round(float(x), 6) for x in v]) for k, v in pos.items()))\n"
    )
    root = Path(plots.__file__).resolve().parents[2]
    outputs = []
    for hash_seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=hash_seed, PYTHONPATH=str(root), MPLBACKEND="Agg")
        result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                check=True)
        outputs.append(result.stdout)
    assert outputs[0] == outputs[1]


# --------------------------------------------------------------------------- compact, readable figures
def _boxes(fig, artists):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)  # the figures come back closed, with a bare canvas
    canvas.draw()
    return [artist.get_window_extent(canvas.get_renderer()) for artist in artists]


def _overlapping(boxes_a, boxes_b=None):
    pairs = [(a, b) for i, a in enumerate(boxes_a) for b in (boxes_a[i + 1:] if boxes_b is None else boxes_b)]
    return [(a, b) for a, b in pairs if a.overlaps(b) and a.width > 0 and b.width > 0]


def test_saved_figures_are_palette_pngs_and_closed(tmp_path, rng):
    fig = plots.plot_label_heatmap(rng.random((4, 4)), CLASS_NAMES[:4], "tiny")
    assert not plt.fignum_exists(fig.number)  # returned closed: a notebook shows it once
    fig2, ax = plt.subplots()
    ax.imshow(rng.random((40, 40, 3)))  # a noisy photo: the case where RGBA PNGs were heavy
    path = plots.save_figure(fig2, "photo", directory=tmp_path)
    assert not plt.fignum_exists(fig2.number)
    with Image.open(path) as image:
        assert image.mode == "P"
    assert plots.figure_png(fig2, dpi=60) == plots.figure_png(fig2, dpi=60)


def test_metric_bar_labels_never_collide():
    names = ["SDL (zero-shot)", "random ranking (expected)", "random ranking (20 seeds)", "plain ResNet"]
    metrics = ("mAP", "P@3", "R@3", "F1@3", "P@5", "R@5", "F1@5")
    values = [0.585, 0.206, 0.203, 0.83]  # neighbours of nearly equal height, as "18.618.4" was
    fig = plots.plot_metrics_bars({n: {m: v for m in metrics} for n, v in zip(names, values)}, metrics=metrics)
    labels = [t for t in fig.axes[0].texts if t.get_text()]
    assert len(labels) == len(names) * len(metrics)
    assert not _overlapping(_boxes(fig, labels))


def test_legends_cover_no_bar(rng):
    import pandas as pd

    stats = pd.DataFrame({"peak ratio": [1.02, 1.03, 1.01], "mass in boxes": [0.09, 0.1, 0.09],
                          "box area share (= chance)": [0.09] * 3, "pointing hit": [0.2, 0.18, 0.1],
                          "centre baseline": [0.25] * 3}, index=["layer2 (8x8)", "layer3 (4x4)", "layer4 (2x2)"])
    fig = plots.plot_branch_statistics(stats)
    for ax in fig.axes:
        assert not _overlapping(_boxes(fig, [ax.get_legend()]), _boxes(fig, ax.patches))
    peak_axis = fig.axes[0]
    ratios = [line for line in peak_axis.lines if line.get_marker() == "o"][0]
    low, _ = peak_axis.get_ylim()
    assert low < min(ratios.get_ydata()) and peak_axis.get_yscale() == "log"  # the ratios near 1 stay in view
    images = [torch.rand(3, 16, 16) for _ in range(2)]
    coefficients = torch.randn(2, N_CLASSES) + 3.0  # tall bars up to the top-right corner
    fig = plots.plot_coefficients(images, coefficients, torch.ones(2, N_CLASSES), CLASS_NAMES)
    bars = [patch for ax in fig.axes for patch in ax.patches]
    assert not _overlapping(_boxes(fig, fig.legends), _boxes(fig, bars))


def test_groups_for_m_draws_one_readable_panel_a_row(label_graph):
    groups = {m: np.arange(N_CLASSES) % m for m in (2, 4, 6)}
    fig = plots.plot_groups_for_m(label_graph, groups, {2: "m = 2: ARI 0.50"})
    assert [ax.get_title() for ax in fig.axes] == ["m = 2: ARI 0.50", "m = 4", "m = 6"]
    assert fig.get_figwidth() <= 10  # at notebook width the node labels keep their size
    assert min(t.get_fontsize() for ax in fig.axes for t in ax.texts if t.get_text() in CLASS_NAMES) >= 9
def test_attention_figures_share_one_colour_scale_and_a_flat_map_looks_flat(rng):
    flat = torch.full((N_CLASSES, 4, 4), 1 / 16)  # SGA attention spread evenly
    sharp = torch.zeros(N_CLASSES, 2, 2)
    sharp[:, 0, 0] = 1.0  # all weight on one of 4 cells: 4x the flat weight
    cam = torch.randn(N_CLASSES, 2, 2)
    fig = plots.plot_attention_maps(torch.rand(3, 32, 32), [flat, sharp], CLASS_NAMES, [0, 1], [3, 4], cam=cam)
    overlays = [ax.images[-1] for ax in np.array(fig.axes[:-1]).reshape(2, 4)[:, 1:].ravel()]
    assert len({(o.norm.vmin, o.norm.vmax) for o in overlays}) == 1  # one scale for the figure
    assert overlays[0].norm.vmin == 0.0 and overlays[0].norm.vmax == pytest.approx(4.0)  # the one-hot peak
    flat_overlay = overlays[0].get_array()
    assert np.allclose(flat_overlay, 1.0)  # flat stays 1 everywhere: one colour, not stretched
    assert fig.axes[-1].get_ylabel().startswith("weight / mean weight")  # the colour bar
    assert "CAM" in np.array(fig.axes[:-1]).reshape(2, 4)[0, 3].get_title()


def test_relative_to_flat_by_hand():
    torch.testing.assert_close(plots.relative_to_flat(torch.tensor([[0.0, 1.0], [1.0, 2.0]])),
                               torch.tensor([[0.0, 1.0], [1.0, 2.0]]))
    torch.testing.assert_close(plots.relative_to_flat(torch.zeros(2, 2)), torch.ones(2, 2))
    with pytest.raises(ValueError, match="non-negative"):
        plots.relative_to_flat(torch.tensor([[-1.0, 1.0]]))


def test_plot_pointing_game(tmp_path):
    fig = plots.plot_pointing_game({"layer2": 0.2, "layer4": 0.1, "plain CAM": 0.36}, centre=0.23, random=0.09,
                                   ceilings={"layer2": 0.9, "layer4": 0.5, "plain CAM": 0.8}, num_trials=100)
    ax = fig.axes[0]
    assert np.allclose([bar.get_height() for bar in ax.patches], [20, 10, 36, 23, 9])
    ticks = [line for line in ax.lines if line.get_marker() == "_"][0]
    assert np.allclose(ticks.get_ydata(), [90, 50, 80])
    _assert_png(plots.save_figure(fig, "pointing", directory=tmp_path), "pointing.png")
    with pytest.raises(ValueError, match="at least one"):
        plots.plot_pointing_game({}, 0.2, 0.1)


def test_plot_seed_bars_shows_mean_spread_and_every_seed(tmp_path):
    fig = plots.plot_seed_bars({"plain": [0.70, 0.72, 0.74], "full": [0.75], "none": [0.6, 0.62]},
                               reference={"full": 94.85}, reference_label="paper, VOC 2007")
    ax = fig.axes[0]
    means = [line for line in ax.lines if line.get_gid() == "mean"]
    assert np.allclose([m.get_ydata()[0] for m in means], [72.0, 75.0, 61.0]) and not ax.patches
    dots = [line for line in ax.lines if line.get_marker() == "o"]
    assert [len(d.get_ydata()) for d in dots] == [3, 1, 2]
    assert "72.0 ± 2.0" in [t.get_text() for t in ax.texts]  # sample sd of 70, 72, 74
    assert ax.get_ylim()[0] > 0 and "does not start at 0" in ax.get_ylabel()
    assert "paper, VOC 2007:\n94.85" in ax.get_xticklabels()[1].get_text()
    _assert_png(plots.save_figure(fig, "seeds", directory=tmp_path), "seeds.png")


def test_plot_seed_bars_tick_labels_with_the_papers_values_do_not_overlap():
    settings = {name: [0.74, 0.75] for name in ("no LGE", "label-E only", "group-E only", "full MSRN")}
    fig = plots.plot_seed_bars(settings, reference={name: 94.85 for name in settings},
                               reference_label="paper, VOC 2007")
    fig.canvas.draw()
    boxes = [label.get_window_extent() for label in fig.axes[0].get_xticklabels()]
    assert all(left.x1 < right.x0 for left, right in zip(boxes, boxes[1:])), [(b.x0, b.x1) for b in boxes]
    with pytest.raises(ValueError, match="at least one seed"):
        plots.plot_seed_bars({"full": []})


def test_plot_gain_against_one_panel_per_gain_and_quantity_with_the_rank_correlation(tmp_path):
    from msrn_core.metrics import rank_correlation

    names = [f"c{i}" for i in range(6)]
    gains = {"MSRN - plain": [3.0, 2.0, 1.0, 0.5, -1.0, float("nan")], "CSRA - plain": [0.1, -0.2, 0.3, -5.0, 0.0, 0.2]}
    covariates = {"training images": [10, 20, 40, 80, 160, 320], "graph degree": [0, 1, 1, 2, 3, 5]}
    fig = plots.plot_gain_against(gains, covariates, names, log_scale=("training images",), named=2)
    axes = np.array(fig.axes).reshape(2, 2)
    assert axes[0, 0].get_xscale() == "log" and axes[0, 1].get_xscale() == "linear"
    rho, p = rank_correlation(covariates["training images"], gains["MSRN - plain"])
    assert rho == pytest.approx(-1.0) and f"ρ {rho:+.2f} (p {p:.3f})" in axes[0, 0].get_title()
    assert {t.get_text() for t in axes[1, 0].texts} == {"c3", "c2"}  # the two largest |gain|
    assert axes[0, 0].get_ylim() == axes[1, 1].get_ylim()  # one scale: the rows compare
    with pytest.raises(ValueError, match="5 values for 6 classes"):
        plots.plot_gain_against({"g": [0.0] * 5}, covariates, names)
    with_zero = plots.plot_gain_against(gains, {"training images": [0, 20, 40, 80, 160, 320]}, names,
                                        log_scale=("training images",))
    assert with_zero.axes[0].get_xscale() == "symlog"  # a class with no training image stays on the axis
    # two classes at the same place: their names must not be written over each other
    crowded = plots.plot_gain_against({"g": [3.0, 3.05, 0.0, 0.1, -0.1, 0.0]},
                                      {"training images": [100, 101, 50, 60, 70, 80]}, names, named=2)
    crowded.canvas.draw()
    first, second = (t.get_window_extent() for t in crowded.axes[0].texts)
    assert not first.overlaps(second)
    for name in crowded.axes[0].texts:  # a leader line from each name to its own dot
        assert name.arrow_patch is not None
        end = name.arrow_patch.get_path().vertices[-1]
        dot = crowded.axes[0].transData.transform(name.xy)
        assert np.hypot(*(end - dot)) < 4.0, (name.get_text(), end, dot)  # pixels: up to the shrink at the dot
    # three names at one spot: each moves down just below the one before (a line of text at a time)
    heap = plots.plot_gain_against({"g": [3.0, 3.0, 3.0, 0.1, -0.1, 0.0]},
                                   {"training images": [100, 100, 100, 60, 70, 80]}, names, named=3)
    heap.canvas.draw()
    boxes = [Text.get_window_extent(name) for name in heap.axes[0].texts]  # the texts alone, without their lines
    assert not any(one.overlaps(other) for i, one in enumerate(boxes) for other in boxes[i + 1:])
    assert boxes[0].y0 - boxes[2].y0 < 4 * boxes[0].height, [b.y0 for b in boxes]  # not pushed far from the dots
    ticks = [label.get_text() for label in fig.axes[0].get_xticklabels() if label.get_text()]
    assert ticks and all("times" not in t and "^" not in t for t in ticks), ticks  # 200, not 2 x 10^2
    _assert_png(plots.save_figure(fig, "gains", directory=tmp_path), "gains.png")


def test_plot_loss_gradient_norms(tmp_path):
    curves = {"paper eq. 6": {"BCE": [1.9, 1.5, 1.2], "compactness": [145.0, 80.0, 40.0]},
              "adopted": {"BCE": [1.9, 1.6, 1.4], "compactness": [0.5, 0.4, 0.0]}}
    fig = plots.plot_loss_gradient_norms(curves, clip_norm=10)
    assert len(fig.axes) == 2 and fig.axes[0].get_yscale() == "log"
    assert np.allclose(fig.axes[0].lines[1].get_ydata(), [145.0, 80.0, 40.0])
    assert np.isnan(fig.axes[1].lines[1].get_ydata()[-1])  # a zero norm has no place on a log axis
    _assert_png(plots.save_figure(fig, "gradnorms", directory=tmp_path), "gradnorms.png")

"""Tests for msrn_core.attention: the pointing game on hand-made maps, boxes and fake models."""
from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from msrn_core.attention import (attention_statistics, box_area_fraction, box_mask, map_statistics, peak_point,
                                 pointing_game, pointing_game_score, pointing_game_scores)


# ----------------------------------------------------------------------------- one trial by hand
def test_peak_point_is_the_centre_of_the_argmax_cell():
    attention = torch.zeros(4, 4)
    attention[1, 2] = 1.0  # row 1, column 2 of a 4 x 4 map over a 64 px image: cells of 16 px
    assert peak_point(attention, 64) == (40.0, 24.0)  # x = 2.5 * 16, y = 1.5 * 16
    assert peak_point(attention.numpy(), (128, 64)) == (80.0, 24.0)  # (width, height)


def test_map_whose_max_is_inside_or_outside_the_box():
    attention = np.zeros((4, 4))
    attention[1, 2] = 1.0  # peak at (40, 24)
    assert pointing_game(attention, [(32, 16, 48, 32)], 64)  # the box around that cell
    assert not pointing_game(attention, [(0, 0, 32, 32)], 64)  # a box to the left of it
    assert not pointing_game(attention, [(0, 40, 64, 64)], 64)  # a box below it
    assert not pointing_game(attention, [], 64)  # no box: a miss


def test_box_edges_are_end_exclusive_at_border_cells():
    attention = np.zeros((2, 2))
    attention[1, 1] = 5.0  # bottom-right cell of a 2 x 2 map over 8 px: centre (6, 6)
    assert pointing_game(attention, [(6, 6, 8, 8)], 8)  # x0 <= 6 and y0 <= 6: inside
    assert not pointing_game(attention, [(0, 0, 6, 6)], 8)  # x1 = 6 is excluded: outside
    assert pointing_game(attention, [(0, 0, 7, 7)], 8)
    attention = np.zeros((2, 2))
    attention[0, 0] = 1.0  # top-left cell: centre (2, 2)
    assert pointing_game(attention, [(2, 2, 3, 3)], 8)
    assert not pointing_game(attention, [(0, 0, 2, 8)], 8)


def test_several_boxes_any_of_them_counts():
    attention = np.zeros((4, 4))
    attention[3, 0] = 1.0  # peak at (8, 56) over 64 px
    boxes = [(40, 0, 64, 20), (0, 48, 16, 64)]
    assert pointing_game(attention, boxes, 64)
    assert not pointing_game(attention, boxes[:1], 64)


def test_ties_go_to_the_first_cell_in_row_major_order():
    attention = np.ones((2, 2))  # every cell is maximal: the first one, (0, 0), points
    assert peak_point(attention, 8) == (2.0, 2.0)
    assert pointing_game(attention, [(0, 0, 4, 4)], 8)
    assert not pointing_game(attention, [(4, 4, 8, 8)], 8)


def test_bad_map_shape_is_explained():
    with pytest.raises(ValueError, match="h x w"):
        pointing_game(np.zeros(5), [(0, 0, 1, 1)], 8)


def test_box_area_fraction_counts_overlaps_once_and_clips():
    assert box_area_fraction([(0, 0, 32, 64)], 64) == pytest.approx(0.5)
    assert box_area_fraction([(0, 0, 32, 32), (16, 16, 48, 48)], 64) == pytest.approx((1024 + 1024 - 256) / 4096)
    assert box_area_fraction([(0, 0, 32, 32), (0, 0, 32, 32)], 64) == pytest.approx(0.25)
    assert box_area_fraction([(-10, -10, 8, 8)], 16) == pytest.approx(0.25)  # clipped to the image
    assert box_area_fraction([], 16) == 0.0
    assert box_area_fraction([(0, 0, 10, 5)], (10, 20)) == pytest.approx(0.25)


# ----------------------------------------------------------------------------- whole datasets
SIZE = 16
CLASS_NAMES = ["a", "b", "c"]


class BoxDataset:
    """Images whose channel c is the indicator of class c's boxes (what the fake model reads)."""

    def __init__(self):
        self.class_names = list(CLASS_NAMES)
        self.config = SimpleNamespace(image_size=SIZE)
        # (class, x0, y0, x1, y1), end exclusive, aligned to 4 px (the cells of a 4 x 4 map)
        self.boxes = [
            [(0, 0, 0, 8, 8), (1, 8, 8, 16, 16)],
            [(0, 4, 4, 12, 8), (0, 12, 12, 16, 16), (2, 0, 12, 4, 16)],
            [(1, 0, 0, 16, 4)],
            [(2, 8, 0, 12, 12), (2, 4, 8, 12, 12)],  # two overlapping boxes of one class
            [],  # no object at all
        ]
        self.labels = np.zeros((len(self.boxes), len(CLASS_NAMES)), dtype=np.uint8)
        for i, boxes in enumerate(self.boxes):
            for c, *_ in boxes:
                self.labels[i, c] = 1
        self.labels[2, 0] = 1  # a true label without a box: not a trial

    def __len__(self):
        return len(self.boxes)

    def indicator(self, index):
        image = torch.zeros(len(CLASS_NAMES), SIZE, SIZE)
        for c, x0, y0, x1, y1 in self.boxes[index]:
            image[c, y0:y1, x0:x1] = 1.0
        return image

    def __getitem__(self, index):
        return self.indicator(index), torch.from_numpy(self.labels[index].astype(np.float32)), index


class IndicatorModel(nn.Module):
    """Returns the image itself as attention (full resolution) and its 4x4 average (coarse)."""

    def forward(self, images, details=False):
        maps = [images, F.avg_pool2d(images, 4)]
        return SimpleNamespace(logits=images.new_zeros(len(images), len(CLASS_NAMES)),
                               details={"label_attention": maps, "branch_stages": [3, 4]})


class ConstantModel(nn.Module):
    """A map that ignores the image: always points at the top-left cell."""

    def forward(self, images, details=False):
        maps = torch.zeros(len(images), len(CLASS_NAMES), 4, 4)
        maps[:, :, 0, 0] = 1.0
        return SimpleNamespace(logits=None, details={"label_attention": [maps], "branch_stages": [4]})


def expected_chance(dataset):
    fractions = []
    for i, boxes in enumerate(dataset.boxes):
        for c in np.flatnonzero(dataset.labels[i]):
            own = [b[1:] for b in boxes if b[0] == c]
            if own:
                fractions.append(box_area_fraction(own, SIZE))
    return fractions


def test_attention_equal_to_the_box_indicator_scores_one():
    dataset = BoxDataset()
    score = pointing_game_score(IndicatorModel(), dataset, batch_size=2)
    assert score["branches"] == ["layer3", "layer4"]
    assert score["hit_rate"] == {"layer3": 1.0, "layer4": 1.0}
    assert all(rate == 1.0 for per_class in score["per_class"].values() for rate in per_class.values())
    assert score["num_trials"] == 6  # (0,a) (0,b) (1,a) (1,c) (2,b) (3,c)
    assert score["trials_per_class"] == {"a": 2, "b": 2, "c": 2}
    assert score["labels_without_box"] == 1  # image 2 is labelled "a" without an "a" box
    assert score["num_images"] == 5


def test_random_baseline_is_the_mean_box_area_fraction():
    dataset = BoxDataset()
    score = pointing_game_score(IndicatorModel(), dataset)
    fractions = expected_chance(dataset)
    assert score["random_baseline"] == pytest.approx(np.mean(fractions))
    # by hand: a: 1/4 and (32 + 16)/256; b: 1/4 and 1/4; c: 1/16 and (16 + 32 - 16... ) union of two boxes
    union_c = (4 * 12 + 8 * 4 - 4 * 4) / 256  # 4x12 column and 8x4 row overlapping in a 4x4 square
    by_hand = [0.25, 48 / 256, 0.25, 0.25, 16 / 256, union_c]
    assert score["random_baseline"] == pytest.approx(np.mean(by_hand))
    assert score["random_baseline_per_class"]["c"] == pytest.approx((16 / 256 + union_c) / 2)


def test_a_uniformly_random_point_hits_at_the_baseline_rate():
    dataset = BoxDataset()
    rng = np.random.default_rng(0)
    hits = []
    for i, boxes in enumerate(dataset.boxes):
        for c in np.flatnonzero(dataset.labels[i]):
            own = [b[1:] for b in boxes if b[0] == c]
            if own:
                x, y = rng.uniform(0, SIZE, size=(2, 20000))
                hits.append(np.mean([any(x0 <= u < x1 and y0 <= v < y1 for x0, y0, x1, y1 in own)
                                     for u, v in zip(x, y)]))
    score = pointing_game_score(IndicatorModel(), dataset)
    assert np.mean(hits) == pytest.approx(score["random_baseline"], abs=0.01)


def test_centre_baseline_points_at_the_middle_of_the_image():
    score = pointing_game_score(IndicatorModel(), BoxDataset())
    # centre (8, 8): inside (0,b) [8,8,16,16] and (3,c) [8,0,12,12]; x1 = 8 or y1 = 8 excludes the others
    assert score["center_baseline"] == pytest.approx(2 / 6)
    assert score["center_baseline_per_class"] == {"a": 0.0, "b": 0.5, "c": 0.5}


def test_one_branch_max_images_and_a_constant_map():
    dataset = BoxDataset()
    score = pointing_game_score(IndicatorModel(), dataset, branch=1, max_images=2)
    assert score["branches"] == ["layer4"] and score["num_images"] == 2 and score["num_trials"] == 4
    constant = pointing_game_score(ConstantModel(), dataset)
    # top-left cell centre (2, 2) lies in (0,a) [0,0,8,8] and (2,b) [0,0,16,4] only
    assert constant["hit_rate"]["layer4"] == pytest.approx(2 / 6)
    assert constant["per_class"]["layer4"] == {"a": 0.5, "b": 0.5, "c": 0.0}


def test_several_resolutions_from_one_pass_equal_separate_scores():
    class CountingModel(IndicatorModel):
        calls = 0

        def forward(self, images, details=False):
            CountingModel.calls += 1
            return super().forward(images, details)

    dataset = BoxDataset()
    both = pointing_game_scores(CountingModel(), dataset, batch_size=2, resolutions=("cell", "image"))
    assert CountingModel.calls == 3  # 5 images in batches of 2: one forward pass for both resolutions
    for resolution in ("cell", "image"):
        assert both[resolution] == pointing_game_score(IndicatorModel(), dataset, batch_size=2,
                                                       resolution=resolution)
    assert both["cell"]["grid"]["layer4"] == (SIZE // 4, SIZE // 4) and both["image"]["grid"]["layer4"] == (SIZE, SIZE)
    with_maps = pointing_game_scores(IndicatorModel(), dataset, batch_size=2, resolutions=("cell",), map_temperature=1.0)
    assert with_maps["cell"].pop("maps") == map_statistics(IndicatorModel(), dataset, batch_size=2)  # same pass
    assert with_maps["cell"] == both["cell"] and "maps" not in both["cell"]
    with pytest.raises(ValueError, match="unknown resolution"):
        pointing_game_scores(IndicatorModel(), dataset, resolutions=("cell", "pixel"))
    with pytest.raises(ValueError, match="at least one resolution"):
        pointing_game_scores(IndicatorModel(), dataset, resolutions=())


def test_models_without_label_attention_are_refused():
    class Plain(nn.Module):
        def forward(self, images, details=False):
            return SimpleNamespace(logits=None, details={})

    with pytest.raises(ValueError, match="label attention"):
        pointing_game_score(Plain(), BoxDataset())


def test_box_mask_is_the_union_of_end_exclusive_boxes():
    mask = box_mask([(0, 0, 2, 1), (1, 0, 3, 2)], 4)
    assert mask.sum() == 2 + 4 - 1  # x 0..1 of row 0, the 2 x 2 square at x 1..2, y 0..1; (1, 0) counted once
    assert mask[0, :3].all() and mask[1, 1:3].all() and not mask[1, 0] and not mask[:, 3].any()


class SpreadModel(nn.Module):
    """Attention spread evenly over the label's boxes (full resolution, and summed over 4x4 cells),
    or, with ``flat``, evenly over the whole image."""

    def __init__(self, flat=False):
        super().__init__()
        self.flat = flat

    def forward(self, images, details=False):
        maps = torch.ones_like(images) if self.flat else images
        maps = maps / maps.sum(dim=(2, 3), keepdim=True).clamp_min(1e-12)
        return SimpleNamespace(logits=None, details={"label_attention": [maps, 16 * F.avg_pool2d(maps, 4)],
                                                     "branch_stages": [3, 4]})


def test_attention_statistics_of_attention_on_the_boxes_and_of_flat_attention():
    dataset = BoxDataset()
    areas = np.array(expected_chance(dataset))  # the box area share of each of the 6 trials
    stats, pairs = attention_statistics(SpreadModel(), dataset, num_images=len(dataset), batch_size=2)
    assert pairs == 6 and list(stats.index) == ["layer3 (16x16)", "layer4 (4x4)"]
    np.testing.assert_allclose(stats["mass in boxes"], 1.0)  # all the attention is inside the boxes
    np.testing.assert_allclose(stats["box area share (= chance)"], areas.mean())
    np.testing.assert_allclose(stats["lift"], 1.0 / areas.mean())
    np.testing.assert_allclose(stats["pointing hit"], 1.0)
    np.testing.assert_allclose(stats["centre baseline"], 2 / 6)  # as in the pointing-game test above
    full = stats.loc["layer3 (16x16)"]
    assert full["peak ratio"] == pytest.approx(np.mean(1.0 / areas))  # 256 x 1 / (cells in the boxes)
    assert full["entropy"] == pytest.approx(np.mean(np.log(256 * areas) / np.log(256)))

    flat, _ = attention_statistics(SpreadModel(flat=True), dataset, num_images=len(dataset))
    np.testing.assert_allclose(flat["entropy"], 1.0)
    np.testing.assert_allclose(flat["peak ratio"], 1.0)
    np.testing.assert_allclose(flat["lift"], 1.0)  # a flat map puts the box area share in the boxes
    np.testing.assert_allclose(flat["pointing hit"], 2 / 6)  # ties: the top-left cell points


def test_attention_statistics_without_a_trial_is_refused():
    with pytest.raises(ValueError, match="no \\(image, true label\\) pair"):
        attention_statistics(SpreadModel(), BoxDataset(), num_images=0)


def test_real_msrn_on_the_scene_dataset(small_scenes):
    from msrn_core.graph import LabelGraph
    from msrn_core.model import ModelConfig, build_model

    _, _, train, _, test = small_scenes
    graph = LabelGraph.from_labels(train.labels, train.class_names)
    config = ModelConfig(backbone="resnet18", embed_dim=32, gat_hidden=16, fc_hidden=32)
    torch.manual_seed(0)
    model = build_model(config, np.eye(len(train.class_names), dtype=np.float32), graph.adjacency_tensor())
    score = pointing_game_score(model, test, max_images=6, batch_size=4)
    assert score["branches"] == ["layer2", "layer3", "layer4"]
    assert score["num_images"] == 6 and score["num_trials"] > 0
    assert all(0.0 <= rate <= 1.0 for rate in score["hit_rate"].values())
    assert 0.0 < score["random_baseline"] < 1.0
    assert not math.isnan(score["random_baseline"])


# ----------------------------------------------------------------------------- image resolution, ceiling, CAM
from msrn_core.attention import grid_reachable, image_peak_point, upsample_map  # noqa: E402


def test_image_resolution_points_at_the_middle_of_the_upsampled_peak():
    attention = np.zeros((4, 4))
    attention[1, 2] = 1.0  # interior cell: centre (40, 24) over 64 px
    x, y = image_peak_point(attention, 64)
    assert abs(x - 40.0) <= 0.5 and abs(y - 24.0) <= 0.5  # within half a pixel of the cell centre
    assert upsample_map(attention, 64).shape == (64, 64)
    corner = np.zeros((2, 2))
    corner[0, 1] = 1.0  # top-right cell of 8 px: clamped to 1 on x in 6..7, y in 0..1 (align_corners=False)
    assert image_peak_point(corner, 8) == (7.0, 1.0)
    assert peak_point(corner, 8) == (6.0, 2.0)
    box = [(6, 0, 8, 2)]  # the top-right 2 x 2 pixels: the cell centre (6, 2) misses, the upsampled peak hits
    assert pointing_game(corner, box, 8, resolution="image")
    assert not pointing_game(corner, box, 8, resolution="cell")
    assert image_peak_point(np.ones((3, 3)), 12) == (6.0, 6.0)  # a flat map points at the image centre
    with pytest.raises(ValueError, match="resolution"):
        pointing_game(corner, box, 8, resolution="pixel")


def test_grid_ceiling_on_a_hand_example():
    # 2 x 2 grid over 8 px: cell centres (2, 2), (6, 2), (2, 6), (6, 6)
    assert grid_reachable((2, 2), [(1, 1, 3, 3)], 8)  # holds (2, 2)
    assert not grid_reachable((2, 2), [(3, 3, 5, 5)], 8)  # a central box between all centres
    assert not grid_reachable((2, 2), [(0, 0, 2, 8)], 8)  # x1 = 2 excluded
    assert grid_reachable((2, 2), [(3, 3, 5, 5), (5, 5, 7, 7)], 8)  # the second box holds (6, 6)
    assert grid_reachable((4, 4), [(3, 3, 5, 5)], 8)  # a finer grid has a centre at (3, 3)
    assert not grid_reachable((2, 2), [(1, 3, 3, 5)], 8)  # x holds 2, but y in [3, 5) holds no centre


class CentralBoxDataset(BoxDataset):
    """One image with one central 4 x 4 px box of class a over 16 px: a 2 x 2 grid cannot reach it."""

    def __init__(self):
        super().__init__()
        self.boxes = [[(0, 6, 6, 10, 10)], [(0, 0, 0, 8, 8)]]
        self.labels = np.array([[1, 0, 0], [1, 0, 0]], dtype=np.uint8)


class CoarseModel(nn.Module):
    """Attention on a 2 x 2 grid (the indicator averaged per quadrant) and a 4 x 4 CAM."""

    def forward(self, images, details=False):
        return SimpleNamespace(logits=None, details={"label_attention": [F.avg_pool2d(images, 8)],
                                                     "branch_stages": [4],
                                                     "class_activation_map": F.avg_pool2d(images, 4)})


def test_score_reports_the_ceiling_and_scores_cams():
    dataset = CentralBoxDataset()
    attention = pointing_game_score(CoarseModel(), dataset)
    assert attention["ceiling"] == {"layer4": 0.5}  # the central box holds no 2 x 2 cell centre
    assert attention["grid"] == {"layer4": (2, 2)}
    assert attention["hit_rate"]["layer4"] == 0.5  # only the top-left box is hit
    cam = pointing_game_score(CoarseModel(), dataset, source="cam")
    assert cam["branches"] == ["cam"] and cam["source"] == "cam"
    assert cam["ceiling"] == {"cam": 1.0} and cam["hit_rate"] == {"cam": 1.0}  # 4 x 4: centre (6, 6) is in
    image = pointing_game_score(CoarseModel(), dataset, resolution="image")
    assert image["grid"] == {"layer4": (16, 16)} and image["ceiling"] == {"layer4": 1.0}
    assert image["resolution"] == "image"
    with pytest.raises(ValueError, match="class activation"):
        pointing_game_score(IndicatorModel(), dataset, source="cam")
    with pytest.raises(ValueError, match="source"):
        pointing_game_score(IndicatorModel(), dataset, source="gradcam")


def test_cam_of_a_real_plain_resnet_on_the_scene_dataset(small_scenes):
    from msrn_core.graph import LabelGraph
    from msrn_core.model import ModelConfig, build_model

    _, _, train, _, test = small_scenes
    graph = LabelGraph.from_labels(train.labels, train.class_names)
    torch.manual_seed(0)
    model = build_model(ModelConfig(kind="plain", backbone="resnet18"),
                        np.eye(len(train.class_names), dtype=np.float32), graph.adjacency_tensor())
    score = pointing_game_score(model, test, max_images=4, source="cam")
    assert score["branches"] == ["cam"] and score["grid"]["cam"] == (2, 2)  # 64 px / 32
    assert 0.0 <= score["hit_rate"]["cam"] <= score["ceiling"]["cam"] <= 1.0


# ----------------------------------------------------------------------------- why the maps point where they do
from msrn_core.attention import (embedding_cosine, head_label_mixing, label_map_correlation,  # noqa: E402
                                 normalised_entropy, peak_ratio)


def test_label_map_correlation_by_hand():
    base = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    same = torch.stack([base, 3 * base + 1])[None]  # one image, two labels, the same pattern
    assert label_map_correlation(same) == pytest.approx(1.0)
    opposite = torch.stack([base, -base])[None]
    assert label_map_correlation(opposite) == pytest.approx(-1.0)
    # three labels: a, b = a (corr 1), c orthogonal to both after centring (corr 0): pairs 1, 0, 0 (x2)
    a = torch.tensor([[1.0, -1.0], [0.0, 0.0]])
    c = torch.tensor([[0.0, 0.0], [1.0, -1.0]])
    three = torch.stack([a, a, c])[None]
    assert label_map_correlation(three) == pytest.approx(1 / 3)
    assert label_map_correlation(three, present=[[True, True, False]]) == pytest.approx(1.0)
    flat = torch.stack([torch.ones(2, 2), base])[None]  # a constant map has no correlation: left out
    assert math.isnan(label_map_correlation(flat))
    with pytest.raises(ValueError, match="B x n x h x w"):
        label_map_correlation(base)


def test_entropy_and_peak_ratio_of_flat_and_one_hot_maps():
    maps = torch.zeros(1, 2, 2, 2)
    maps[0, 0] = 0.25  # flat
    maps[0, 1, 1, 0] = 1.0  # one cell
    torch.testing.assert_close(normalised_entropy(maps), torch.tensor([[1.0, 0.0]], dtype=torch.float64))
    torch.testing.assert_close(peak_ratio(maps), torch.tensor([[1.0, 4.0]], dtype=torch.float64))
    assert torch.isnan(normalised_entropy(torch.ones(1, 1, 1, 1))).all()


def test_embedding_cosine_by_hand():
    rows = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])  # cosines 0, 1/sqrt2, 1/sqrt2
    assert embedding_cosine(rows) == pytest.approx(math.sqrt(2) / 3)
    assert embedding_cosine(torch.ones(4, 3)) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="two rows"):
        embedding_cosine(torch.ones(1, 3))


def _tiny_msrn(**overrides):
    from msrn_core.model import ModelConfig, build_model

    n = 5
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(n, 8, generator=generator)
    adjacency = 0.2 * (torch.rand(n, n, generator=generator) > 0.5).float() + torch.eye(n)
    torch.manual_seed(0)
    config = ModelConfig(backbone="resnet18", embed_dim=16, gat_hidden=8, fc_hidden=12, num_groups=2, **overrides)
    return build_model(config, features, adjacency).eval()


def test_head_mixing_attributions_add_up_to_the_logits_without_biases():
    model = _tiny_msrn()
    with torch.no_grad():
        model.fc1.bias.zero_()
        model.fc2.bias.zero_()
    mixing = head_label_mixing(model, torch.randn(2, 3, 64, 64))
    # gradient x input of a bias-free piecewise-linear head is exact: the rows' contributions sum to the logit
    torch.testing.assert_close(mixing["contribution"].sum(-1).float(), mixing["logits"], rtol=1e-4, atol=1e-5)
    assert mixing["rows"] == 5 + 2 and mixing["uniform"] == pytest.approx(1 / 7)
    assert mixing["own_row"] + mixing["other_label_rows"] + mixing["group_rows"] == pytest.approx(1.0)
    assert mixing["other_label_rows"] > 0.2  # the paper's head reads every row


def test_the_per_label_head_reads_only_its_own_row():
    mixing = head_label_mixing(_tiny_msrn(head="per_label", embeddings="label"), torch.randn(2, 3, 64, 64))
    assert mixing["own_row"] == pytest.approx(1.0)
    assert mixing["other_label_rows"] == 0.0 and mixing["group_rows"] == 0.0
    grouped = head_label_mixing(_tiny_msrn(head="per_label"), torch.randn(2, 3, 64, 64))
    assert grouped["other_label_rows"] == 0.0 and grouped["group_rows"] > 0.0  # its groups' rows S_c Q
    with pytest.raises(ValueError, match="label embeddings"):
        head_label_mixing(_tiny_msrn(embeddings="group"), torch.randn(1, 3, 64, 64))


def test_map_statistics_of_flat_and_of_shared_maps():
    from msrn_core.attention import map_statistics

    dataset = BoxDataset()
    flat = map_statistics(SpreadModel(flat=True), dataset, batch_size=2)
    for branch in ("layer3", "layer4"):
        assert flat[branch]["normalised_entropy"] == pytest.approx(1.0)
        assert flat[branch]["peak_ratio"] == pytest.approx(1.0)
        assert np.isnan(flat[branch]["label_map_correlation"])  # constant maps have no correlation

    class SharedCAM(nn.Module):
        """Every label's score map is the sum of the image's channels: one map for all labels."""

        def forward(self, images, details=False):
            shared = images.sum(1, keepdim=True).expand(-1, len(CLASS_NAMES), -1, -1)
            return SimpleNamespace(logits=None, details={"class_activation_map": 50 * shared, "branch_stages": [4]})

    shared = map_statistics(SharedCAM(), dataset, source="cam", batch_size=2)["cam"]
    assert shared["label_map_correlation"] == pytest.approx(1.0)
    # image 0: a softmax over 50 x the map puts (nearly) all weight evenly on its 128 box pixels;
    # at temperature 1/50 it weighs them only e times the others
    sharp = map_statistics(SharedCAM(), dataset, source="cam", max_images=1)["cam"]
    assert sharp["peak_ratio"] == pytest.approx(256 / 128, rel=1e-6)
    assert sharp["normalised_entropy"] == pytest.approx(math.log(128) / math.log(256), rel=1e-6)
    cool = map_statistics(SharedCAM(), dataset, source="cam", max_images=1, temperature=1 / 50)["cam"]
    assert cool["peak_ratio"] == pytest.approx(256 * math.e / (128 * math.e + 128), rel=1e-6)

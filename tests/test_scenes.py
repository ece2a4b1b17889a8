"""Tests of the synthetic scene dataset (msrn_core.data.scenes): small configs, fast."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from msrn_core.data.dataset import DatasetNotFoundError, ImageListDataset, build_transform
from msrn_core.data.scenes import (
    CLASS_NAMES,
    CLASSES,
    FAMILIES,
    HUB_CLASSES,
    THEME_NAMES,
    THEMES,
    SceneConfig,
    SceneDataset,
    dataset_dir,
    generate_scenes,
    label_statistics,
    load_scene_splits,
    load_scenes,
    theme_display_order,
    theme_group,
    theme_group_names,
    theme_groups,
)
from msrn_core.graph import conditional_probabilities, cooccurrence_counts
from msrn_core.running.make_scenes import main

SMALL = SceneConfig.small()
T = 0.4  # the paper's co-occurrence threshold


@pytest.fixture(scope="module")
def small_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("scenes")
    generate_scenes(SMALL, root)
    return root


@pytest.fixture(scope="module")
def medium_labels(tmp_path_factory):
    """600 train images at 32 px: enough for stable co-occurrence statistics."""
    root = tmp_path_factory.mktemp("medium")
    config = SceneConfig(image_size=32, num_train=600, num_val=0, num_test=0)
    return load_scenes(root, "train", config)


def _mlgcn_conditional(labels: np.ndarray) -> np.ndarray:
    """P(j | i) = counts[i, j] / max(nums[i], 1), written out as ML-GCN computes it (diagonal 0)."""
    labels = labels.astype(np.float64)
    counts = labels.T @ labels
    nums = np.diag(counts).copy()
    np.fill_diagonal(counts, 0)
    return counts / np.maximum(nums, 1)[:, None]


def _files(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted((folder / "images").rglob("*.png"))}


# ----- determinism ----------------------------------------------------------------------------
def test_same_seed_gives_identical_bytes_and_different_seed_differs(tmp_path, small_root):
    config = SceneConfig.small(num_train=12, num_val=4, num_test=4)
    a = generate_scenes(config, tmp_path / "a")
    b = generate_scenes(config, tmp_path / "b", workers=2)  # the worker count must not matter
    assert (a / "annotations.json").read_bytes() == (b / "annotations.json").read_bytes()
    files_a, files_b = _files(a), _files(b)
    assert len(files_a) == 20 and files_a == files_b
    other = generate_scenes(SceneConfig.small(seed=1, num_train=12, num_val=4, num_test=4), tmp_path / "c")
    assert other.name != a.name
    assert _files(other) != files_a
    ann_a = json.loads((a / "annotations.json").read_text())["splits"]["train"]
    ann_c = json.loads((other / "annotations.json").read_text())["splits"]["train"]
    assert [r["labels"] for r in ann_a] != [r["labels"] for r in ann_c]
    # order independence: image i of a 12-image train split equals image i of the 96-image one
    big = dataset_dir(small_root, SMALL)
    assert (a / "images/train/00005.png").read_bytes() == (big / "images/train/00005.png").read_bytes()


# ----- structure ------------------------------------------------------------------------------
def test_classes_themes_hubs_and_families():
    assert len(CLASSES) >= 20 and len(set(CLASS_NAMES)) == len(CLASS_NAMES)
    assert len(THEMES) >= 4 and len(THEME_NAMES) == len(THEMES)
    assert HUB_CLASSES
    for hub in HUB_CLASSES:
        assert all(hub in theme.probabilities for theme in THEMES)
    for theme in THEMES:
        assert all(0.45 <= p <= 0.7 for p in theme.probabilities.values()), theme.name
        assert len(theme.probabilities) >= 4
    for cls in CLASSES:
        assert isinstance(cls.family, str) and cls.family in FAMILIES
        assert cls.themes and set(cls.themes) <= set(THEME_NAMES)
    # each class in exactly one family; each family big enough to hold one class out
    members = [name for family in FAMILIES.values() for name in family]
    assert sorted(members) == sorted(CLASS_NAMES)
    assert all(len(family) >= 3 for family in FAMILIES.values()), FAMILIES
    assert len(FAMILIES) >= 5
    assert any(c.small for c in CLASSES) and any(c.low_contrast for c in CLASSES)


def test_labels_and_boxes_are_consistent(small_root):
    config = SMALL
    size = config.image_size
    for split in ("train", "val", "test"):
        ds = load_scenes(small_root, split, config, generate=False)
        assert len(ds) == config.split_size(split)
        assert ds.labels.sum(axis=1).min() >= 1, "every image has a label"
        for i in range(len(ds)):
            boxes = ds.boxes[i]
            assert boxes
            for c, x0, y0, x1, y1 in boxes:
                assert 0 <= c < len(CLASS_NAMES)
                assert 0 <= x0 < x1 <= size and 0 <= y0 < y1 <= size
            assert {b[0] for b in boxes} == set(np.flatnonzero(ds.labels[i]).tolist())
            assert ds.image_themes[i] and set(ds.image_themes[i]) <= set(THEME_NAMES)
    train = load_scenes(small_root, "train", config, generate=False)
    assert train.labels.sum(axis=0).min() > 0, "every class has positives in train"
    assert label_statistics(train)["classes_without_positives"] == []


def test_annotations_file_holds_metadata(small_root):
    meta = json.loads((dataset_dir(small_root, SMALL) / "annotations.json").read_text())
    assert meta["class_names"] == CLASS_NAMES
    assert meta["families"] == [c.family for c in CLASSES]
    assert meta["class_themes"] == [list(c.themes) for c in CLASSES]
    assert meta["theme_names"] == THEME_NAMES and meta["hub_classes"] == HUB_CLASSES
    assert SceneConfig.from_dict(meta["config"]) == SMALL
    record = meta["splits"]["train"][0]
    assert set(record) >= {"file", "labels", "boxes", "themes"}
    assert (dataset_dir(small_root, SMALL) / record["file"]).exists()


# ----- co-occurrence structure at t = 0.4 -----------------------------------------------------
def test_the_scenes_statistics_are_the_graphs(medium_labels):
    # one home for P(j | i): msrn_core.graph, equal to ML-GCN's formula on the scenes' labels,
    # also for a label without any image (a zero row either way)
    labels = np.asarray(medium_labels.labels).copy()
    labels[:, 3] = 0
    for matrix in (medium_labels.labels, labels):
        np.testing.assert_array_equal(conditional_probabilities(*cooccurrence_counts(matrix)),
                                      _mlgcn_conditional(np.asarray(matrix)))


def test_cooccurrence_graph_has_theme_structure(medium_labels):
    ds = medium_labels
    probs = conditional_probabilities(*cooccurrence_counts(ds.labels))
    n = len(CLASS_NAMES)
    themes = [set(t) for t in ds.class_themes]
    hubs = [CLASS_NAMES.index(h) for h in HUB_CLASSES]
    same = np.array([[bool(themes[i] & themes[j]) for j in range(n)] for i in range(n)])
    off_diag = ~np.eye(n, dtype=bool)
    single = np.array([len(t) == 1 for t in themes])
    # within a theme, from a class of one theme: mostly an edge
    within = same & off_diag & single[:, None]
    assert (probs[within] >= T).mean() >= 0.8
    # across themes, between non-hub classes: mostly no edge
    nonhub = np.ones(n, dtype=bool)
    nonhub[hubs] = False
    across = ~same & off_diag & nonhub[:, None] & nonhub[None, :]
    assert (probs[across] >= T).mean() <= 0.05
    assert (probs >= T)[within].sum() > 3 * (probs >= T)[across].sum()
    # every class points to the hub
    for h in hubs:
        others = np.delete(probs[:, h], h)
        assert others.min() >= T, (HUB_CLASSES, others.min())


# ----- torch dataset, cache, errors -----------------------------------------------------------
def test_torch_dataset_items(small_root):
    size = SMALL.image_size
    ds = load_scenes(small_root, "val", SMALL, transform=build_transform(size, train=False), generate=False)
    assert isinstance(ds, SceneDataset) and isinstance(ds, ImageListDataset)
    assert ds.name == "scenes/val" and ds.config == SMALL and ds.root == dataset_dir(small_root, SMALL)
    assert ds.class_families == [c.family for c in CLASSES]
    assert ds.theme_names == THEME_NAMES and ds.class_themes == [list(c.themes) for c in CLASSES]
    image, target, index = ds[3]
    assert image.shape == (3, size, size) and image.dtype == torch.float32
    assert target.dtype == torch.float32 and target.shape == (len(CLASS_NAMES),)
    assert set(target.unique().tolist()) <= {0.0, 1.0} and index == 3
    assert torch.equal(target, torch.from_numpy(ds.labels[3].astype(np.float32)))
    train, val, test = load_scene_splits(small_root, SMALL, build_transform(size, True), build_transform(size, False))
    assert (len(train), len(val), len(test)) == (96, 48, 48)
    assert train[0][0].shape == (3, size, size)


def test_cache_hit_does_not_regenerate(small_root):
    folder = dataset_dir(small_root, SMALL)
    annotations = folder / "annotations.json"
    image = folder / "images/train/00000.png"
    before = (annotations.stat().st_mtime_ns, image.stat().st_mtime_ns)
    assert generate_scenes(SMALL, small_root) == folder
    load_scenes(small_root, "train", SMALL)
    assert (annotations.stat().st_mtime_ns, image.stat().st_mtime_ns) == before
    # root may also be the dataset folder itself
    assert len(load_scenes(folder, "test", generate=False)) == SMALL.num_test


def test_missing_dataset_raises_with_path_and_fix(tmp_path):
    with pytest.raises(DatasetNotFoundError) as error:
        load_scenes(tmp_path, "train", SMALL, generate=False)
    message = str(error.value)
    assert str(dataset_dir(tmp_path, SMALL)) in message
    assert "generate_scenes" in message and "python -m msrn_core.running.make_scenes" in message
    # an interrupted generation (images but no annotations.json) is not a dataset either
    folder = dataset_dir(tmp_path, SMALL)
    (folder / "images/train").mkdir(parents=True)
    (folder / "images/train/00000.png").write_bytes(b"partial")
    with pytest.raises(DatasetNotFoundError, match="incomplete"):
        load_scenes(tmp_path, "train", SMALL, generate=False)
    # ... and generate=True repairs it
    assert len(load_scenes(tmp_path, "train", SceneConfig.small(), generate=True)) == SMALL.num_train


def test_config_validation_and_cache_names():
    assert SceneConfig().cache_name.startswith("scenes-s0-128px-2000-500-500-")
    assert SceneConfig().cache_name != SceneConfig(noise_rate=0.3).cache_name
    with pytest.raises(ValueError):
        SceneConfig(image_size=16)
    with pytest.raises(ValueError):
        load_scenes("data", "training")


# ----- image sizes, statistics, CLI -----------------------------------------------------------
@pytest.mark.parametrize("size", [32, 448])
def test_image_size_is_respected(tmp_path, size):
    config = SceneConfig(image_size=size, num_train=2, num_val=1, num_test=1)
    ds = load_scenes(tmp_path, "train", config)
    image = ds.load_image(1)
    assert image.size == (size, size)
    for boxes in ds.boxes:
        for _, x0, y0, x1, y1 in boxes:
            assert 0 <= x0 < x1 <= size and 0 <= y0 < y1 <= size
    # at 448 px the objects are drawn large: the boxes scale with the image
    if size == 448:
        assert max(x1 - x0 for boxes in ds.boxes for _, x0, _, x1, _ in boxes) > 40


def test_theme_groups_and_display_order():
    names = ["street", "kitchen", "farm", "seaside"]
    class_themes = [["kitchen"], ["street", "kitchen", "farm", "seaside"], ["farm", "seaside"], ["street"],
                    ["seaside"], ["farm"], ["street", "farm"]]
    assert theme_group_names(names) == names + ["hub (all themes)", "bridge (two themes)"]
    assert [theme_group(themes, names) for themes in class_themes] == [1, 4, 5, 0, 3, 2, 5]
    np.testing.assert_array_equal(theme_groups(class_themes, names), [1, 4, 5, 0, 3, 2, 5])
    # hub first, then street (1), street-farm bridge (2), farm (3), farm-seaside bridge (4), seaside (5), kitchen (6)
    assert theme_display_order(class_themes, names).tolist() == [1, 3, 6, 5, 2, 4, 0]
    # the dataset's own classes: person (the hub) first, dog between street and farm
    order = [CLASS_NAMES[i] for i in theme_display_order([c.themes for c in CLASSES], THEME_NAMES)]
    assert order[0] == "person" and order.index("car") < order.index("dog") < order.index("cow")


def test_label_statistics(small_root):
    ds = load_scenes(small_root, "train", SMALL, generate=False)
    stats = label_statistics(ds)
    assert stats["num_images"] == 96 and stats["num_classes"] == len(CLASS_NAMES)
    assert sum(stats["class_counts"].values()) == int(ds.labels.sum())
    assert stats["mean_labels_per_image"] == pytest.approx(ds.labels.sum() / 96)
    assert 2.0 <= stats["mean_labels_per_image"] <= 7.0
    assert set(stats["theme_counts"]) == set(THEME_NAMES)
    assert sum(stats["label_cardinality_histogram"].values()) == 96


def test_command_line(tmp_path, capsys):
    main(["--root", str(tmp_path), "--small", "--num-train", "8", "--num-val", "2", "--num-test", "2"])
    out = capsys.readouterr().out
    assert "street" in out and "labels / image" in out and "edges at t=0.4" in out
    folder = dataset_dir(tmp_path, SceneConfig.small(num_train=8, num_val=2, num_test=2))
    assert str(folder) in out and (folder / "annotations.json").exists()
    assert os.path.exists(folder / "images/val/00001.png")

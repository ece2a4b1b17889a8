"""Own photos and real layouts: the folder dataset, --classes, VOC boxes, and the CLI on each."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from msrn_core.data.real import VOC_CLASSES, load_dataset, read_class_list, select_classes
from msrn_core.data.real.folder import load_folder, split_labels
from msrn_core.data.real.voc import read_annotation_boxes
from photo_fixtures import FOLDER_CLASSES, make_coco_tree, make_folder_tree, make_voc_tree

TINY_CLI = ["--small", "--label-features", "onehot", "--batch-size", "4", "--embed-dim", "16", "--fc-hidden", "16",
            "--branches", "4", "--workers", "0", "--device", "cpu", "--image-size", "64"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ----------------------------------------------------------------- the folder dataset
def test_labels_split_on_semicolons_else_spaces():
    assert split_labels("cat dog") == ["cat", "dog"]
    assert split_labels("traffic light; car") == ["traffic light", "car"]
    assert split_labels("  ") == []
    assert split_labels("traffic light", semicolons=True) == ["traffic light"]  # the file uses ';' elsewhere


def test_folder_reads_labels_csv_with_its_split_column(tmp_path):
    make_folder_tree(tmp_path, count=20, with_split=True)
    train, val, test = load_folder(tmp_path)
    assert train.class_names == sorted(FOLDER_CLASSES)  # alphabetical, "traffic light" kept whole
    assert (len(train), len(val), len(test)) == (13, 3, 4)  # as the split column says
    assert all(i.startswith("images/") for i in train.image_ids)
    rows = {line.split(",")[0]: line.split(",")[1] for line in (tmp_path / "labels.csv").read_text().splitlines()[1:]}
    for split in (train, val, test):
        for image_id, labels in zip(split.image_ids, split.labels):
            assert {split.class_names[c] for c in np.flatnonzero(labels)} == set(rows[image_id].split(";"))
    assert {s.split for s in (train, val, test)} == {"train", "val", "test"}
    image, target, index = test[0]
    assert image.shape[0] == 3 and target.shape == (4,)


def test_folder_without_split_column_is_a_seeded_random_split(tmp_path):
    make_folder_tree(tmp_path, count=30)
    train, val, test = load_folder(tmp_path, seed=1)
    ids = [s.image_ids for s in (train, val, test)]
    assert sum(map(len, ids)) == 30 and len(test) == 6 and len(val) == 2
    assert not set(ids[0]) & set(ids[1]) and not set(ids[0]) & set(ids[2])
    assert [s.image_ids for s in load_folder(tmp_path, seed=1)] == ids
    assert [s.image_ids for s in load_folder(tmp_path, seed=2)] != ids


@pytest.mark.parametrize("content, message", [
    ("a.jpg,cat,train\nb.jpg,dog\n", "every row must have 2 fields"),
    ("a.jpg,cat,training\n", "unknown split value"),
    ("a.jpg,cat\na.jpg,dog\n", "more than once"),
    ("image,labels\n", "lists no images"),
    ("a.jpg,\nb.jpg,\n", "holds no labels"),
    ("a.jpg,cat\nmissing.jpg,dog\n", "1 of 2 images are missing"),
])
def test_folder_bad_labels_csv_is_named(tmp_path, content, message):
    from photo_fixtures import draw_photo

    draw_photo(tmp_path / "a.jpg", [], 1)
    draw_photo(tmp_path / "b.jpg", [], 1)
    (tmp_path / "labels.csv").write_text(content)
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        load_folder(tmp_path)


def test_folder_without_labels_csv_names_the_format(tmp_path):
    with pytest.raises(FileNotFoundError, match="no labels.csv.*\n.*Expected layout(.|\n)*own_photos.md"):
        load_folder(tmp_path)


# ----------------------------------------------------------------- --classes
def test_select_classes_keeps_every_image_and_follows_boxes(tmp_path):
    make_voc_tree(tmp_path, num_trainval=24, num_test=8)
    train, _, _ = load_dataset("voc2007", tmp_path, val_fraction=0.25)
    picked = select_classes(train, ["person", "cat"])
    assert picked.class_names == ["person", "cat"] and len(picked) == len(train)
    np.testing.assert_array_equal(picked.labels, train.labels[:, [14, 7]])
    np.testing.assert_array_equal(picked.difficult, train.difficult[:, [14, 7]])
    for before, after in zip(train.boxes, picked.boxes):
        assert after == [({14: 0, 7: 1}[c], *rest) for c, *rest in before if c in (14, 7)]
    assert train.class_names == list(VOC_CLASSES)  # the original split is untouched
    with pytest.raises(ValueError, match="no class 'kitten'.*its classes: aeroplane"):
        select_classes(train, ["kitten"])


def test_select_classes_on_the_scene_dataset_follows_per_class_attributes(small_scenes):
    _, _, train, _, _ = small_scenes
    names = train.class_names[3:6][::-1]
    picked = select_classes(train, names)
    assert picked.class_families == [train.class_families[train.class_names.index(n)] for n in names]
    assert all(0 <= box[0] < 3 for boxes in picked.boxes for box in boxes)


def test_class_list_from_option_or_file(tmp_path):
    assert read_class_list("cat, dog,person") == ["cat", "dog", "person"]
    (tmp_path / "classes.txt").write_text("cat\ntraffic light\n\n")
    assert read_class_list(str(tmp_path / "classes.txt")) == ["cat", "traffic light"]
    with pytest.raises(ValueError, match="names no class"):
        read_class_list(" , ")


# ----------------------------------------------------------------- VOC and COCO layouts
def test_voc_boxes_come_from_the_annotations_xml(tmp_path):
    voc = make_voc_tree(tmp_path, num_trainval=24, num_test=8)
    (voc / "Annotations" / "x.xml").write_text(
        "<annotation><object><name>dog</name><bndbox><xmin>1</xmin><ymin>11</ymin><xmax>30</xmax><ymax>40</ymax>"
        "</bndbox></object><object><name>unicorn</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>2</xmax>"
        "<ymax>2</ymax></bndbox></object></annotation>")
    assert read_annotation_boxes(voc / "Annotations" / "x.xml") == [(VOC_CLASSES.index("dog"), 0, 10, 30, 40)]
    train, val, test = load_dataset("voc2007", tmp_path, val_fraction=0.25)
    for split in (train, val, test):
        assert len(split.boxes) == len(split)
        for labels, boxes in zip(split.labels, split.boxes):  # every positive label has its box
            assert {c for c, *_ in boxes} == set(np.flatnonzero(labels))


def test_pointing_game_runs_on_voc_boxes(tmp_path):
    from msrn_core.attention import pointing_game_score
    from msrn_core.data.dataset import build_transform
    from msrn_core.model import ModelConfig, build_model

    make_voc_tree(tmp_path, num_trainval=24, num_test=8)
    _, _, test = load_dataset("voc2007", tmp_path, eval_transform=build_transform(64, train=False))
    model = build_model(ModelConfig(backbone="resnet18", embed_dim=16, fc_hidden=16, gat_hidden=16, num_groups=2),
                        torch.eye(20), torch.eye(20))
    result = pointing_game_score(model, test, max_images=8)
    assert result["num_images"] == 8 and result["num_trials"] == int(test.labels[:8].sum())
    assert 0 < result["random_baseline"] < 1


def test_coco_layout_fixture_loads(tmp_path):
    make_coco_tree(tmp_path, images_per_split=12)
    train, val, test = load_dataset("coco2014", tmp_path, val_fraction=0.25, classes=["person", "dog", "car"])
    assert train.class_names == ["person", "dog", "car"] and len(train) + len(val) == 12 and len(test) == 12
    assert train.labels.sum(axis=1).max() <= 2


# ----------------------------------------------------------------- the command line
def test_cli_trains_and_evaluates_a_folder_dataset(tmp_path, capsys):
    from msrn_core.running.train import main

    make_folder_tree(tmp_path / "photos", count=30)
    out = tmp_path / "run"
    assert main(["--dataset", "folder", "--data-root", str(tmp_path / "photos"), *TINY_CLI, "--out", str(out),
                 "--test-fraction", "0.3"]) == 0
    metrics = json.loads((out / "test_metrics.json").read_text())
    assert metrics["num_images"] == 9 and set(metrics["per_class_ap"]) == set(FOLDER_CLASSES)
    assert main(["--dataset", "folder", "--data-root", str(tmp_path / "photos"), *TINY_CLI, "--out", str(out),
                 "--test-fraction", "0.3", "--evaluate", str(out / "best.pt")]) == 0
    assert torch.load(out / "best.pt", weights_only=True)["image_size"] == 64


def test_voc_with_three_positive_classes_names_the_option_and_trains_with_it(tmp_path, capsys):
    from msrn_core.running.train import main

    make_voc_tree(tmp_path / "data", positive_classes=["person", "cat", "motorbike"], num_trainval=24, num_test=8)
    base = ["--dataset", "voc2007", "--data-root", str(tmp_path / "data"), *TINY_CLI, "--out", str(tmp_path / "run")]
    with pytest.raises(ValueError, match=r"no positive example in the training split: aeroplane, bicycle(.|\n)*"
                                         r"--classes cat,motorbike,person \(Python"):
        main(base)
    assert main([*base, "--classes", "cat,motorbike,person"]) == 0
    metrics = json.loads((tmp_path / "run" / "test_metrics.json").read_text())
    assert list(metrics["per_class_ap"]) == ["cat", "motorbike", "person"]


def test_cli_refuses_a_test_fraction_for_datasets_with_a_test_split(tmp_path):
    from msrn_core.running.train import main

    with pytest.raises(SystemExit, match="--test-fraction goes with --dataset folder"):
        main(["--dataset", "voc2007", "--data-root", str(tmp_path), "--test-fraction", "0.2"])

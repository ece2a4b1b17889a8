"""The real-benchmark loaders on small fixture trees in each dataset's exact on-disk layout."""
from __future__ import annotations

import json
import logging
import os

import numpy as np
import pytest
import torch
from PIL import Image

from msrn_core.data.dataset import DatasetNotFoundError
from msrn_core.data.real import (COCO_CLASSES, DATASETS, VOC_CLASSES, cached_label_statistics, holdout_split,
                                load_apparel, load_coco2014, load_dataset, load_nuswide, load_voc2007)
from msrn_core.graph import LabelGraph, cooccurrence_counts


def write_jpeg(path, seed: int = 0, size: int = 24) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, format="JPEG")


# ----------------------------------------------------------------- VOC 2007
def make_voc(root, num_trainval: int = 30, num_test: int = 12, seed: int = 0):
    """VOCdevkit/VOC2007 with random 1 / -1 / 0 values; returns {split: (ids, values)}."""
    rng = np.random.default_rng(seed)
    voc = root / "VOCdevkit" / "VOC2007"
    main = voc / "ImageSets" / "Main"
    main.mkdir(parents=True)
    truth = {}
    for split, count, offset in (("trainval", num_trainval, 1), ("test", num_test, 5000)):
        ids = [f"{offset + i:06d}" for i in range(count)]
        values = rng.choice([1, -1, -1, -1, 0], size=(count, len(VOC_CLASSES)))
        values[0] = 1  # every class has a positive
        for c, name in enumerate(VOC_CLASSES):
            lines = [f"{image_id} {value:2d}" for image_id, value in zip(ids, values[:, c])]
            (main / f"{name}_{split}.txt").write_text("\n".join(lines) + "\n")
        for i, image_id in enumerate(ids):
            write_jpeg(voc / "JPEGImages" / f"{image_id}.jpg", seed=offset + i)
        truth[split] = (ids, values)
    return voc, truth


@pytest.fixture
def voc_tree(tmp_path):
    voc, truth = make_voc(tmp_path / "data")
    return tmp_path / "data", voc, truth


def test_voc_labels_difficult_and_class_order(voc_tree):
    root, voc, truth = voc_tree
    train, val, test = load_voc2007(root, val_fraction=0.2, seed=3)
    assert train.class_names == val.class_names == test.class_names == list(VOC_CLASSES)
    assert list(VOC_CLASSES) == sorted(VOC_CLASSES) and len(VOC_CLASSES) == 20  # the devkit's order
    ids, values = truth["test"]
    assert test.image_ids == ids
    np.testing.assert_array_equal(test.labels, (values == 1).astype(np.uint8))
    np.testing.assert_array_equal(test.difficult, values == 0)
    assert test.difficult.any() and not (test.labels.astype(bool) & test.difficult).any()
    ids, values = truth["trainval"]
    for split in (train, val):  # the held-out rows keep their own labels and difficult flags
        rows = [ids.index(image_id) for image_id in split.image_ids]
        np.testing.assert_array_equal(split.labels, (values[rows] == 1).astype(np.uint8))
        np.testing.assert_array_equal(split.difficult, values[rows] == 0)
        assert all(path == voc / "JPEGImages" / f"{i}.jpg" for path, i in zip(split.image_paths, split.image_ids))


def test_voc_validation_is_a_fixed_held_out_part_of_trainval(voc_tree):
    root, _, truth = voc_tree
    train, val, test = load_voc2007(root, val_fraction=0.2, seed=3)
    trainval_ids = truth["trainval"][0]
    assert len(val) == 6 and len(train) == 24
    assert sorted(train.image_ids + val.image_ids) == trainval_ids
    assert not set(train.image_ids) & set(val.image_ids)
    assert not set(val.image_ids) & set(test.image_ids)
    again = load_voc2007(root, val_fraction=0.2, seed=3)[1]
    other = load_voc2007(root, val_fraction=0.2, seed=4)[1]
    assert again.image_ids == val.image_ids and other.image_ids != val.image_ids


def test_voc_items_follow_the_dataset_interface(voc_tree):
    from msrn_core.data.dataset import build_transform

    root, _, _ = voc_tree
    train, _, test = load_voc2007(root, build_transform(32, train=True), build_transform(32, train=False))
    image, target, index = test[2]
    assert image.shape == (3, 32, 32) and index == 2
    assert torch.equal(target, torch.from_numpy(test.labels[2].astype(np.float32)))
    assert train[0][0].shape == (3, 32, 32)


def test_voc_is_found_from_several_roots(voc_tree):
    root, voc, _ = voc_tree
    assert load_voc2007(voc)[2].image_ids == load_voc2007(root)[2].image_ids
    assert load_voc2007(root / "VOCdevkit")[2].root == voc


def test_voc_missing_folder_names_path_layout_and_download(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        load_voc2007(tmp_path / "nowhere")
    message = str(info.value)
    for expected in (str(tmp_path / "nowhere" / "VOCdevkit" / "VOC2007"), "JPEGImages", "_trainval.txt",
                     "download_voc2007", "VOCtest_06-Nov-2007.tar"):
        assert expected in message


def test_voc_missing_test_archive_and_missing_images_are_named(voc_tree):
    root, voc, _ = voc_tree
    (voc / "JPEGImages" / "000003.jpg").unlink()
    with pytest.raises(DatasetNotFoundError, match="000003.jpg"):
        load_voc2007(root)
    write_jpeg(voc / "JPEGImages" / "000003.jpg")
    for path in (voc / "ImageSets" / "Main").glob("*_test.txt"):
        path.unlink()
    with pytest.raises(DatasetNotFoundError, match="test archive is not extracted"):
        load_voc2007(root)


def test_voc_download_completes_a_half_done_download_and_skips_a_complete_one(voc_tree, monkeypatch):
    from msrn_core.data import download

    root, voc, truth = voc_tree
    test_files = {path: path.read_text() for path in (voc / "ImageSets" / "Main").glob("*_test.txt")}
    for path in test_files:
        path.unlink()  # the test archive never arrived
    calls = []

    def fetch_the_rest(where):
        calls.append(where)
        for path, text in test_files.items():
            path.write_text(text)
        return voc

    monkeypatch.setattr(download, "download_voc2007", fetch_the_rest)
    _, _, test = load_voc2007(root, download=True)
    assert calls == [root] and len(test) == len(truth["test"][0])
    load_voc2007(root, download=True)  # complete now: nothing to fetch
    assert calls == [root]


def test_voc_corrupt_image_set_is_refused(voc_tree):
    root, voc, _ = voc_tree
    (voc / "ImageSets" / "Main" / "cat_trainval.txt").write_text("000001 2\n")
    with pytest.raises(ValueError, match="corrupt"):
        load_voc2007(root)


# ----------------------------------------------------------------- COCO 2014
# Category ids in COCO's own numbering (person = 1 ... toothbrush = 90), to check that the class
# order does not follow them.
COCO_IDS = {"person": 1, "bicycle": 2, "car": 3, "airplane": 5, "dog": 18, "tv": 72, "zebra": 24,
            "dining table": 67, "toothbrush": 90}


def coco_categories():
    spare = iter(sorted(set(range(1, 91)) - set(COCO_IDS.values())))
    return [{"id": COCO_IDS.get(name) or next(spare), "name": name, "supercategory": "thing"}
            for name in sorted(COCO_CLASSES, key=lambda n: COCO_IDS.get(n, 100))]


def make_coco(root, images_per_split: int = 12):
    """train2014/, val2014/ and annotations/instances_*.json; returns {split: {file: label names}}."""
    categories = coco_categories()
    ids = {c["name"]: c["id"] for c in categories}
    names = ["person", "dog", "car", "tv", "zebra", "dining table", "toothbrush", "airplane"]
    truth = {}
    for split, offset in (("train2014", 0), ("val2014", 100000)):
        images, annotations, labels = [], [], {}
        for i in range(images_per_split):
            image_id = offset + 10 * i + 7
            file_name = f"COCO_{split}_{image_id:012d}.jpg"
            write_jpeg(root / split / file_name, seed=image_id)
            images.append({"id": image_id, "file_name": file_name, "width": 24, "height": 24})
            chosen = [] if i == 3 else [names[i % len(names)], names[(3 * i + 1) % len(names)]]
            for j, name in enumerate(chosen + chosen[:1]):  # a repeated category counts once
                annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": ids[name],
                                    "bbox": [1, 1, 5, 5], "area": 25.0, "iscrowd": int(j == 1),
                                    "segmentation": [[1, 1, 6, 1, 6, 6]]})
            labels[file_name] = set(chosen)
        (root / "annotations").mkdir(parents=True, exist_ok=True)
        (root / "annotations" / f"instances_{split}.json").write_text(json.dumps(
            {"images": images, "annotations": annotations, "categories": categories}))
        truth[split] = labels
    return truth


def test_coco_class_order_follows_mlgcn_category_json(tmp_path):
    # A few entries of ML-GCN's category.json (alphabetical names), which MSRN's code reuses.
    reference = {"airplane": 0, "dining table": 27, "person": 49, "toothbrush": 71, "tv": 75, "zebra": 79}
    assert len(COCO_CLASSES) == 80 and len(set(COCO_CLASSES)) == 80
    assert {name: COCO_CLASSES.index(name) for name in reference} == reference


def test_coco_labels_splits_and_unannotated_images(tmp_path):
    pytest.importorskip("pycocotools")
    truth = make_coco(tmp_path / "coco")
    train, val, test = load_coco2014(tmp_path, val_fraction=0.25, seed=0)
    assert train.class_names == list(COCO_CLASSES)
    assert len(test) == 11 and len(train) + len(val) == 11 and len(val) == 3  # the unannotated image dropped
    for split, dataset in (("train2014", train), ("train2014", val), ("val2014", test)):
        for path, row in zip(dataset.image_paths, dataset.labels):
            assert {COCO_CLASSES[c] for c in np.flatnonzero(row)} == truth[split][path.name]
            assert path.parent.name == split
    assert not set(train.image_ids) & set(val.image_ids)
    kept = load_coco2014(tmp_path, val_fraction=0.25, keep_unannotated=True)[2]
    assert len(kept) == 12 and (kept.labels.sum(axis=1) == 0).sum() == 1


def test_coco_missing_files_are_named(tmp_path):
    pytest.importorskip("pycocotools")
    with pytest.raises(DatasetNotFoundError, match="instances_train2014.json"):
        load_coco2014(tmp_path)
    make_coco(tmp_path / "coco")
    (tmp_path / "coco" / "annotations" / "instances_val2014.json").unlink()
    with pytest.raises(DatasetNotFoundError) as info:
        load_coco2014(tmp_path / "coco")
    assert "instances_val2014.json" in str(info.value) and "cocodataset.org" in str(info.value)


def test_coco_annotation_file_of_another_label_set_is_refused(tmp_path):
    pytest.importorskip("pycocotools")
    make_coco(tmp_path)
    path = tmp_path / "annotations" / "instances_train2014.json"
    data = json.loads(path.read_text())
    data["categories"] = data["categories"][:5]
    data["annotations"] = [a for a in data["annotations"]
                           if a["category_id"] in {c["id"] for c in data["categories"]}]
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="80 COCO categories"):
        load_coco2014(tmp_path)


# ----------------------------------------------------------------- NUS-WIDE
NUS_CONCEPTS = ["sky", "animal", "water", "person", "boats"]  # not alphabetical: the file's order counts


def make_nuswide(root, count: int = 10):
    """The official layout with two images missing on disk and one image without any concept."""
    rng = np.random.default_rng(1)
    (root / "ConceptsList").mkdir(parents=True)
    (root / "ConceptsList" / "Concepts81.txt").write_text("\n".join(NUS_CONCEPTS) + "\n")
    truth = {}
    for split in ("Train", "Test"):
        entries = [f"{NUS_CONCEPTS[i % 5]}\\{i:04d}_{split.lower()}{i}.jpg" for i in range(count)]
        values = rng.integers(0, 2, size=(count, len(NUS_CONCEPTS)))
        values[0] = 1
        values[1] = 0  # no concept at all
        (root / "ImageList").mkdir(exist_ok=True)
        (root / "ImageList" / f"{split}Imagelist.txt").write_text("\r\n".join(entries) + "\r\n")
        labels_dir = root / "Groundtruth" / "TrainTestLabels"
        labels_dir.mkdir(parents=True, exist_ok=True)
        for c, concept in enumerate(NUS_CONCEPTS):
            (labels_dir / f"Labels_{concept}_{split}.txt").write_text("\n".join(map(str, values[:, c])) + "\n")
        for i, entry in enumerate(entries):
            if i != count - 1:  # the last image is missing, as in many copies of the dataset
                write_jpeg(root / "Flickr" / entry.replace("\\", "/"), seed=i)
        truth[split] = (entries, values)
    return truth


def test_nuswide_labels_class_order_and_skipped_images(tmp_path):
    truth = make_nuswide(tmp_path / "NUS-WIDE")
    with pytest.warns(UserWarning, match="1 of 10 listed images are missing"):
        train, val, test = load_nuswide(tmp_path, val_fraction=0.25)
    assert test.class_names == NUS_CONCEPTS
    entries, values = truth["Test"]
    expected = [i for i in range(10) if i not in (1, 9)]  # no concept / missing on disk
    assert test.image_ids == [entries[i].replace("\\", "/") for i in expected]
    np.testing.assert_array_equal(test.labels, values[expected])
    assert len(train) + len(val) == 8 and len(val) == 2
    assert all(path.exists() for path in train.image_paths + val.image_paths)
    with pytest.warns(UserWarning):
        kept = load_nuswide(tmp_path, val_fraction=0.25, keep_unlabeled=True)[2]
    assert len(kept) == 9


def test_nuswide_missing_or_corrupt_files_are_named(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="TrainImagelist.txt"):
        load_nuswide(tmp_path)
    make_nuswide(tmp_path)
    (tmp_path / "Groundtruth" / "TrainTestLabels" / "Labels_water_Test.txt").unlink()
    with pytest.raises(DatasetNotFoundError, match="Labels_water_Test.txt"), pytest.warns(UserWarning):
        load_nuswide(tmp_path)
    (tmp_path / "Groundtruth" / "TrainTestLabels" / "Labels_water_Test.txt").write_text("1\n0\n")
    with pytest.raises(ValueError, match="corrupt"), pytest.warns(UserWarning):
        load_nuswide(tmp_path)


# ----------------------------------------------------------------- Apparel
APPAREL_FOLDERS = {"black_dress": 5, "blue_shirt": 6, "red_dress": 4, "white_shoes": 5, "blue_pants": 4}


def make_apparel(root):
    for folder, count in APPAREL_FOLDERS.items():
        for i in range(count):
            write_jpeg(root / folder / f"{folder}_{i:03d}.jpg", seed=i)


def test_apparel_labels_are_colour_and_garment(tmp_path):
    make_apparel(tmp_path / "apparel" / "dataset")  # the Kaggle zip adds a folder level
    train, val, test = load_apparel(tmp_path, val_fraction=0.2, seed=0)
    colours, garments = ["black", "blue", "red", "white"], ["dress", "pants", "shirt", "shoes"]
    assert test.class_names == colours + garments
    for dataset in (train, val, test):
        for path, row in zip(dataset.image_paths, dataset.labels):
            colour, garment = path.parent.name.split("_")
            assert [dataset.class_names[c] for c in np.flatnonzero(row)] == [colour, garment]


def test_apparel_is_split_half_and_half_with_a_fixed_seed(tmp_path):
    make_apparel(tmp_path)
    total = sum(APPAREL_FOLDERS.values())
    train, val, test = load_apparel(tmp_path, val_fraction=0.2, seed=0)
    assert len(test) == round(total / 2) and len(train) + len(val) + len(test) == total
    assert len(val) == round(0.2 * (total - len(test)))
    ids = train.image_ids + val.image_ids + test.image_ids
    assert len(set(ids)) == total
    assert load_apparel(tmp_path, val_fraction=0.2, seed=0)[2].image_ids == test.image_ids
    assert load_apparel(tmp_path, val_fraction=0.2, seed=1)[2].image_ids != test.image_ids


def test_apparel_missing_names_kaggle(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        load_apparel(tmp_path)
    assert "kaggle.com/kaiska/apparel-dataset" in str(info.value) and "black_dress" in str(info.value)


# ----------------------------------------------------------------- registry and splits
def test_registry_loads_every_dataset_by_name(tmp_path, voc_tree):
    root, _, _ = voc_tree
    assert set(DATASETS) == {"scenes", "voc2007", "coco2014", "nuswide", "apparel", "folder"}
    by_name = load_dataset("voc2007", root, val_fraction=0.2)
    direct = load_voc2007(root, val_fraction=0.2)
    for a, b in zip(by_name, direct):
        assert a.image_ids == b.image_ids and a.name == b.name
    make_apparel(tmp_path / "clothes")
    assert len(load_dataset("apparel", tmp_path / "clothes")[2]) == 12
    with pytest.raises(ValueError, match="voc2007"):
        load_dataset("imagenet", root)


def test_holdout_split_is_a_seeded_partition():
    keep, held = holdout_split(50, 0.1, seed=7)
    assert len(held) == 5 and sorted(np.concatenate([keep, held]).tolist()) == list(range(50))
    np.testing.assert_array_equal(holdout_split(50, 0.1, seed=7)[1], held)
    assert len(holdout_split(3, 0.01, seed=0)[1]) == 1  # at least one item on each side
    with pytest.raises(ValueError):
        holdout_split(10, 1.0, seed=0)


# ----------------------------------------------------------------- graph statistics cache
def test_label_statistics_are_cached_beside_the_dataset_and_recomputed_when_stale(voc_tree, monkeypatch):
    root, voc, _ = voc_tree
    train = load_voc2007(root, val_fraction=0.2, seed=0)[0]
    counts, nums, path = cached_label_statistics(train)
    assert path.parent == voc and path.name == "msrn_label_statistics_train.npz"
    y = train.labels.astype(np.int64)
    reference = y.T @ y
    np.testing.assert_array_equal(nums, np.diag(reference))
    np.fill_diagonal(reference, 0)
    np.testing.assert_array_equal(counts, reference)

    from msrn_core.data.real import statistics

    def must_not_run(labels):
        raise AssertionError("recomputed although the cache is fresh")

    monkeypatch.setattr(statistics, "cooccurrence_counts", must_not_run)
    cached_counts, _, _ = cached_label_statistics(train)
    np.testing.assert_array_equal(cached_counts, counts)
    monkeypatch.setattr(statistics, "cooccurrence_counts", cooccurrence_counts)

    other = load_voc2007(root, val_fraction=0.2, seed=1)[0]  # another held-out split: stale
    other_counts, other_nums, _ = cached_label_statistics(other)
    np.testing.assert_array_equal(other_nums, other.labels.sum(axis=0))
    with np.load(path) as stored:
        assert stored["nums"].tolist() == other_nums.tolist()


def test_unwritable_dataset_folder_only_costs_the_cache(voc_tree, tmp_path, caplog):
    root, _, _ = voc_tree
    train = load_voc2007(root)[0]
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where the cache folder would be")
    with caplog.at_level(logging.WARNING):
        counts, nums, path = cached_label_statistics(train, blocker)
    assert path is None and "could not cache" in caplog.text
    np.testing.assert_array_equal(nums, train.labels.sum(axis=0))


def test_prepare_dataset_builds_the_graph_from_the_cached_training_statistics(voc_tree):
    from msrn_core.running.experiment import prepare_dataset

    root, voc, _ = voc_tree
    setup = prepare_dataset("voc2007", root, image_size=32, label_features="onehot", val_fraction=0.2)
    reference = LabelGraph.from_labels(setup.train.labels, VOC_CLASSES)
    np.testing.assert_allclose(setup.graph.normalized, reference.normalized)
    assert (voc / "msrn_label_statistics_train.npz").exists()
    assert setup.test.difficult is not None and setup.label_features.shape == (20, 20)
    assert setup.train[0][0].shape == (3, 32, 32)


def test_train_cli_runs_on_a_real_benchmark_layout(voc_tree, tmp_path):
    from msrn_core.running.train import main

    root, _, _ = voc_tree
    out = tmp_path / "run"
    code = main(["--dataset", "voc2007", "--data-root", str(root), "--small", "--label-features", "onehot",
                 "--batch-size", "8", "--embed-dim", "16", "--fc-hidden", "16", "--branches", "4",
                 "--workers", "0", "--device", "cpu", "--out", str(out), "--val-fraction", "0.2"])
    assert code == 0
    metrics = json.loads((out / "test_metrics.json").read_text())
    assert metrics["num_images"] == 12  # the VOC test split, difficult items left out of AP
    with pytest.raises(SystemExit, match="voc2007 only"):
        main(["--dataset", "apparel", "--download", "--data-root", str(root)])
    with pytest.raises(SystemExit, match="--label-features glove"):
        main(["--dataset", "voc2007", "--data-root", str(root), "--glove-path", str(tmp_path / "glove.txt")])


# ----------------------------------------------------------------- ImageNet weights
def test_imagenet_weights_offline_error_names_url_cache_and_scratch(tmp_path, monkeypatch):
    import urllib.error

    from msrn_core.model import PretrainedWeightsError, load_resnet

    def offline(url, dst, *args, **kwargs):
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(PretrainedWeightsError) as info:
        load_resnet("resnet18", pretrained=True)
    message = str(info.value)
    assert "https://download.pytorch.org/models/resnet18" in message
    assert os.path.join(str(tmp_path), "checkpoints") in message.replace("/", os.sep)
    assert "pretrained=False" in message and "--pretrained" in message

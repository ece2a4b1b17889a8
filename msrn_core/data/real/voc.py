"""PASCAL VOC 2007 in the official ``VOCdevkit/VOC2007`` layout (20 classes).

Splits: ``trainval`` (5,011 images) trains, minus a fixed-seed held-out fraction used for
validation; ``test`` (4,952 images) tests. Labels come from ``ImageSets/Main/<class>_<split>.txt``
(one ``<image id> <value>`` per line): ``1`` present, ``-1`` absent, ``0`` *difficult*.

Difficult entries (the VOC convention, :mod:`msrn_core.metrics`) are 0 in the label matrix, so they count as negatives for
training, for the label graph and for CP/CR/OP/OR, and True in the ``difficult`` mask, so AP
leaves them out.

Boxes: where ``Annotations/<id>.xml`` exist, each split's ``boxes[i]`` lists image i's objects as
``(class index, x0, y0, x1, y1)`` in pixels (end exclusive; VOC's 1-based inclusive corners
converted), read on first use. The pointing game (:func:`msrn_core.attention.pointing_game_score`)
scores attention maps against them.
"""
from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Callable

import numpy as np

from ..dataset import DatasetNotFoundError
from .common import (DEFAULT_SPLIT_SEED, DEFAULT_VAL_FRACTION, BenchmarkDataset, build_splits, find_dataset_dir,
                     not_found, require_images)

VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train",
    "tvmonitor",
)

LAYOUT = """\
  <data-root>/VOCdevkit/VOC2007/
    JPEGImages/000001.jpg ... 009963.jpg
    ImageSets/Main/<class>_trainval.txt and <class>_test.txt for the 20 classes
      (lines "000005 -1": 1 present, -1 absent, 0 difficult)"""

HOW_TO_GET = (
    "Get it with msrn_core.data.download.download_voc2007(<data-root>) (CLI: add --download), or "
    "download VOCtrainval_06-Nov-2007.tar and VOCtest_06-Nov-2007.tar from "
    "http://host.robots.ox.ac.uk/pascal/VOC/voc2007/ and extract both with `tar -xf <archive> -C <data-root>`."
)


def find_voc2007(root: str | os.PathLike) -> Path:
    """The ``VOC2007`` folder under ``root`` (``root`` itself, ``VOC2007``, ``VOCdevkit/VOC2007`` ...)."""
    return find_dataset_dir(root, ["", "VOC2007", "VOCdevkit/VOC2007", "voc2007/VOCdevkit/VOC2007"],
                            "ImageSets/Main", "PASCAL VOC 2007", LAYOUT, HOW_TO_GET)


def has_image_set(voc_dir: Path, split: str) -> bool:
    """Whether the per-class files of ``trainval`` or ``test`` are all there."""
    return all((voc_dir / "ImageSets" / "Main" / f"{name}_{split}.txt").exists() for name in VOC_CLASSES)


def read_image_set(voc_dir: Path, split: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    """``(image ids, labels, difficult)`` of ``trainval`` or ``test`` from the per-class files."""
    main = voc_dir / "ImageSets" / "Main"
    ids: list[str] | None = None
    columns, hard = [], []
    for name in VOC_CLASSES:
        path = main / f"{name}_{split}.txt"
        if not path.exists():
            raise not_found(f"PASCAL VOC 2007: missing {path}"
                            + (" (the test archive is not extracted)" if split == "test" else ""), LAYOUT, HOW_TO_GET)
        rows = [line.split() for line in path.read_text().splitlines() if line.strip()]
        if not rows:
            raise ValueError(f"{path} is empty: it must list every {split} image as '<image id> <1|-1|0>' "
                             "(re-extract the archive)")
        if any(len(row) != 2 or row[1] not in ("1", "-1", "0") for row in rows):
            raise ValueError(f"{path} is corrupt: every line must be '<image id> <1|-1|0>'")
        class_ids = [row[0] for row in rows]
        if ids is None:
            ids = class_ids
        elif class_ids != ids:
            raise ValueError(f"{path} lists other images than {VOC_CLASSES[0]}_{split}.txt; "
                             "the ImageSets/Main files are inconsistent (re-extract the archive)")
        values = np.array([int(row[1]) for row in rows], dtype=np.int64)
        columns.append(values == 1)
        hard.append(values == 0)
    labels = np.stack(columns, axis=1).astype(np.uint8)
    return list(ids or []), labels, np.stack(hard, axis=1)


def read_annotation_boxes(path: Path, class_names=VOC_CLASSES) -> list[tuple[int, float, float, float, float]]:
    """``(class index, x0, y0, x1, y1)`` of every object in one ``Annotations/<id>.xml``.

    VOC corners are 1-based and inclusive (``xmin = 1`` is the first pixel column), so
    ``x0 = xmin - 1`` and ``x1 = xmax``: the box covers ``x0 <= x < x1`` in 0-based pixels.
    Objects of classes not in ``class_names`` are skipped.
    """
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as error:
        raise ValueError(f"{path} is not valid XML ({error}); re-extract the VOC archive") from None
    boxes = []
    for obj in root.iter("object"):
        name = (obj.findtext("name") or "").strip()
        box = obj.find("bndbox")
        if name not in class_names or box is None:
            continue
        x0, y0, x1, y1 = (float(box.findtext(key)) for key in ("xmin", "ymin", "xmax", "ymax"))
        boxes.append((class_names.index(name), x0 - 1, y0 - 1, x1, y1))
    return boxes


class AnnotationBoxes(Sequence):
    """``boxes[i]`` of a split, parsed from ``Annotations/<id>.xml`` on first access (then kept)."""

    def __init__(self, annotation_dir: Path, image_ids: list[str]):
        self.annotation_dir = Path(annotation_dir)
        self.image_ids = list(image_ids)
        self._cache: dict[int, list] = {}

    def __len__(self) -> int:
        return len(self.image_ids)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index not in self._cache:
            path = self.annotation_dir / f"{self.image_ids[index]}.xml"
            self._cache[index] = read_annotation_boxes(path) if path.exists() else []
        return self._cache[index]


def _image_paths(voc_dir: Path, ids: list[str], split: str) -> list[Path]:
    return require_images([voc_dir / "JPEGImages" / f"{image_id}.jpg" for image_id in ids],
                          f"PASCAL VOC 2007 {split}", LAYOUT, HOW_TO_GET)


def load_voc2007(root: str | os.PathLike = "data", train_transform: Callable | None = None,
                 eval_transform: Callable | None = None, *, val_fraction: float = DEFAULT_VAL_FRACTION,
                 seed: int = DEFAULT_SPLIT_SEED, download: bool = False,
                 ) -> tuple[BenchmarkDataset, BenchmarkDataset, BenchmarkDataset]:
    """``(train, val, test)`` of VOC 2007: val is a held-out ``val_fraction`` of trainval.

    With ``download=True`` a missing dataset is first fetched and extracted under ``root``
    (:func:`msrn_core.data.download.download_voc2007`).
    """
    try:
        voc_dir = find_voc2007(root)
    except DatasetNotFoundError:
        if not download:
            raise
        voc_dir = None
    if download and (voc_dir is None or not all(has_image_set(voc_dir, split) for split in ("trainval", "test"))):
        from ..download import download_voc2007

        # missing, or half there (an interrupted download): fetches and extracts only what is missing
        voc_dir = download_voc2007(root)
    splits = {}
    for split in ("trainval", "test"):
        ids, labels, difficult = read_image_set(voc_dir, split)
        splits[split] = (_image_paths(voc_dir, ids, split), labels, ids, difficult)
    result = build_splits("voc2007", voc_dir, VOC_CLASSES, splits["trainval"], splits["test"], val_fraction,
                          seed, train_transform, eval_transform)
    if (voc_dir / "Annotations").is_dir():
        for split in result:
            split.boxes = AnnotationBoxes(voc_dir / "Annotations", split.image_ids)
    return result

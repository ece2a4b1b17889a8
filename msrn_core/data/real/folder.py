"""Your own labelled photos: a folder of images plus ``labels.csv``.

One row per image: the file name (relative to the folder), its labels, and optionally its split::

    image,labels,split
    beach_01.jpg,person dog,train
    kitchen_07.jpg,cat;bowl;person,train
    street_03.jpg,car;traffic light,val
    park_12.jpg,dog,test

- Labels are separated by ``;`` when any row of the file uses ``;`` (then names may contain
  spaces: ``traffic light``), else by spaces. A row with an empty label field is an image without any of
  the labels (a negative for every class).
- The header row is optional (recognised by its first field ``image``, ``file`` or ``filename``).
- The split column holds ``train``, ``val`` or ``test``. Without it, a fixed-seed random split
  puts ``test_fraction`` of the images in test and ``val_fraction`` of the rest in val.
- The classes are the labels that occur, in alphabetical order.

See ``docs/own_photos.md`` for a worked example, and ``--classes`` (any dataset) to keep only some
labels.
"""
from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Callable

import numpy as np

from .common import (DEFAULT_SPLIT_SEED, DEFAULT_VAL_FRACTION, BenchmarkDataset, holdout_split, not_found,
                     require_images)

LABELS_FILE = "labels.csv"
DEFAULT_TEST_FRACTION = 0.2
SPLIT_NAMES = ("train", "val", "test")
HEADER_NAMES = ("image", "file", "filename", "file_name")

LAYOUT = """\
  <data-root>/                 (a folder of your photos)
    labels.csv                 rows "<file name>,<labels separated by spaces or ;>[,<train|val|test>]"
    beach_01.jpg ...           (paths in labels.csv are relative to this folder)"""

HOW_TO_GET = "Write labels.csv yourself: docs/own_photos.md shows the format with an example."


def split_labels(field: str, semicolons: bool | None = None) -> list[str]:
    """The labels of one ``labels`` field: separated by ``;`` (``semicolons``; by default when the
    field holds one), else by spaces."""
    semicolons = ";" in field if semicolons is None else semicolons
    parts = field.split(";") if semicolons else field.split()
    return [part.strip() for part in parts if part.strip()]


def read_labels_csv(path: Path) -> tuple[list[str], list[list[str]], list[str] | None]:
    """``(file names, labels per image, splits or None)`` from ``labels.csv``; one clear error per problem."""
    with open(path, newline="", encoding="utf-8-sig") as handle:
        rows = [row for row in csv.reader(handle) if any(cell.strip() for cell in row)]
    if rows and rows[0][0].strip().lower() in HEADER_NAMES:
        rows = rows[1:]
    if not rows:
        raise ValueError(f"{path} lists no images: write one row per image, '<file name>,<labels>[,<split>]'")
    widths = {len(row) for row in rows}
    if not widths <= {1, 2, 3} or (3 in widths and widths != {3}):
        raise ValueError(f"{path}: every row must have 2 fields (file, labels), or every row 3 (file, labels, split); "
                         f"found rows of {sorted(widths)} fields (labels are separated by spaces or ';', not commas)")
    names = [row[0].strip() for row in rows]
    semicolons = any(len(row) > 1 and ";" in row[1] for row in rows)  # one separator for the whole file
    labels = [split_labels(row[1], semicolons) if len(row) > 1 else [] for row in rows]
    splits = None
    if 3 in widths:
        splits = [row[2].strip().lower() for row in rows]
        wrong = sorted({s for s in splits if s not in SPLIT_NAMES})
        if wrong:
            raise ValueError(f"{path}: unknown split value(s) {', '.join(map(repr, wrong))}; use train, val or test")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"{path} lists {duplicates[0]!r} more than once ({len(duplicates)} duplicated file names)")
    return names, labels, splits


def load_folder(root: str | os.PathLike = "data", train_transform: Callable | None = None,
                eval_transform: Callable | None = None, *, val_fraction: float = DEFAULT_VAL_FRACTION,
                seed: int = DEFAULT_SPLIT_SEED, test_fraction: float = DEFAULT_TEST_FRACTION,
                labels_file: str = LABELS_FILE) -> tuple[BenchmarkDataset, BenchmarkDataset, BenchmarkDataset]:
    """``(train, val, test)`` of the photos in ``root`` labelled by ``root/labels.csv``."""
    root = Path(root)
    path = root / labels_file
    if not path.is_file():
        raise not_found(f"own photos: no {labels_file} in {root}", LAYOUT, HOW_TO_GET)
    names, image_labels, splits = read_labels_csv(path)
    class_names = sorted({label for labels in image_labels for label in labels})
    if not class_names:
        raise ValueError(f"{path} holds no labels at all: give each image its labels in the second column")
    column = {name: i for i, name in enumerate(class_names)}
    matrix = np.zeros((len(names), len(class_names)), dtype=np.uint8)
    for row, labels in enumerate(image_labels):
        matrix[row, [column[label] for label in labels]] = 1
    paths = require_images([root / name for name in names], f"own photos ({path})", LAYOUT, HOW_TO_GET)

    if splits is None:  # a fixed-seed random split: test first, then val out of the rest
        rest, test = holdout_split(len(names), test_fraction, seed)
        train_of_rest, val_of_rest = holdout_split(len(rest), val_fraction, seed)
        members = {"train": rest[train_of_rest], "val": rest[val_of_rest], "test": test}
    else:
        members = {split: np.array([i for i, s in enumerate(splits) if s == split], dtype=int) for split in SPLIT_NAMES}
        empty = [split for split, indices in members.items() if len(indices) == 0]
        if empty:
            raise ValueError(f"{path}: no image in the {' and '.join(empty)} split(s); give at least one image each "
                             "split, or leave out the split column for a random split")

    def subset(split: str, transform) -> BenchmarkDataset:
        indices = members[split]
        return BenchmarkDataset([paths[i] for i in indices], matrix[indices], class_names, transform=transform,
                                name=f"folder/{split}", root=root, split=split,
                                image_ids=[names[i] for i in indices])

    return subset("train", train_transform), subset("val", eval_transform), subset("test", eval_transform)

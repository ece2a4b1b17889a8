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
import posixpath
import unicodedata
from collections import Counter
from pathlib import Path, PurePosixPath, PureWindowsPath
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
    """``(file names, labels per image, splits or None)`` from ``labels.csv``; one clear error per problem.

    File names are normalised (``./a.jpg`` and ``a.jpg`` are one photo, listed once), and so are
    labels (Unicode NFC: ``café`` typed either way is one class); two labels that differ only in
    case are refused, as one class spelled two ways.
    """
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            rows = [row for row in csv.reader(handle) if any(cell.strip() for cell in row)]
    except UnicodeDecodeError as error:
        line = path.read_bytes()[:error.start].count(b"\n") + 1
        raise ValueError(f"{path} is not UTF-8 text (byte 0x{error.object[error.start]:02x} on line {line}; "
                         "Latin-1 or Windows-1252, perhaps): save it as UTF-8, e.g. `iconv -f latin1 -t utf-8 "
                         f"{path} > {path}.utf8 && mv {path}.utf8 {path}`") from None
    if rows and rows[0][0].strip().lower() in HEADER_NAMES:
        rows = rows[1:]
    if not rows:
        raise ValueError(f"{path} lists no images: write one row per image, '<file name>,<labels>[,<split>]'")
    widths = {len(row) for row in rows}
    if not widths <= {1, 2, 3} or (3 in widths and widths != {3}):
        raise ValueError(f"{path}: every row must have 2 fields (file, labels), or every row 3 (file, labels, split); "
                         f"found rows of {sorted(widths)} fields (labels are separated by spaces or ';', not commas)")
    names = [normalised_file_name(row[0], path) for row in rows]
    semicolons = any(len(row) > 1 and ";" in row[1] for row in rows)  # one separator for the whole file
    labels = [[unicodedata.normalize("NFC", label) for label in split_labels(row[1], semicolons)]
              if len(row) > 1 else [] for row in rows]
    refuse_case_collisions(labels, path)
    splits = None
    if 3 in widths:
        splits = [row[2].strip().lower() for row in rows]
        wrong = sorted({s for s in splits if s not in SPLIT_NAMES})
        if wrong:
            raise ValueError(f"{path}: unknown split value(s) {', '.join(map(repr, wrong))}; use train, val or test")
    counts = Counter(names)
    duplicates = sorted(name for name, count in counts.items() if count > 1)
    if duplicates:
        spellings = sorted({row[0].strip() for row in rows if normalised_file_name(row[0], path) == duplicates[0]})
        raise ValueError(f"{path} lists {duplicates[0]!r} more than once (as {', '.join(map(repr, spellings))}; "
                         f"{len(duplicates)} duplicated file names): keep one row per photo")
    return names, labels, splits


def normalised_file_name(field: str, path: Path) -> str:
    """The file name of a ``labels.csv`` row in one spelling (``./a.jpg`` -> ``a.jpg``); a name that
    is absolute or climbs out of the folder (``../``) is refused: the photos live in the folder."""
    name = field.strip()
    normal = posixpath.normpath(name)
    if not name or PurePosixPath(name).is_absolute() or PureWindowsPath(name).is_absolute() \
            or PureWindowsPath(name).drive or normal == ".." or normal.startswith("../"):
        raise ValueError(f"{path} lists {name!r}: file names must be relative to the folder of {path.name} and "
                         "stay inside it (no absolute paths, no '..'); copy the photo into the folder and "
                         "list it by its name there")
    return normal


def refuse_case_collisions(labels: list[list[str]], path: Path) -> None:
    """A ValueError when two labels differ only in case (``Dog`` and ``dog``): one class spelled two ways."""
    spellings: dict[str, Counter] = {}
    for image_labels in labels:
        for label in image_labels:
            spellings.setdefault(label.casefold(), Counter())[label] += 1
    for forms in spellings.values():
        if len(forms) > 1:
            listed = " and ".join(f"{form!r} ({count} rows)" for form, count in sorted(forms.items()))
            raise ValueError(f"{path} spells one class in several ways, differing only in case: {listed}; "
                             "use one spelling for it throughout the file")


def inside_folder(root: Path, name: str, path: Path) -> Path:
    """``root / name``, refused when its resolved path (links followed) lies outside ``root``."""
    image = root / name
    if not image.resolve().is_relative_to(root.resolve()):
        raise ValueError(f"{path} lists {name!r}, which resolves to {image.resolve()}, outside {root} (a link "
                         "out of the folder); copy the photo into the folder and list it by its name there")
    return image


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
    paths = require_images([inside_folder(root, name, path) for name in names], f"own photos ({path})", LAYOUT,
                           HOW_TO_GET)

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

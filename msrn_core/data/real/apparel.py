"""The Kaggle apparel dataset used by the paper (kaggle.com/kaiska/apparel-dataset).

The archive holds one folder per colour-and-garment combination (``black_dress/``,
``blue_shirt/`` ...). Every image gets two labels from its folder's name: the colour (before the
first underscore) and the garment (after it). The label set is read from the folders found:
colours first, then garments, each alphabetical (for the Kaggle archive: black, blue, brown,
green, red, white, then dress, pants, shirt, shoes, shorts).

Splits, as in the paper: a random 50 % of the images (fixed seed) for training and the other
50 % for testing; the validation split is a held-out fraction of the training half.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Callable

import numpy as np

from .common import (DEFAULT_SPLIT_SEED, DEFAULT_VAL_FRACTION, BenchmarkDataset, build_splits, holdout_split,
                     not_found)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
_FOLDER = re.compile(r"^([a-z]+)_([a-z_]+)$")

LAYOUT = """\
  <data-root>/apparel/     (or <data-root> itself, or one folder level deeper, as the Kaggle zip unpacks)
    black_dress/<any name>.jpg
    blue_shirt/...
    ...                    (one folder per <colour>_<garment>; labels: the colour and the garment)"""

HOW_TO_GET = ("Download the archive from https://www.kaggle.com/kaiska/apparel-dataset (a Kaggle account is "
              "needed) and unzip it into <data-root>/apparel.")


def _label_folders(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(child for child in folder.iterdir() if child.is_dir() and _FOLDER.match(child.name))


def find_apparel(root: str | os.PathLike) -> Path:
    """The folder holding the ``<colour>_<garment>`` folders (``root``, ``root/apparel`` or one level below)."""
    bases = [Path(root), Path(root) / "apparel"]
    below = [child for base in bases if base.is_dir() for child in sorted(base.iterdir()) if child.is_dir()]
    for folder in bases + below:
        if _label_folders(folder):
            return folder
    raise not_found(f"apparel dataset not found: no <colour>_<garment> folders under {bases[0]} or {bases[1]}",
                    LAYOUT, HOW_TO_GET)


def read_apparel(folder: Path) -> tuple[list[Path], np.ndarray, list[str], list[str]]:
    """``(image paths, labels, image ids, class names)`` of the whole dataset, in a fixed order."""
    folders = _label_folders(folder)
    pairs = [_FOLDER.match(child.name).groups() for child in folders]
    colours = sorted({colour for colour, _ in pairs})
    garments = sorted({garment for _, garment in pairs})
    class_names = colours + garments
    paths, rows = [], []
    for child, (colour, garment) in zip(folders, pairs):
        images = sorted(p for p in child.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        row = np.zeros(len(class_names), dtype=np.uint8)
        row[class_names.index(colour)] = 1
        row[len(colours) + garments.index(garment)] = 1
        paths += images
        rows += [row] * len(images)
    if len(paths) < 4:
        raise not_found(f"apparel dataset under {folder} holds {len(paths)} images; it looks incomplete",
                        LAYOUT, HOW_TO_GET)
    ids = [f"{path.parent.name}/{path.name}" for path in paths]
    return paths, np.stack(rows), ids, class_names


def load_apparel(root: str | os.PathLike = "data", train_transform: Callable | None = None,
                 eval_transform: Callable | None = None, *, val_fraction: float = DEFAULT_VAL_FRACTION,
                 seed: int = DEFAULT_SPLIT_SEED, test_fraction: float = 0.5,
                 ) -> tuple[BenchmarkDataset, BenchmarkDataset, BenchmarkDataset]:
    """``(train, val, test)``: a fixed-seed random 50/50 train/test split; val held out from train."""
    folder = find_apparel(root)
    paths, labels, ids, class_names = read_apparel(folder)
    train_idx, test_idx = holdout_split(len(paths), test_fraction, seed)

    def part(indices):
        return [paths[i] for i in indices], labels[indices], [ids[i] for i in indices], None

    return build_splits("apparel", folder, class_names, part(train_idx), part(test_idx), val_fraction, seed,
                        train_transform, eval_transform)

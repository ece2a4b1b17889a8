"""MS-COCO 2014 for multi-label classification (80 categories), read with pycocotools.

Splits, as in the field: ``train2014`` trains (minus a fixed-seed held-out fraction used for
validation) and ``val2014`` tests. An image's labels are the categories of its instance
annotations (crowd annotations included).

- **Category order**: the 80 category names in alphabetical order (``airplane`` ... ``zebra``),
  the order of ML-GCN's ``category.json`` that MSRN's code and released checkpoints follow; it
  is not the order of COCO's category ids. The annotation file must hold exactly these 80.
- **Images without annotations** are dropped, as ML-GCN's loader does (about 700 of train2014
  and 370 of val2014): they would be all-negative examples the field never trains or tests on.
  ``keep_unannotated=True`` keeps them (all-zero label rows).
"""
from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings
from pathlib import Path
from typing import Callable

import numpy as np

from ...utils import read_json
from .common import (DEFAULT_SPLIT_SEED, DEFAULT_VAL_FRACTION, BenchmarkDataset, build_splits,
                     find_dataset_dir, not_found, require_file, require_images)

logger = logging.getLogger(__name__)

COCO_CLASSES = (
    "airplane", "apple", "backpack", "banana", "baseball bat", "baseball glove", "bear", "bed",
    "bench", "bicycle", "bird", "boat", "book", "bottle", "bowl", "broccoli", "bus", "cake", "car",
    "carrot", "cat", "cell phone", "chair", "clock", "couch", "cow", "cup", "dining table", "dog",
    "donut", "elephant", "fire hydrant", "fork", "frisbee", "giraffe", "hair drier", "handbag",
    "horse", "hot dog", "keyboard", "kite", "knife", "laptop", "microwave", "motorcycle", "mouse",
    "orange", "oven", "parking meter", "person", "pizza", "potted plant", "refrigerator", "remote",
    "sandwich", "scissors", "sheep", "sink", "skateboard", "skis", "snowboard", "spoon",
    "sports ball", "stop sign", "suitcase", "surfboard", "teddy bear", "tennis racket", "tie",
    "toaster", "toilet", "toothbrush", "traffic light", "train", "truck", "tv", "umbrella", "vase",
    "wine glass", "zebra",
)

LAYOUT = """\
  <data-root>/coco/        (or <data-root> itself)
    train2014/COCO_train2014_000000000009.jpg ...
    val2014/COCO_val2014_000000000042.jpg ...
    annotations/instances_train2014.json
    annotations/instances_val2014.json"""

HOW_TO_GET = (
    "Download train2014.zip, val2014.zip and annotations_trainval2014.zip from "
    "https://cocodataset.org/#download (images.cocodataset.org/zips/...) and unzip them into "
    "<data-root>/coco."
)


def _coco_api():
    try:
        from pycocotools.coco import COCO
    except ImportError as error:
        raise ImportError(
            "reading COCO needs pycocotools: `pip install pycocotools` "
            "(or `pip install -e .[datasets]`)"
        ) from error
    return COCO


def read_coco_split(coco_dir: Path, split: str, keep_unannotated: bool = False
                    ) -> tuple[list[Path], np.ndarray, list[str]]:
    """``(image paths, labels, image ids)`` of ``train2014`` or ``val2014``, sorted by image id."""
    annotation_file = require_file(coco_dir / "annotations" / f"instances_{split}.json",
                                   "COCO 2014", LAYOUT, HOW_TO_GET)
    image_dir = coco_dir / split
    if not image_dir.is_dir():
        raise not_found(f"COCO 2014: missing image folder {image_dir}", LAYOUT, HOW_TO_GET)
    content = read_json(annotation_file, "unzip annotations_trainval2014.zip again")
    coco = _coco_api()()
    coco.dataset = content
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
        coco.createIndex()
    categories = coco.loadCats(coco.getCatIds())
    check_categories(annotation_file, [category["name"] for category in categories])
    column = {category["id"]: COCO_CLASSES.index(category["name"]) for category in categories}
    paths, rows, ids = [], [], []
    dropped = 0
    for image_id in sorted(coco.getImgIds()):
        row = np.zeros(len(COCO_CLASSES), dtype=np.uint8)
        for annotation in coco.imgToAnns[image_id]:
            row[column[annotation["category_id"]]] = 1
        if not row.any() and not keep_unannotated:
            dropped += 1
            continue
        paths.append(image_dir / coco.imgs[image_id]["file_name"])
        rows.append(row)
        ids.append(str(image_id))
    if dropped:
        warnings.warn(f"COCO {split}: dropped {dropped} of {len(coco.getImgIds())} images without annotations (as "
                      "ML-GCN does; keep_unannotated=True keeps them as all-negative images)", stacklevel=2)
    require_images(paths, f"COCO 2014 {split} (annotated images)", LAYOUT, HOW_TO_GET)
    labels = np.stack(rows) if rows else np.zeros((0, len(COCO_CLASSES)), dtype=np.uint8)
    return paths, labels, ids


def check_categories(annotation_file: Path, names: list[str]) -> None:
    """Raise a ValueError naming the categories ``names`` lacks or adds against the 80 of COCO."""
    missing = sorted(set(COCO_CLASSES) - set(names))
    extra = sorted(set(names) - set(COCO_CLASSES))
    if missing or extra or len(names) != len(COCO_CLASSES):
        problems = ([f"missing {len(missing)}: {', '.join(missing)}"] if missing else []) + (
            [f"not in COCO 2014: {', '.join(extra)}"] if extra else [])
        if not problems:
            problems = ["some are listed twice"]
        raise ValueError(f"{annotation_file} does not hold the 80 COCO categories (found {len(names)}; "
                         f"{'; '.join(problems)}); is it a COCO 2014 instances file?")


def _complete(root) -> bool:
    """Whether both splits' images and annotations are there (under root, root/coco or root/coco2014)."""
    parts = ["annotations/instances_train2014.json", "annotations/instances_val2014.json", "train2014", "val2014"]
    return any(all((Path(root) / folder / part).exists() for part in parts) for folder in ("", "coco", "coco2014"))


def load_coco2014(root: str | os.PathLike = "data", train_transform: Callable | None = None,
                  eval_transform: Callable | None = None, *, val_fraction: float = DEFAULT_VAL_FRACTION,
                  seed: int = DEFAULT_SPLIT_SEED, keep_unannotated: bool = False, download: bool = False,
                  ) -> tuple[BenchmarkDataset, BenchmarkDataset, BenchmarkDataset]:
    """``(train, val, test)``: train2014 minus a held-out ``val_fraction`` (val), and val2014 (test).

    With ``download=True`` a missing dataset is first fetched and extracted into ``root/coco``
    (:func:`msrn_core.data.download.download_coco2014`, about 20 GB).
    """
    if download and not _complete(root):
        from ..download import download_coco2014

        download_coco2014(root)  # missing or half there: fetches and extracts only what is missing
    coco_dir = find_dataset_dir(root, ["", "coco", "coco2014"], "annotations", "COCO 2014", LAYOUT, HOW_TO_GET)
    train = read_coco_split(coco_dir, "train2014", keep_unannotated)
    test = read_coco_split(coco_dir, "val2014", keep_unannotated)
    return build_splits("coco2014", coco_dir, COCO_CLASSES, (*train, None), (*test, None), val_fraction, seed,
                        train_transform, eval_transform)

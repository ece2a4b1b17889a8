"""NUS-WIDE (81 concepts) in the layout of its official release.

Splits: the official ``TrainImagelist.txt`` trains (minus a fixed-seed held-out fraction used for
validation) and ``TestImagelist.txt`` tests. Labels come from the per-concept ground-truth files
``Groundtruth/TrainTestLabels/Labels_<concept>_{Train,Test}.txt`` (one 0/1 per line, in the order
of the image list); the class order is the order of ``Concepts81.txt``.

The images are Flickr photos, and copies of the dataset usually lack some of them: images
absent on disk are skipped and counted (a warning says how many); none at all is an error.
Images with none of the 81 concepts are dropped, the usual protocol (``keep_unlabeled=True``
keeps them).
"""
from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Callable

import numpy as np

from .common import (DEFAULT_SPLIT_SEED, DEFAULT_VAL_FRACTION, BenchmarkDataset, build_splits,
                     find_dataset_dir, not_found, require_file)

logger = logging.getLogger(__name__)

LAYOUT = """\
  <data-root>/nuswide/     (or <data-root>/NUS-WIDE, or <data-root> itself)
    Concepts81.txt                       (or ConceptsList/Concepts81.txt; one concept a line)
    ImageList/TrainImagelist.txt         (lines like "actor\\0001_2124494179.jpg")
    ImageList/TestImagelist.txt
    Groundtruth/TrainTestLabels/Labels_<concept>_Train.txt and Labels_<concept>_Test.txt
    Flickr/actor/0001_2124494179.jpg ... (the image list's paths under Flickr/)"""

HOW_TO_GET = (
    "The lists and labels are the official NUS-WIDE release "
    "(https://lms.comp.nus.edu.sg/wp-content/uploads/2019/research/nuswide/NUS-WIDE.html); the "
    "images are Flickr photos, distributed separately (ask the dataset's maintainers, or use a copy "
    "arranged under Flickr/ as listed in the image lists)."
)


def _concepts(nus_dir: Path) -> list[str]:
    for candidate in (nus_dir / "Concepts81.txt", nus_dir / "ConceptsList" / "Concepts81.txt"):
        if candidate.exists():
            names = [line.strip() for line in candidate.read_text().splitlines() if line.strip()]
            if not names:
                raise ValueError(f"{candidate} is empty: it must list the concepts, one a line")
            return names
    raise not_found(f"NUS-WIDE: missing {nus_dir / 'Concepts81.txt'}", LAYOUT, HOW_TO_GET)


def read_nuswide_split(nus_dir: Path, concepts: list[str], split: str, keep_unlabeled: bool = False
                       ) -> tuple[list[Path], np.ndarray, list[str]]:
    """``(image paths, labels, image ids)`` of the official ``Train`` or ``Test`` split."""
    image_list = require_file(nus_dir / "ImageList" / f"{split}Imagelist.txt", "NUS-WIDE", LAYOUT, HOW_TO_GET)
    entries = [line.strip().replace("\\", "/") for line in image_list.read_text().splitlines() if line.strip()]
    columns = []
    for concept in concepts:
        path = require_file(nus_dir / "Groundtruth" / "TrainTestLabels" / f"Labels_{concept}_{split}.txt",
                            "NUS-WIDE", LAYOUT, HOW_TO_GET)
        values = [line.strip() for line in path.read_text().splitlines() if line.strip()]
        if len(values) != len(entries) or any(value not in ("0", "1") for value in values):
            raise ValueError(f"{path} is corrupt: it must hold one 0/1 per image of {image_list.name} "
                             f"({len(entries)} lines), found {len(values)} lines")
        columns.append(np.array(values) == "1")
    labels = np.stack(columns, axis=1).astype(np.uint8)
    paths = [nus_dir / "Flickr" / entry for entry in entries]
    present = np.array([path.exists() for path in paths], dtype=bool)
    if not present.any():
        raise not_found(f"NUS-WIDE {split}: none of the {len(paths)} listed images exist "
                        f"(first: {paths[0] if paths else 'none listed'})", LAYOUT, HOW_TO_GET)
    if not present.all():
        warnings.warn(f"NUS-WIDE {split}: {int((~present).sum())} of {len(paths)} listed images are "
                      "missing on disk and skipped", stacklevel=3)
    keep = present if keep_unlabeled else present & labels.any(axis=1)
    dropped = 0 if keep_unlabeled else int((present & ~labels.any(axis=1)).sum())
    logger.info("NUS-WIDE %s: %d images kept, %d without any concept dropped", split, int(keep.sum()), dropped)
    if dropped:
        warnings.warn(f"NUS-WIDE {split}: dropped {dropped} images without any of the 81 concepts (the usual "
                      "protocol; keep_unlabeled=True keeps them)", stacklevel=3)
    indices = np.flatnonzero(keep)
    return [paths[i] for i in indices], labels[indices], [entries[i] for i in indices]


def load_nuswide(root: str | os.PathLike = "data", train_transform: Callable | None = None,
                 eval_transform: Callable | None = None, *, val_fraction: float = DEFAULT_VAL_FRACTION,
                 seed: int = DEFAULT_SPLIT_SEED, keep_unlabeled: bool = False,
                 ) -> tuple[BenchmarkDataset, BenchmarkDataset, BenchmarkDataset]:
    """``(train, val, test)``: the official train list minus a held-out ``val_fraction``, and the test list."""
    nus_dir = find_dataset_dir(root, ["", "nuswide", "NUS-WIDE", "nus-wide"], "ImageList", "NUS-WIDE",
                               LAYOUT, HOW_TO_GET)
    concepts = _concepts(nus_dir)
    train = read_nuswide_split(nus_dir, concepts, "Train", keep_unlabeled)
    test = read_nuswide_split(nus_dir, concepts, "Test", keep_unlabeled)
    return build_splits("nuswide", nus_dir, concepts, (*train, None), (*test, None), val_fraction, seed,
                        train_transform, eval_transform)

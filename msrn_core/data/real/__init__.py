"""The real benchmarks of the paper behind one call: :func:`load_dataset`.

``load_dataset(name, root, train_transform, eval_transform, ...)`` returns ``(train, val, test)``,
the same split objects as the built-in dataset (:func:`msrn_core.data.scenes.load_scene_splits`):
:class:`~msrn_core.data.dataset.ImageListDataset` objects with ``class_names``, ``labels`` and, for VOC,
the ``difficult`` mask. Validation always comes from the training data.

==========  ======================================  =============================================
name        train / val                             test
==========  ======================================  =============================================
scenes      the built-in dataset's own splits       its own test split (generated offline)
voc2007     trainval minus a held-out fraction      test
coco2014    train2014 minus a held-out fraction     val2014
nuswide     official train list minus a fraction    official test list
apparel     random 50 % (fixed seed) minus a frac.  the other 50 %
folder      your photos + labels.csv: its split     its split column, else a seeded random
            column, else a seeded random split      fraction (``datasets.folder``)
==========  ======================================  =============================================

``classes=[...]`` (any dataset; CLI ``--classes``) keeps only those labels, in that order
(:func:`~msrn_core.data.real.common.select_classes`).

A missing dataset raises :class:`~msrn_core.data.dataset.DatasetNotFoundError` naming the missing path,
the expected layout and how to get the data.
"""
from __future__ import annotations

import os
from typing import Callable

from .apparel import load_apparel
from .coco import COCO_CLASSES, load_coco2014
from .common import BenchmarkDataset, holdout_split, read_class_list, select_classes
from .folder import load_folder
from .nuswide import load_nuswide
from .statistics import cached_label_statistics
from .voc import VOC_CLASSES, load_voc2007

__all__ = [
    "BenchmarkDataset",
    "COCO_CLASSES",
    "DATASETS",
    "VOC_CLASSES",
    "cached_label_statistics",
    "holdout_split",
    "load_apparel",
    "load_coco2014",
    "load_dataset",
    "load_folder",
    "load_nuswide",
    "load_voc2007",
    "read_class_list",
    "select_classes",
]


def _load_scenes(root, train_transform=None, eval_transform=None, *, config=None, generate=True):
    from ..scenes import load_scene_splits

    return load_scene_splits(root, config, train_transform=train_transform, eval_transform=eval_transform,
                             generate=generate)


DATASETS: dict[str, Callable] = {
    "scenes": _load_scenes,
    "voc2007": load_voc2007,
    "coco2014": load_coco2014,
    "nuswide": load_nuswide,
    "apparel": load_apparel,
    "folder": load_folder,
}


def load_dataset(name: str, root: str | os.PathLike = "data", train_transform: Callable | None = None,
                 eval_transform: Callable | None = None, **options):
    """``(train, val, test)`` of the dataset registered as ``name`` (see the table above).

    ``options`` go to the loader: ``val_fraction`` and ``seed`` (held-out validation) for the
    real benchmarks, ``download=True`` for voc2007, ``keep_unannotated`` for coco2014,
    ``keep_unlabeled`` for nuswide, ``config`` for scenes, ``test_fraction`` for folder.
    ``classes`` (a list of names, any dataset) keeps only those labels, in that order.
    """
    key = name.strip().lower()
    if key not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; valid names: {', '.join(DATASETS)}")
    classes = options.pop("classes", None)
    splits = DATASETS[key](root, train_transform, eval_transform, **options)
    if classes:
        splits = tuple(select_classes(split, list(classes)) for split in splits)
    return splits

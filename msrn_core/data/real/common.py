"""What every real-benchmark loader shares: the split objects, finding the folder, held-out splits.

A loader returns ``(train, val, test)``, three :class:`BenchmarkDataset` objects (the shared
:class:`~msrn_core.data.dataset.ImageListDataset` interface plus ``root``, ``split`` and ``image_ids``).
The validation split always comes out of the training data (a fixed-seed held-out fraction):
the training loop selects its best epoch on validation, never on test (notebook 05).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..dataset import DatasetNotFoundError, ImageListDataset

DEFAULT_VAL_FRACTION = 0.1
DEFAULT_SPLIT_SEED = 0


class BenchmarkDataset(ImageListDataset):
    """One split of a real benchmark: the shared interface plus where it came from."""

    def __init__(self, image_paths, labels, class_names, transform=None, difficult=None, name="dataset", *,
                 root: Path, split: str, image_ids: Sequence[str]):
        super().__init__(image_paths, labels, class_names, transform=transform, difficult=difficult, name=name)
        if len(image_ids) != len(self.image_paths):
            raise ValueError(f"{name}: {len(image_ids)} image ids for {len(self.image_paths)} images")
        self.root = Path(root)
        self.split = split
        self.image_ids = list(image_ids)


def not_found(problem: str, layout: str, how_to_get: str) -> DatasetNotFoundError:
    """The error every loader raises for missing data: the problem, the expected layout, the fix."""
    return DatasetNotFoundError(f"{problem}.\nExpected layout:\n{layout}\n{how_to_get}")


def find_dataset_dir(root: str | os.PathLike, candidates: Sequence[str], marker: str, title: str,
                     layout: str, how_to_get: str) -> Path:
    """The first of ``root / candidate`` that contains ``marker``; else a clear DatasetNotFoundError.

    ``candidates`` are relative folders ("" is ``root`` itself), so ``--data-root data`` and
    ``--data-root data/VOCdevkit/VOC2007`` both work.
    """
    root = Path(root)
    tried = [root / candidate if candidate else root for candidate in candidates]
    for folder in tried:
        if (folder / marker).exists():
            return folder
    raise not_found(f"{title} not found: no {marker} under {', '.join(str(folder) for folder in tried)}",
                    layout, how_to_get)


def require_file(path: Path, title: str, layout: str, how_to_get: str) -> Path:
    """``path`` if it exists, else a DatasetNotFoundError naming it, the layout and the fix."""
    if not path.exists():
        raise not_found(f"{title}: missing {path}", layout, how_to_get)
    return path


def require_images(paths: list[Path], what: str, layout: str, how_to_get: str) -> list[Path]:
    """``paths`` if every image exists, else a DatasetNotFoundError counting the missing ones."""
    missing = [path for path in paths if not path.exists()]
    if missing:
        raise not_found(f"{what}: {len(missing)} of {len(paths)} images are missing (first: {missing[0]})",
                        layout, how_to_get)
    return paths


def holdout_split(num_items: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(keep, held_out)`` sorted index arrays: a fixed-seed random ``fraction`` is held out.

    The same ``(num_items, fraction, seed)`` always gives the same split; at least one item lands
    on each side.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"the held-out fraction must lie in (0, 1), got {fraction}")
    if num_items < 2:
        raise ValueError(f"cannot hold out a fraction of {num_items} item(s)")
    order = np.random.default_rng(seed).permutation(num_items)
    count = min(num_items - 1, max(1, int(round(fraction * num_items))))
    return np.sort(order[count:]), np.sort(order[:count])


def build_splits(title: str, root: Path, class_names: Sequence[str],
                 trainval: tuple[list[Path], np.ndarray, list[str], np.ndarray | None],
                 test: tuple[list[Path], np.ndarray, list[str], np.ndarray | None],
                 val_fraction: float, seed: int, train_transform: Callable | None,
                 eval_transform: Callable | None) -> tuple[BenchmarkDataset, BenchmarkDataset, BenchmarkDataset]:
    """Split ``trainval`` into train and a held-out val; wrap all three as BenchmarkDatasets.

    ``trainval`` and ``test`` are ``(paths, labels, image_ids, difficult or None)``.
    """
    paths, labels, ids, difficult = trainval
    keep, held_out = holdout_split(len(paths), val_fraction, seed)

    def subset(indices, split, transform):
        return BenchmarkDataset(
            [paths[i] for i in indices], labels[indices], class_names, transform=transform,
            difficult=None if difficult is None else difficult[indices], name=f"{title}/{split}",
            root=root, split=split, image_ids=[ids[i] for i in indices],
        )

    test_paths, test_labels, test_ids, test_difficult = test
    test_set = BenchmarkDataset(test_paths, test_labels, class_names, transform=eval_transform,
                                difficult=test_difficult, name=f"{title}/test", root=root, split="test",
                                image_ids=test_ids)
    return subset(keep, "train", train_transform), subset(held_out, "val", eval_transform), test_set


# per-class attributes of a split (one entry per class) that follow a change of the label set
PER_CLASS_ATTRIBUTES = ("class_themes", "class_families")


def select_classes(dataset, classes: Sequence[str]):
    """A copy of ``dataset`` that knows only ``classes`` (in that order); every image stays.

    The label matrix, the difficult mask, boxes (their class ids renumbered; boxes of dropped
    classes removed) and per-class attributes follow. An image left without a positive stays as a
    negative for every kept class.
    """
    import copy

    names = list(dataset.class_names)
    unknown = [c for c in classes if c not in names]
    if unknown:
        raise ValueError(f"{getattr(dataset, 'name', 'the dataset')} has no class {', '.join(map(repr, unknown))}; "
                         f"its classes: {', '.join(names)}")
    if len(set(classes)) != len(classes):
        raise ValueError(f"a class is named twice in {list(classes)}")
    columns = [names.index(c) for c in classes]
    selected = copy.copy(dataset)
    selected.class_names = list(classes)
    selected.labels = np.ascontiguousarray(np.asarray(dataset.labels)[:, columns])
    if getattr(dataset, "difficult", None) is not None:
        selected.difficult = np.ascontiguousarray(dataset.difficult[:, columns])
    if getattr(dataset, "boxes", None) is not None:
        new_id = {old: new for new, old in enumerate(columns)}
        selected.boxes = [[(new_id[int(box[0])], *box[1:]) for box in boxes if int(box[0]) in new_id]
                          for boxes in dataset.boxes]
    for attribute in PER_CLASS_ATTRIBUTES:
        values = getattr(dataset, attribute, None)
        if values is not None and len(values) == len(names):
            setattr(selected, attribute, [values[i] for i in columns])
    if getattr(dataset, "hub_classes", None) is not None:
        selected.hub_classes = [c for c in dataset.hub_classes if c in classes]
    return selected


def read_class_list(value: str) -> list[str]:
    """``--classes``: a comma-separated list, or a file with one class per line (or comma-separated)."""
    path = Path(value)
    text = path.read_text(encoding="utf-8") if path.is_file() else value
    separators = text.replace("\n", ",")
    classes = [c.strip() for c in separators.split(",") if c.strip()]
    if not classes:
        raise ValueError(f"--classes {value!r} names no class: give a comma-separated list or a file of names")
    return classes

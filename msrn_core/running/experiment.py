"""One place that turns settings into datasets, a label graph, label features and a model.

The command-line entry point, the main job and the notebooks all build their runs here, so a
run started from any of them is the same run.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import defaults
from ..data.dataset import build_transform, check_label_matrix
from ..graph import LabelGraph
from ..label_features import LabelFeatureProvider, get_label_features
from ..model import ModelConfig, build_model
from ..data.scenes import SceneConfig


@dataclass
class DataSetup:
    """The splits of a dataset with everything the models need from its training split."""

    train: object
    val: object
    test: object
    graph: LabelGraph  # from the training annotations only (notebook 01)
    label_features: np.ndarray  # n x k
    provider: LabelFeatureProvider

    @property
    def class_names(self) -> list[str]:
        return list(self.train.class_names)

    def describe(self) -> str:
        edges = int(self.graph.binary.sum())
        return (f"{len(self.train)} train / {len(self.val)} val / {len(self.test)} test images, "
                f"{len(self.class_names)} classes, {edges} graph edges at t = {self.graph.t}\n"
                f"{self.provider.describe()}")


def prepare_scenes(root: str | Path = "data", config: SceneConfig | None = None,
                   label_features: str | None = None, t: float | None = None, p: float | None = None,
                   train_augmentation: bool = True) -> DataSetup:
    """Generate (or reuse) the built-in scene dataset and derive its graph and label features.

    ``label_features``, ``t`` and ``p`` default to :mod:`msrn_core.defaults`.
    """
    return prepare_dataset("scenes", root, label_features=label_features, t=t, p=p,
                           train_augmentation=train_augmentation, config=config or SceneConfig())


def prepare_dataset(name: str = "scenes", root: str | Path = "data", image_size: int | None = None,
                    label_features: str | None = None, t: float | None = None, p: float | None = None,
                    train_augmentation: bool = True, label_feature_options: dict | None = None,
                    augmentation: str = "default", **options) -> DataSetup:
    """Load a dataset of :mod:`msrn_core.data.real` by name and derive its graph and label features.

    The graph statistics of a real benchmark's training split are cached beside the dataset.
    ``options`` go to the loader (``val_fraction``, ``seed``, ``download`` ...); for ``"scenes"``
    pass ``config`` (a :class:`~msrn_core.data.scenes.SceneConfig`) instead of ``image_size``.
    ``image_size``, ``label_features``, ``t`` and ``p`` default to :mod:`msrn_core.defaults`;
    ``augmentation`` names the training crop (:func:`~msrn_core.data.dataset.build_transform`).
    """
    from ..data.real import load_dataset

    image_size = defaults.IMAGE_SIZE if image_size is None else image_size
    if name == "scenes":
        config = options.pop("config", None) or SceneConfig(image_size=image_size)
        image_size = config.image_size
        options["config"] = config
    train, val, test = load_dataset(
        name, root, train_transform=build_transform(image_size, train=train_augmentation, augmentation=augmentation),
        eval_transform=build_transform(image_size, train=False), **options,
    )
    statistics_cache = getattr(train, "root", None) if name != "scenes" else None
    return setup_from_splits(train, val, test, label_features, t, p, statistics_cache=statistics_cache,
                             label_feature_options=label_feature_options)


def setup_from_splits(train, val, test, label_features: str | None = None, t: float | None = None,
                      p: float | None = None, statistics_cache: str | Path | None = None,
                      label_feature_options: dict | None = None) -> DataSetup:
    """Graph statistics from ``train`` only, label features for its class names.

    With ``statistics_cache`` (a folder), the training split's co-occurrence counts are read from
    (or written to) a small file there, recomputed when stale. ``label_feature_options`` go to
    the label-feature provider (e.g. ``{"vectors_path": ...}`` for GloVe). ``label_features``,
    ``t`` and ``p`` default to :mod:`msrn_core.defaults`.
    """
    label_features = label_features or defaults.LABEL_FEATURES
    t = defaults.T if t is None else t
    p = defaults.P if p is None else p
    empty = check_label_matrix(train.labels, train.class_names)
    if empty:
        raise ValueError(
            f"these classes have no positive example in the training split: {', '.join(empty)}. "
            "Their co-occurrence statistics and classifiers would be undefined; add training images "
            f"for them or remove them from the label set{drop_classes_hint(train.class_names, empty)}."
        )
    if statistics_cache is None:
        graph = LabelGraph.from_labels(train.labels, train.class_names, t=t, p=p)
    else:
        from ..data.real.statistics import cached_label_statistics

        counts, nums, _ = cached_label_statistics(train, statistics_cache)
        graph = LabelGraph.from_counts(counts, nums, train.class_names, t=t, p=p)
    features, provider = get_label_features(label_features, train.class_names, **(label_feature_options or {}))
    return DataSetup(train, val, test, graph, features, provider)


def drop_classes_hint(class_names, empty) -> str:
    """The exact option that keeps every class except ``empty`` (command line and Python)."""
    kept = [name for name in class_names if name not in set(empty)]
    if not kept:
        return " (no class has a training positive: check the labels of the training images)"
    listed = ",".join(kept)
    option = f'--classes "{listed}"' if " " in listed else f"--classes {listed}"
    return f": {option} (Python: classes={kept!r})"


def make_model(setup: DataSetup, config: ModelConfig):
    """Build the model of ``config`` for the label set, graph and features of ``setup``."""
    return build_model(config, setup.label_features, setup.graph.adjacency_tensor())

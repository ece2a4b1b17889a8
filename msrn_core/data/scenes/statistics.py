"""What a split holds: per-class counts and frequencies, labels per image and, for scenes,
objects per image and per-theme counts."""
from __future__ import annotations

import numpy as np


def label_statistics(dataset) -> dict:
    """Per-class counts and frequencies, label cardinality, and (for scenes) per-theme counts."""
    labels = np.asarray(dataset.labels)
    counts = labels.sum(axis=0)
    per_image = labels.sum(axis=1)
    stats = {
        "num_images": int(labels.shape[0]),
        "num_classes": int(labels.shape[1]),
        "class_counts": {name: int(c) for name, c in zip(dataset.class_names, counts)},
        "class_frequency": {name: float(c) / max(1, labels.shape[0]) for name, c in zip(dataset.class_names, counts)},
        "mean_labels_per_image": float(per_image.mean()) if len(per_image) else 0.0,
        "max_labels_per_image": int(per_image.max()) if len(per_image) else 0,
        "label_cardinality_histogram": {int(k): int(v) for k, v in zip(*np.unique(per_image, return_counts=True))},
        "classes_without_positives": [n for n, c in zip(dataset.class_names, counts) if c == 0],
    }
    boxes = getattr(dataset, "boxes", None)
    if boxes is not None:
        stats["mean_objects_per_image"] = float(np.mean([len(b) for b in boxes])) if boxes else 0.0
    themes = getattr(dataset, "image_themes", None)
    if themes is not None:
        stats["theme_counts"] = {t: sum(t in ts for ts in themes) for t in dataset.theme_names}
        stats["two_theme_fraction"] = float(np.mean([len(ts) > 1 for ts in themes])) if themes else 0.0
    return stats

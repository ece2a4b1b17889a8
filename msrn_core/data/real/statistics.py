"""Label statistics of a training split (the label graph, paper section 3.2), cached beside the dataset.

The label graph needs ``counts`` (co-occurrences, zero diagonal) and ``nums`` (label counts) of
the TRAINING split only. They are stored in a small ``.npz`` file in the dataset's folder, like
ML-GCN's ``*_adj.pkl``, so they can be inspected and shared. The file records a key computed
from the split's name, its class list, its image ids and its label matrix; a file whose key
differs (other classes, another held-out seed, edited annotations) is stale and recomputed.
A dataset folder that cannot be written to only costs the cache (a warning), never the run.
"""
from __future__ import annotations

import hashlib
import io
import logging
import os
from pathlib import Path

import numpy as np

from ...graph import cooccurrence_counts
from ...utils import atomic_write_bytes

logger = logging.getLogger(__name__)

CACHE_NAME = "msrn_label_statistics_{split}.npz"


def statistics_key(split: str, class_names, image_ids, labels) -> str:
    """sha256 over everything the statistics depend on."""
    digest = hashlib.sha256()
    for part in (split, "\n".join(class_names), "\n".join(map(str, image_ids))):
        digest.update(part.encode())
        digest.update(b"\0")
    digest.update(np.ascontiguousarray(labels, dtype=np.uint8).tobytes())
    return digest.hexdigest()


def cached_label_statistics(dataset, cache_dir: str | os.PathLike | None = None
                            ) -> tuple[np.ndarray, np.ndarray, Path | None]:
    """``(counts, nums, cache file)`` of a training split, read from its cache when fresh.

    ``cache_dir`` defaults to the dataset's ``root``. The cache file is None when it could not
    be written.
    """
    split = getattr(dataset, "split", "train")
    image_ids = getattr(dataset, "image_ids", None) or [p.name for p in dataset.image_paths]
    key = statistics_key(split, dataset.class_names, image_ids, dataset.labels)
    path = Path(cache_dir if cache_dir is not None else dataset.root) / CACHE_NAME.format(split=split)
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as stored:
                if str(stored["key"]) == key:
                    logger.info("label statistics from %s", path)
                    return stored["counts"], stored["nums"], path
            logger.info("label statistics in %s are stale: recomputing", path)
        except (OSError, KeyError, ValueError) as error:
            logger.warning("unreadable label statistics %s (%s): recomputing", path, error)
    counts, nums = cooccurrence_counts(dataset.labels)
    buffer = io.BytesIO()
    np.savez(buffer, key=np.array(key), counts=counts, nums=nums,
             class_names=np.array(list(dataset.class_names)), num_images=np.array(len(dataset.labels)))
    try:
        atomic_write_bytes(path, lambda handle: handle.write(buffer.getvalue()))
    except OSError as error:
        logger.warning("could not cache label statistics in %s (%s); computed them in memory", path, error)
        return counts, nums, None
    return counts, nums, path

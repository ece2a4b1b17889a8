"""Generating a dataset on disk (in parallel, deterministically), its cache, and loading its splits.

Image ``i`` of split ``s`` uses its own generator ``np.random.default_rng([seed, split_id, i])``,
so the same seed gives byte-identical PNGs and annotations whatever the order or the number of
worker processes. ``annotations.json`` is written last and atomically: its presence marks a
complete dataset."""
from __future__ import annotations

import io
import json
import math
import multiprocessing as mp
import os
import shutil
import time
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import numpy as np

from ...utils import atomic_write_json, read_json, worker_processes
from ..dataset import DatasetNotFoundError, ImageListDataset
from .config import _SPLIT_IDS, GENERATOR_VERSION, SPLITS, SceneConfig, dataset_dir
from .grammar import BRIDGE_CLASSES, CLASS_NAMES, CLASSES, FAMILY_NAMES, HUB_CLASSES, THEME_NAMES, THEMES
from .rendering import render_scene


def _image_rng(seed: int, split: str, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, _SPLIT_IDS[split], index])


def _render_chunk(args) -> list[dict]:
    """Render and write images ``start..stop`` of one split (a worker's job)."""
    config_dict, out_dir, split, start, stop = args
    config = SceneConfig(**config_dict)
    records = []
    for index in range(start, stop):
        image, record = render_scene(_image_rng(config.seed, split, index), config)
        rel = f"images/{split}/{index:05d}.png"
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", compress_level=6)
        with open(os.path.join(out_dir, rel), "wb") as handle:
            handle.write(buffer.getvalue())
        records.append({"file": rel, **record})
    return records


def _metadata(config: SceneConfig) -> dict:
    return {
        "format": "msrn-scenes",
        "generator_version": GENERATOR_VERSION,
        "cache_name": config.cache_name,
        "config": asdict(config),
        "image_size": config.image_size,
        "box_format": "[class_idx, x0, y0, x1, y1] in pixels of the saved image, end exclusive",
        "class_names": CLASS_NAMES,
        "families": [c.family for c in CLASSES],
        "family_names": FAMILY_NAMES,
        "class_themes": [list(c.themes) for c in CLASSES],
        "theme_names": THEME_NAMES,
        "theme_probabilities": {t.name: t.probabilities for t in THEMES},
        "hub_classes": HUB_CLASSES,
        "bridge_classes": BRIDGE_CLASSES,
        "small_classes": [c.name for c in CLASSES if c.small],
        "low_contrast_classes": [c.name for c in CLASSES if c.low_contrast],
    }


def generate_scenes(config: SceneConfig | None = None, root: str | os.PathLike = "data",
                    workers: int | None = None, force: bool = False, verbose: bool = False) -> Path:
    """Generate ``config``'s dataset under ``root/<cache_name>`` and return that folder.

    A folder that already holds ``annotations.json`` (written last, atomically) is complete:
    it is returned at once (cache hit) unless ``force``. ``workers``: processes to draw with
    (default: one per CPU core, at most 8, for 400+ images, else 1); the output does not depend on it.
    """
    config = config or SceneConfig()
    out = dataset_dir(root, config)
    annotations = out / "annotations.json"
    if annotations.exists() and not force:
        return out
    if out.exists():  # an incomplete (interrupted) or forced generation: start clean
        shutil.rmtree(out / "images", ignore_errors=True)
        annotations.unlink(missing_ok=True)
    for split in SPLITS:
        (out / "images" / split).mkdir(parents=True, exist_ok=True)

    start_time = time.perf_counter()
    total = config.num_train + config.num_val + config.num_test
    if workers is None:
        workers = worker_processes() if total >= 400 else 1
    jobs = []
    chunk = max(25, math.ceil(total / (8 * max(workers, 1))))
    for split in SPLITS:
        n = config.split_size(split)
        jobs += [(asdict(config), str(out), split, s, min(n, s + chunk)) for s in range(0, n, chunk)]
    if workers > 1 and len(jobs) > 1:
        method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
        with mp.get_context(method).Pool(workers) as pool:
            results = pool.map(_render_chunk, jobs, chunksize=1)
    else:
        results = [_render_chunk(job) for job in jobs]

    splits: dict[str, list] = {split: [] for split in SPLITS}
    for job, records in zip(jobs, results):
        splits[job[2]].extend(records)
    meta = _metadata(config)
    meta["splits"] = splits
    atomic_write_json(annotations, meta)  # last: its presence marks the dataset complete
    if verbose:
        print(f"generated {total} images in {time.perf_counter() - start_time:.1f} s -> {out}")
    return out


class SceneDataset(ImageListDataset):
    """One split of the scene dataset: the shared interface plus boxes, themes and families."""

    def __init__(self, image_paths, labels, class_names, transform=None, name="scenes", *,
                 boxes, image_themes, class_themes, class_families, theme_names, hub_classes,
                 root: Path, config: SceneConfig, split: str):
        super().__init__(image_paths, labels, class_names, transform=transform, name=name)
        self.boxes: list[list[tuple[int, int, int, int, int]]] = boxes
        self.image_themes: list[list[str]] = image_themes
        self.class_themes: list[list[str]] = class_themes
        self.class_families: list[str] = class_families
        self.theme_names: list[str] = theme_names
        self.hub_classes: list[str] = hub_classes
        self.root = Path(root)
        self.config = config
        self.split = split


def _resolve_dir(root: str | os.PathLike, config: SceneConfig | None) -> tuple[Path, SceneConfig]:
    root = Path(root)
    if config is None and (root / "annotations.json").exists():  # root is a dataset folder itself
        meta = read_json(root / "annotations.json", "regenerate the dataset (python -m msrn_core.running.make_scenes --force)")
        return root, SceneConfig.from_dict(meta["config"])
    config = config or SceneConfig()
    return dataset_dir(root, config), config


RECORD_KEYS = ("file", "labels", "boxes", "themes")
META_KEYS = ("class_names", "class_themes", "families", "theme_names", "hub_classes", "splits")


def scene_cache_problem(folder: Path, config: SceneConfig) -> str | None:
    """Why ``folder`` does not hold ``config``'s complete dataset (in words), or None when it does:
    ``annotations.json`` readable and whole, every split of the configured size, every image there."""
    try:
        meta = json.loads((folder / "annotations.json").read_bytes())
    except (OSError, ValueError) as error:
        return f"annotations.json is unreadable: {type(error).__name__}"
    if not isinstance(meta, dict) or meta.get("format") != "msrn-scenes" or any(key not in meta for key in META_KEYS):
        return "annotations.json is not a whole scene dataset's"
    if meta.get("generator_version") != GENERATOR_VERSION:
        return f"annotations.json is of generator version {meta.get('generator_version')}, not {GENERATOR_VERSION}"
    classes = len(meta["class_names"])
    for split in SPLITS:
        records = meta["splits"].get(split) if isinstance(meta["splits"], dict) else None
        if not isinstance(records, list) or len(records) != config.split_size(split):
            return f"the {split} split lists {len(records) if isinstance(records, list) else 'no'} images, " \
                   f"not {config.split_size(split)}"
        for record in records:
            if not isinstance(record, dict) or any(key not in record for key in RECORD_KEYS) or not all(
                    isinstance(label, int) and 0 <= label < classes for label in record["labels"]):
                return f"a record of the {split} split is malformed"
        missing = [record["file"] for record in records if not _nonempty_file(folder / record["file"])]
        if missing:
            return f"{len(missing)} image(s) of the {split} split are missing or empty (first: {missing[0]})"
    return None


def _nonempty_file(path: Path) -> bool:
    try:
        return path.stat().st_size > 0
    except OSError:
        return False


def load_scenes(root: str | os.PathLike = "data", split: str = "train", config: SceneConfig | None = None,
                transform: Callable | None = None, generate: bool = True) -> SceneDataset:
    """One split (``train``/``val``/``test``) of the scene dataset, generating it if needed.

    ``root`` is the data folder holding ``<cache_name>`` folders (or a dataset folder itself).
    With ``generate=False`` a missing or incomplete dataset raises
    :class:`~msrn_core.data.dataset.DatasetNotFoundError` naming the folder and the fix.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    folder, config = _resolve_dir(root, config)
    annotations = folder / "annotations.json"
    if not annotations.exists():
        if not generate:
            state = "is incomplete (no annotations.json)" if folder.exists() and any(folder.iterdir()) else \
                "is missing or empty"
            raise DatasetNotFoundError(
                f"scene dataset folder {folder} {state}. Generate it with "
                f"msrn_core.data.scenes.generate_scenes(config, root={str(Path(root))!r}) or run "
                f"`python -m msrn_core.running.make_scenes --root {Path(root)} --image-size {config.image_size} "
                f"--seed {config.seed}`, or call load_scenes(..., generate=True)."
            )
        generate_scenes(config, root=folder.parent)
    problem = scene_cache_problem(folder, config)
    if problem is not None:  # the cache is checked on every read: a damaged one is drawn again
        if not generate:
            raise DatasetNotFoundError(
                f"scene dataset folder {folder} is corrupt ({problem}). Generate it again: "
                f"generate_scenes(config, root={str(folder.parent)!r}, force=True), or `python -m "
                f"msrn_core.running.make_scenes --root {folder.parent} --image-size {config.image_size} --seed "
                f"{config.seed} --num-train {config.num_train} --num-val {config.num_val} --num-test "
                f"{config.num_test} --force`")
        warnings.warn(f"the scene dataset in {folder} is corrupt ({problem}): generating it again", stacklevel=2)
        generate_scenes(config, root=folder.parent, force=True)
    meta = read_json(annotations, "regenerate the dataset (python -m msrn_core.running.make_scenes --force)")
    records = meta["splits"][split]
    n = len(meta["class_names"])
    labels = np.zeros((len(records), n), dtype=np.uint8)
    for i, record in enumerate(records):
        labels[i, record["labels"]] = 1
    return SceneDataset(
        [folder / r["file"] for r in records], labels, meta["class_names"], transform=transform,
        name=f"scenes/{split}",
        boxes=[[tuple(b) for b in r["boxes"]] for r in records],
        image_themes=[list(r["themes"]) for r in records],
        class_themes=[list(t) for t in meta["class_themes"]],
        class_families=list(meta["families"]),
        theme_names=list(meta["theme_names"]),
        hub_classes=list(meta["hub_classes"]),
        root=folder, config=config, split=split,
    )


def load_scene_splits(root: str | os.PathLike = "data", config: SceneConfig | None = None,
                      train_transform: Callable | None = None, eval_transform: Callable | None = None,
                      generate: bool = True) -> tuple[SceneDataset, SceneDataset, SceneDataset]:
    """``(train, val, test)``: train with ``train_transform``, val and test with ``eval_transform``."""
    train = load_scenes(root, "train", config, train_transform, generate)  # generates all three splits
    val = load_scenes(root, "val", config, eval_transform, generate)
    test = load_scenes(root, "test", config, eval_transform, generate)
    return train, val, test

"""The scene dataset's command line: generate (or find in the cache) the built-in dataset and
describe it.

    python -m msrn_core.running.make_scenes --small          # the tiny CI preset
    python -m msrn_core.running.make_scenes --image-size 448 # the GPU recipe's images
"""
from __future__ import annotations

import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Sequence

import numpy as np

from .. import defaults
from ..data.scenes import (CLASS_NAMES, FAMILIES, HUB_CLASSES, THEME_NAMES, THEMES, SceneConfig, dataset_dir,
                           generate_scenes, label_statistics, load_scenes)
from ..graph import conditional_probabilities, cooccurrence_counts
from .cli import OneLineParser, run_cli


def _summary(folder: Path, seconds: float, cached: bool) -> str:
    train = load_scenes(folder, "train", generate=False)
    lines = [f"scene dataset: {folder}" + (" (cache hit)" if cached else f" (generated in {seconds:.1f} s)")]
    cfg = train.config
    lines.append(f"images: train {cfg.num_train}, val {cfg.num_val}, test {cfg.num_test} at {cfg.image_size} px")
    lines.append(f"{len(CLASS_NAMES)} classes, {len(THEME_NAMES)} themes, hub classes: {', '.join(HUB_CLASSES)}")
    for theme in THEMES:
        lines.append(f"  {theme.name:8s}: " + ", ".join(f"{n} ({p:.2f})" for n, p in theme.probabilities.items()))
    lines.append("families: " + "; ".join(f"{f}: {', '.join(m)}" for f, m in FAMILIES.items()))
    stats = label_statistics(train)
    lines.append(f"train: {stats['mean_labels_per_image']:.2f} labels / image, "
                 f"{stats['mean_objects_per_image']:.2f} objects / image, "
                 f"{100 * stats['two_theme_fraction']:.0f}% two-theme images")
    probs = conditional_probabilities(*cooccurrence_counts(train.labels))
    edges = probs >= 0.4
    same = np.array([[bool(set(a) & set(b)) for b in train.class_themes] for a in train.class_themes])
    np.fill_diagonal(same, False)
    lines.append(f"co-occurrence edges at t=0.4: {int(edges.sum())} "
                 f"({int((edges & same).sum())} within a theme, {int((edges & ~same).sum())} across)")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = OneLineParser(prog="python -m msrn_core.running.make_scenes", description="Generate the synthetic multi-label scene dataset.")
    parser.add_argument("--root", default="data", help="data folder (default: data)")
    parser.add_argument("--image-size", type=int, default=None, help=f"image side in pixels, 32..448 (default {defaults.IMAGE_SIZE})")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-train", type=int, default=None)
    parser.add_argument("--num-val", type=int, default=None)
    parser.add_argument("--num-test", type=int, default=None)
    parser.add_argument("--small", action="store_true", help="the tiny CI preset (64 px, 96/48/48)")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: one per core, up to 8)")
    parser.add_argument("--force", action="store_true", help="regenerate even if a complete copy exists")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    args = parser.parse_args(argv)
    config = SceneConfig.small(seed=args.seed) if args.small else SceneConfig(seed=args.seed)
    overrides = {k: v for k, v in (("image_size", args.image_size), ("num_train", args.num_train),
                                   ("num_val", args.num_val), ("num_test", args.num_test)) if v is not None}
    config = replace(config, **overrides)
    folder = dataset_dir(args.root, config)
    cached = (folder / "annotations.json").exists() and not args.force
    start = time.perf_counter()
    generate_scenes(config, args.root, workers=args.workers, force=args.force)
    print(_summary(folder, time.perf_counter() - start, cached))


def cli(argv: Sequence[str] | None = None) -> int:
    """The console entry point: :func:`main`, with the project's errors as one ``error:`` line."""
    return run_cli(main, argv)


if __name__ == "__main__":
    sys.exit(cli())

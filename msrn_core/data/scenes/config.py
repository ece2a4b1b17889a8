"""How many scenes, of which size, from which seed, with which composition knobs, and the cache
folder that name encodes."""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from ... import defaults

# Bump when the drawing or sampling changes: it is part of the cache name, so old caches
# are not mistaken for new ones.
GENERATOR_VERSION = 2

SPLITS = ("train", "val", "test")
_SPLIT_IDS = {name: i for i, name in enumerate(SPLITS)}


@dataclass
class SceneConfig:
    """How many images, of which size, from which seed, and the composition knobs.

    ``two_theme_rate``: fraction of images composed from two themes (each theme's classes then
    at 0.75 of their probability). ``noise_rate``: expected number of off-theme objects per
    image. ``clutter``: mean number of background strokes/blobs. ``pixel_noise``: standard
    deviation of the Gaussian pixel noise (0-255 scale). ``max_overlap``: at most this fraction
    of the smaller of two boxes may be covered by the other. ``max_objects``: cap on objects
    per image.
    """

    seed: int = 0
    image_size: int = defaults.IMAGE_SIZE  # 128
    num_train: int = 2000
    num_val: int = 500
    num_test: int = 500
    two_theme_rate: float = 0.12
    noise_rate: float = 0.25
    clutter: float = 6.0
    pixel_noise: float = 6.0
    max_overlap: float = 0.5
    max_objects: int = 9

    def __post_init__(self):
        if not 32 <= self.image_size <= 448:
            raise ValueError(f"image_size must be in 32..448, got {self.image_size}")
        for name in ("num_train", "num_val", "num_test"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")

    @classmethod
    def small(cls, **overrides) -> "SceneConfig":
        """A tiny preset for tests and CI: 64 px, 96/48/48 images (generates in about a second)."""
        values = dict(image_size=64, num_train=96, num_val=48, num_test=48)
        values.update(overrides)
        return cls(**values)

    def split_size(self, split: str) -> int:
        return {"train": self.num_train, "val": self.num_val, "test": self.num_test}[split]

    @property
    def cache_name(self) -> str:
        """Folder name encoding the config: ``scenes-s0-128px-2000-500-500-<hash>``.

        The hash covers every field and :data:`GENERATOR_VERSION`, so different knobs or a new
        generator never collide with an old cache.
        """
        payload = json.dumps({"version": GENERATOR_VERSION, **asdict(self)}, sort_keys=True)
        digest = hashlib.sha1(payload.encode()).hexdigest()[:8]
        return (f"scenes-s{self.seed}-{self.image_size}px-"
                f"{self.num_train}-{self.num_val}-{self.num_test}-{digest}")

    @classmethod
    def from_dict(cls, values: dict) -> "SceneConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


def dataset_dir(root: str | os.PathLike = "data", config: SceneConfig | None = None) -> Path:
    """The folder ``root/<cache_name>`` where ``config``'s dataset lives (or will live)."""
    config = config or SceneConfig()
    return Path(root) / config.cache_name

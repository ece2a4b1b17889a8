"""The built-in synthetic multi-label scene dataset: the tutorial's offline default.

Nothing can be downloaded, so the tutorial draws its own multi-label images. They are built to
have the structure MSRN exploits:

- **Themes.** Every image is composed from one scene theme (street, kitchen, farm, seaside),
  occasionally two. Given its theme, each of the theme's classes appears with probability
  0.5-0.65, independently, so the conditional probability ``P(j | i)`` between two classes of
  one theme is above the paper's threshold ``t = 0.4``: the label co-occurrence graph has real
  edges inside themes and few across them. A few off-theme "noise" objects are sprinkled in.
- **Hub.** ``person`` appears in every theme with probability >= 0.5, so ``P(person | i) >= 0.4``
  for every class ``i``: it receives an edge from everything. ``dog`` (street, farm) and
  ``bird`` (farm, seaside) bridge two themes each.
- **Appearance follows meaning.** Classes of one *family* share visual parts: vehicles have
  two dark wheels under a body, animals have a body, legs and a head, appliances are boxes
  with a handle, tableware has a light elliptical rim, plants are green foliage on a trunk or
  stem, pole-mounted things stand on a grey pole, watercraft share a hull. Classes of a family
  differ by colour, texture, proportions and one class-specific part, so a class held out of
  training can be related to its family from its name (zero-shot issue).
- **Realism knobs.** Objects are placed at random positions and scales (lower in the image =
  closer = larger, drawn later, so nearer objects *occlude* farther ones, at most about half of
  the smaller object), over a theme-tinted background with random strokes and blobs
  (*clutter*) and pixel noise. ``bird``, ``cup``, ``bottle``, ``bowl``, ``canoe`` and
  ``traffic light`` are *small* and ``bowl``/``canoe``/``sheep`` are *low-contrast*, so context
  helps to recognise them.
- **Boxes.** Every drawn object's box ``(class_idx, x0, y0, x1, y1)`` is recorded in pixel
  coordinates of the saved image (``0 <= x0 < x1 <= image_size``, end exclusive), for scoring
  attention maps (pointing game).

Generation is deterministic: image ``i`` of split ``s`` uses its own generator
``np.random.default_rng([seed, split_id, i])``, so the same seed gives byte-identical PNGs and
annotations whatever the order or the number of worker processes.

Layout on disk (``root/<cache_name>/``)::

    images/train/00000.png ...     images/val/...     images/test/...
    annotations.json               (written last and atomically: its presence = complete)

Public API: :data:`CLASSES`, :data:`CLASS_NAMES`, :data:`FAMILIES`, :data:`THEMES`,
:data:`THEME_NAMES`, :data:`HUB_CLASSES`, :data:`BRIDGE_CLASSES`, :class:`SceneConfig`, :func:`generate_scenes`,
:func:`dataset_dir`, :func:`load_scenes`, :func:`load_scene_splits`, :class:`SceneDataset`,
:func:`label_statistics`, and the command line ``python -m msrn_core.data.scenes``.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import math
import multiprocessing as mp
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from PIL import Image, ImageDraw

from .. import defaults
from .dataset import DatasetNotFoundError, ImageListDataset
from ..utils import atomic_write_json, read_json, worker_processes

# Bump when the drawing or sampling changes: it is part of the cache name, so old caches
# are not mistaken for new ones.
GENERATOR_VERSION = 2

SPLITS = ("train", "val", "test")
_SPLIT_IDS = {name: i for i, name in enumerate(SPLITS)}


# --------------------------------------------------------------------------------------------
# Classes, families, themes
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SceneClass:
    """One label: its name, semantic family, themes, and how it is drawn.

    ``height`` is the nominal object height as a fraction of the image side, ``aspect`` its
    width / height, ``anchor`` the range (fractions of the image side) in which the object's
    bottom edge is placed, ``max_instances`` how many copies one image may hold, ``colour`` the
    signature colour (RGB), ``fade`` how much the colours are blended towards the background
    (low contrast), ``small`` / ``low_contrast`` flags for documentation and analysis.
    """

    name: str
    family: str
    themes: tuple[str, ...]
    height: float
    aspect: float
    anchor: tuple[float, float]
    colour: tuple[int, int, int]
    max_instances: int = 1
    fade: float = 0.0
    small: bool = False
    low_contrast: bool = False


@dataclass(frozen=True)
class Theme:
    """A scene theme: its classes with their probability given the theme, and its look."""

    name: str
    probabilities: dict  # class name -> P(class | theme)
    horizon: float  # fraction of the image side where the background changes (sky/ground, wall/floor)


# P(class | theme). Within-theme pairs get P(j|i) ~ P(j|theme) >= 0.5 (minus a little dilution by
# off-theme and two-theme images); "person" is in all themes.
_THEME_TABLE: dict[str, dict[str, float]] = {
    "street": {"person": 0.60, "car": 0.65, "bus": 0.50, "bicycle": 0.55, "traffic light": 0.55,
               "stop sign": 0.50, "street lamp": 0.55, "dog": 0.55},
    "kitchen": {"person": 0.60, "refrigerator": 0.60, "oven": 0.55, "microwave": 0.55, "cup": 0.60,
                "bottle": 0.55, "bowl": 0.55, "cat": 0.50, "potted plant": 0.50},
    "farm": {"person": 0.55, "cow": 0.60, "horse": 0.55, "sheep": 0.60, "tractor": 0.55, "tree": 0.60,
             "dog": 0.55, "bird": 0.55},
    "seaside": {"person": 0.65, "boat": 0.60, "sailboat": 0.60, "canoe": 0.55, "palm tree": 0.60,
                "bird": 0.55},
}
_HORIZONS = {"street": 0.40, "kitchen": 0.55, "farm": 0.38, "seaside": 0.40}

THEMES: list[Theme] = [Theme(name, dict(probs), _HORIZONS[name]) for name, probs in _THEME_TABLE.items()]
THEME_NAMES: list[str] = [theme.name for theme in THEMES]


def _themes_of(name: str) -> tuple[str, ...]:
    return tuple(theme.name for theme in THEMES if name in theme.probabilities)


_G = (0.55, 0.98)  # bottom edge on the ground / floor, near the camera = low in the image
# name, family, height, aspect, anchor, colour, max_instances, fade, small, low_contrast
_CLASS_TABLE = [
    ("person", "animal", 0.42, 0.42, (0.55, 0.98), (60, 110, 190), 2, 0.0, False, False),
    ("dog", "animal", 0.22, 1.30, _G, (185, 135, 75), 1, 0.0, False, False),
    ("cat", "animal", 0.18, 1.25, _G, (125, 125, 130), 1, 0.0, False, False),
    ("bird", "animal", 0.09, 1.10, (0.12, 0.98), (40, 75, 170), 3, 0.0, True, False),
    ("cow", "animal", 0.30, 1.45, _G, (240, 240, 235), 2, 0.0, False, False),
    ("horse", "animal", 0.36, 1.25, _G, (135, 75, 35), 1, 0.0, False, False),
    ("sheep", "animal", 0.20, 1.35, _G, (225, 220, 200), 3, 0.25, False, True),
    ("car", "vehicle", 0.20, 1.90, (0.60, 0.98), (200, 35, 35), 2, 0.0, False, False),
    ("bus", "vehicle", 0.32, 2.10, (0.60, 0.98), (240, 185, 25), 1, 0.0, False, False),
    ("bicycle", "vehicle", 0.20, 1.60, (0.60, 0.98), (30, 160, 170), 1, 0.0, False, False),
    ("tractor", "vehicle", 0.30, 1.35, _G, (40, 140, 45), 1, 0.0, False, False),
    ("refrigerator", "appliance", 0.60, 0.50, (0.70, 0.98), (236, 238, 240), 1, 0.0, False, False),
    ("oven", "appliance", 0.32, 1.00, (0.70, 0.98), (70, 70, 76), 1, 0.0, False, False),
    ("microwave", "appliance", 0.17, 1.60, (0.45, 0.98), (175, 178, 185), 1, 0.0, False, False),
    ("cup", "tableware", 0.10, 1.15, (0.45, 0.98), (50, 110, 200), 2, 0.0, True, False),
    ("bottle", "tableware", 0.19, 0.38, (0.45, 0.98), (35, 125, 60), 2, 0.0, True, False),
    ("bowl", "tableware", 0.08, 2.00, (0.45, 0.98), (225, 205, 165), 1, 0.35, True, True),
    ("tree", "plant", 0.55, 0.78, (0.50, 0.98), (45, 130, 40), 2, 0.0, False, False),
    ("palm tree", "plant", 0.60, 0.60, (0.70, 0.98), (60, 150, 50), 1, 0.0, False, False),
    ("potted plant", "plant", 0.25, 0.70, (0.45, 0.98), (50, 145, 55), 1, 0.0, False, False),
    ("traffic light", "pole", 0.45, 0.22, (0.50, 0.98), (35, 35, 35), 1, 0.0, True, False),
    ("stop sign", "pole", 0.38, 0.36, (0.50, 0.98), (205, 25, 30), 1, 0.0, False, False),
    ("street lamp", "pole", 0.55, 0.45, (0.50, 0.98), (250, 225, 130), 1, 0.0, False, False),
    ("boat", "watercraft", 0.20, 2.00, (0.45, 0.72), (245, 245, 245), 2, 0.0, False, False),
    ("sailboat", "watercraft", 0.40, 0.85, (0.45, 0.72), (30, 50, 120), 1, 0.0, False, False),
    ("canoe", "watercraft", 0.09, 3.20, (0.45, 0.75), (175, 85, 35), 1, 0.25, True, True),
]

CLASSES: list[SceneClass] = [
    SceneClass(name, family, _themes_of(name), height, aspect, anchor, colour, max_inst, fade, small, low)
    for name, family, height, aspect, anchor, colour, max_inst, fade, small, low in _CLASS_TABLE
]
CLASS_NAMES: list[str] = [c.name for c in CLASSES]
CLASS_INDEX: dict[str, int] = {name: i for i, name in enumerate(CLASS_NAMES)}
FAMILIES: dict[str, list[str]] = {}
for _c in CLASSES:
    FAMILIES.setdefault(_c.family, []).append(_c.name)
FAMILY_NAMES: list[str] = list(FAMILIES)
# Classes present in every theme: they receive a co-occurrence edge from (almost) every class.
HUB_CLASSES: list[str] = [c.name for c in CLASSES if len(c.themes) == len(THEMES)]
# Classes of two or more (but not all) themes: partial hubs that link two label groups.
BRIDGE_CLASSES: list[str] = [c.name for c in CLASSES if 1 < len(c.themes) < len(THEMES)]

assert all(c.themes for c in CLASSES), "every class needs a theme"
assert all(name in CLASS_INDEX for t in THEMES for name in t.probabilities)


# --------------------------------------------------------------------------------------------
# Configuration and cache naming
# --------------------------------------------------------------------------------------------
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


# --------------------------------------------------------------------------------------------
# Drawing: a painter working in the unit box of one object
# --------------------------------------------------------------------------------------------
def _mix(colour, target, amount: float):
    return tuple(int(round(c * (1 - amount) + t * amount)) for c, t in zip(colour, target))


def _clamp(value: float) -> int:
    return 0 if value < 0 else 255 if value > 255 else int(value)


def _jitter(rng: np.random.Generator, colour, amount: int = 18):
    offsets = rng.integers(-amount, amount + 1, size=3)
    return tuple(_clamp(c + int(o)) for c, o in zip(colour, offsets))


def _shade(colour, factor: float):
    return tuple(_clamp(c * factor) for c in colour)


class _Painter:
    """Draws shapes given in the object's unit box (u right, v down, both in [0, 1]).

    ``flip`` mirrors u so objects face left or right; ``fade``/``background`` lower the contrast
    by blending every colour towards the background colour.
    """

    def __init__(self, draw: ImageDraw.ImageDraw, box, flip: bool, fade: float, background):
        self.draw = draw
        self.x0, self.y0, self.x1, self.y1 = box
        self.w = self.x1 - self.x0
        self.h = self.y1 - self.y0
        self.flip = flip
        self.fade = fade
        self.background = background

    def c(self, colour):
        return _mix(colour, self.background, self.fade) if self.fade > 0 else tuple(colour)

    def pt(self, u: float, v: float):
        if self.flip:
            u = 1.0 - u
        return (self.x0 + u * self.w, self.y0 + v * self.h)

    def _rect_pts(self, u0, v0, u1, v1):
        (a, b), (c, d) = self.pt(u0, v0), self.pt(u1, v1)
        return [min(a, c), min(b, d), max(a, c), max(b, d)]

    def width(self, frac: float, base: str = "h") -> int:
        size = self.h if base == "h" else self.w
        return max(1, int(round(frac * size)))

    def rect(self, u0, v0, u1, v1, fill, outline=None, radius: float = 0.0):
        box = self._rect_pts(u0, v0, u1, v1)
        fill = self.c(fill)
        outline = self.c(outline) if outline is not None else None
        if radius > 0:
            r = max(1, int(radius * min(box[2] - box[0], box[3] - box[1])))
            self.draw.rounded_rectangle(box, r, fill=fill, outline=outline, width=1)
        else:
            self.draw.rectangle(box, fill=fill, outline=outline)

    def ellipse(self, u0, v0, u1, v1, fill, outline=None, width: int = 1):
        self.draw.ellipse(self._rect_pts(u0, v0, u1, v1), fill=self.c(fill) if fill is not None else None,
                          outline=self.c(outline) if outline is not None else None, width=width)

    def circle(self, u, v, r, fill, outline=None, width: int = 1):
        """A true circle centred at (u, v) with radius ``r`` in units of the box height."""
        cx, cy = self.pt(u, v)
        rr = r * self.h
        self.draw.ellipse([cx - rr, cy - rr, cx + rr, cy + rr], fill=self.c(fill) if fill is not None else None,
                          outline=self.c(outline) if outline is not None else None, width=width)

    def poly(self, points, fill, outline=None):
        self.draw.polygon([self.pt(u, v) for u, v in points], fill=self.c(fill),
                          outline=self.c(outline) if outline is not None else None)

    def line(self, points, fill, width_frac: float, base: str = "h"):
        self.draw.line([self.pt(u, v) for u, v in points], fill=self.c(fill), width=self.width(width_frac, base),
                       joint="curve")

    def pie(self, u0, v0, u1, v1, start, end, fill):
        if self.flip:
            start, end = 180 - end, 180 - start
        self.draw.pieslice(self._rect_pts(u0, v0, u1, v1), start, end, fill=self.c(fill))


DARK = (28, 28, 30)
TYRE = (25, 25, 28)
GLASS = (150, 200, 230)
SKIN = (225, 180, 140)
POLE = (95, 98, 105)


# ----- shared family parts ------------------------------------------------------------------
def _wheels(p: _Painter, centres, radius, hub=(170, 170, 175)):
    """Vehicle family: dark tyres with a light hub, under the body (``radius``: one or one per wheel)."""
    radii = radius if isinstance(radius, (list, tuple)) else [radius] * len(centres)
    for (u, v), r in zip(centres, radii):
        p.circle(u, v, r, TYRE)
        p.circle(u, v, r * 0.42, hub)


def _legs(p: _Painter, us, v_top: float, v_bottom: float, width: float, colour):
    """Animal family: vertical legs under the body."""
    for u in us:
        p.rect(u - width / 2, v_top, u + width / 2, v_bottom, colour)


def _eye(p: _Painter, u, v, r=0.035):
    p.circle(u, v, r, DARK)


def _appliance_box(p: _Painter, colour, rng):
    """Appliance family: a box with a dark outline and a little shadow at its feet."""
    p.rect(0.0, 0.0, 1.0, 1.0, _shade(colour, 0.55))
    p.rect(0.02, 0.01, 0.98, 0.96, colour, outline=_shade(colour, 0.45), radius=0.05)


def _handle(p: _Painter, u0, v0, u1, v1, colour=(55, 55, 60)):
    p.rect(u0, v0, u1, v1, colour, radius=0.4)


def _rim(p: _Painter, u0, u1, v, thickness, colour):
    """Tableware family: the light elliptical opening at the top."""
    p.ellipse(u0, v - thickness, u1, v + thickness, _shade(colour, 1.25), outline=_shade(colour, 0.6))
    p.ellipse(u0 + (u1 - u0) * 0.12, v - thickness * 0.55, u1 - (u1 - u0) * 0.12, v + thickness * 0.55,
              _shade(colour, 0.5))


def _foliage(p: _Painter, rng, u0, v0, u1, v1, colour, n: int = 6):
    """Plant family: a green mass of overlapping blobs with darker speckles."""
    for _ in range(n):
        cu, cv = rng.uniform(u0 + 0.2 * (u1 - u0), u1 - 0.2 * (u1 - u0)), rng.uniform(v0 + 0.25 * (v1 - v0), v1 - 0.25 * (v1 - v0))
        ru, rv = 0.28 * (u1 - u0) * rng.uniform(0.8, 1.15), 0.28 * (v1 - v0) * rng.uniform(0.8, 1.15)
        p.ellipse(max(u0, cu - ru), max(v0, cv - rv), min(u1, cu + ru), min(v1, cv + rv),
                  _shade(colour, rng.uniform(0.85, 1.15)))
    for _ in range(n + 2):
        cu, cv = rng.uniform(u0 + 0.15 * (u1 - u0), u1 - 0.15 * (u1 - u0)), rng.uniform(v0 + 0.15 * (v1 - v0), v1 - 0.15 * (v1 - v0))
        p.ellipse(cu - 0.04, cv - 0.025, cu + 0.04, cv + 0.025, _shade(colour, 0.6))


def _pole(p: _Painter, v_top: float, u: float = 0.5, width: float = 0.14):
    """Pole family: a grey pole from ``v_top`` to the ground, with a darker foot."""
    p.rect(u - width / 2, v_top, u + width / 2, 1.0, POLE)
    p.rect(u - width, 0.96, u + width, 1.0, _shade(POLE, 0.7))


def _hull(p: _Painter, v_top: float, v_bottom: float, colour, stripe=None):
    """Watercraft family: a hull with a vertical stern (u=0) and an upswept pointed bow (u=1)."""
    h = v_bottom - v_top
    p.poly([(0.0, v_top), (1.0, v_top - 0.15 * h), (0.82, v_bottom), (0.07, v_bottom)], colour,
           outline=_shade(colour, 0.5))
    if stripe is not None:
        p.poly([(0.01, v_top + 0.35 * h), (0.95, v_top + 0.3 * h), (0.9, v_top + 0.55 * h), (0.03, v_top + 0.6 * h)],
               stripe)


# ----- one function per class -----------------------------------------------------------------
def _draw_person(p, rng, col):
    shirt = _jitter(rng, [(60, 110, 190), (200, 60, 60), (235, 190, 40), (60, 160, 80), (150, 70, 170)][rng.integers(5)], 12)
    trousers = _jitter(rng, (40, 50, 90), 10)
    _legs(p, (0.37, 0.63), 0.58, 1.0, 0.2, trousers)  # shared animal part: legs
    p.rect(0.2, 0.2, 0.8, 0.62, shirt, radius=0.2)
    p.line([(0.23, 0.25), (0.05, 0.55)], shirt, 0.06)
    p.line([(0.77, 0.25), (0.95, 0.55)], shirt, 0.06)
    p.circle(0.05, 0.57, 0.035, SKIN)
    p.circle(0.95, 0.57, 0.035, SKIN)
    p.ellipse(0.27, 0.0, 0.73, 0.21, SKIN)  # head
    p.pie(0.27, -0.01, 0.73, 0.2, 180, 360, _jitter(rng, (70, 45, 25), 20))  # hair


def _quadruped(p, rng, body, legs_colour, body_box, leg_us, leg_width, head_box, v_leg_bottom=1.0):
    u0, v0, u1, v1 = body_box
    _legs(p, leg_us, (v0 + v1) / 2, v_leg_bottom, leg_width, legs_colour)
    p.ellipse(u0, v0, u1, v1, body)
    hu0, hv0, hu1, hv1 = head_box
    p.ellipse(hu0, hv0, hu1, hv1, body)
    _eye(p, hu0 + 0.62 * (hu1 - hu0), hv0 + 0.38 * (hv1 - hv0), 0.03)


def _draw_dog(p, rng, col):
    body = _jitter(rng, col)
    p.line([(0.2, 0.42), (0.05, 0.1)], body, 0.07)  # tail up
    _quadruped(p, rng, body, _shade(body, 0.85), (0.12, 0.3, 0.8, 0.68), (0.22, 0.34, 0.6, 0.72), 0.08,
               (0.66, 0.05, 0.95, 0.42))
    p.ellipse(0.88, 0.2, 1.0, 0.34, _shade(body, 0.75))  # snout
    p.circle(0.985, 0.24, 0.035, DARK)  # nose
    p.ellipse(0.62, 0.08, 0.74, 0.45, _shade(body, 0.5))  # floppy ear


def _draw_cat(p, rng, col):
    body = _jitter(rng, col, 14)
    stripe = _shade(body, 0.6)
    p.line([(0.12, 0.5), (0.02, 0.3), (0.06, 0.05)], body, 0.07)  # curled tail
    _quadruped(p, rng, body, body, (0.08, 0.38, 0.75, 0.72), (0.18, 0.3, 0.58, 0.68), 0.07,
               (0.64, 0.1, 0.96, 0.5))
    for u in (0.25, 0.37, 0.49, 0.61):
        p.line([(u, 0.4), (u + 0.04, 0.58)], stripe, 0.05)  # tabby stripes
    p.poly([(0.66, 0.22), (0.7, 0.0), (0.78, 0.16)], body)  # pointy ears
    p.poly([(0.84, 0.16), (0.92, 0.0), (0.95, 0.24)], body)
    p.circle(0.86, 0.3, 0.03, (120, 200, 80))
    p.line([(0.9, 0.4), (1.0, 0.36)], (235, 235, 235), 0.02)  # whiskers
    p.line([(0.9, 0.42), (1.0, 0.46)], (235, 235, 235), 0.02)


def _draw_bird(p, rng, col):
    body = _jitter(rng, col, 20)
    p.line([(0.38, 0.65), (0.36, 1.0)], (220, 140, 40), 0.06)  # thin legs
    p.line([(0.52, 0.65), (0.54, 1.0)], (220, 140, 40), 0.06)
    p.poly([(0.22, 0.45), (0.0, 0.3), (0.04, 0.62)], _shade(body, 0.7))  # tail
    p.ellipse(0.12, 0.28, 0.78, 0.75, body)
    p.ellipse(0.22, 0.36, 0.6, 0.6, _shade(body, 0.65))  # wing
    p.ellipse(0.55, 0.05, 0.9, 0.45, body)  # head
    p.poly([(0.88, 0.2), (1.0, 0.28), (0.88, 0.34)], (245, 160, 30))  # beak
    p.circle(0.76, 0.2, 0.05, DARK)


def _draw_cow(p, rng, col):
    body = _jitter(rng, col, 8)
    p.line([(0.1, 0.3), (0.02, 0.62)], body, 0.04)  # tail
    _quadruped(p, rng, body, body, (0.06, 0.18, 0.78, 0.66), (0.16, 0.28, 0.58, 0.68), 0.09,
               (0.72, 0.12, 0.98, 0.48))
    for _ in range(4):  # black patches: the cow's texture
        u, v = rng.uniform(0.15, 0.65), rng.uniform(0.25, 0.55)
        p.ellipse(u - 0.08, v - 0.08, u + 0.08, v + 0.09, (30, 30, 30))
    p.ellipse(0.82, 0.32, 1.0, 0.5, (235, 160, 165))  # pink muzzle
    p.line([(0.76, 0.14), (0.72, 0.02)], (220, 210, 170), 0.04)  # horns
    p.line([(0.9, 0.14), (0.94, 0.02)], (220, 210, 170), 0.04)
    p.ellipse(0.36, 0.6, 0.46, 0.72, (235, 160, 165))  # udder


def _draw_horse(p, rng, col):
    body = _jitter(rng, col, 16)
    dark = _shade(body, 0.45)
    p.line([(0.1, 0.35), (0.02, 0.7)], dark, 0.07)  # tail
    _legs(p, (0.18, 0.3, 0.62, 0.73), 0.45, 1.0, 0.07, body)
    for u in (0.18, 0.3, 0.62, 0.73):
        p.rect(u - 0.04, 0.93, u + 0.04, 1.0, DARK)  # hooves
    p.ellipse(0.08, 0.3, 0.8, 0.62, body)
    p.poly([(0.62, 0.38), (0.8, 0.05), (0.9, 0.12), (0.78, 0.45)], body)  # neck
    p.ellipse(0.76, 0.0, 1.0, 0.22, body)  # long head
    p.line([(0.68, 0.35), (0.8, 0.04)], dark, 0.04)  # mane
    _eye(p, 0.86, 0.07, 0.025)


def _draw_sheep(p, rng, col):
    wool = _jitter(rng, col, 10)
    _legs(p, (0.22, 0.34, 0.56, 0.68), 0.55, 1.0, 0.07, DARK)
    for _ in range(9):  # fluffy wool: many bumps
        u, v = rng.uniform(0.15, 0.68), rng.uniform(0.28, 0.6)
        p.ellipse(u - 0.13, v - 0.17, u + 0.13, v + 0.17, _shade(wool, rng.uniform(0.9, 1.05)))
    p.ellipse(0.7, 0.15, 0.96, 0.55, (35, 33, 35))  # black face
    p.ellipse(0.66, 0.18, 0.78, 0.3, (35, 33, 35))  # ear
    _eye(p, 0.86, 0.3, 0.03)


def _draw_car(p, rng, col):
    body = _jitter(rng, col, 20)
    p.poly([(0.2, 0.38), (0.32, 0.04), (0.7, 0.04), (0.82, 0.38)], body)  # cabin
    p.poly([(0.27, 0.38), (0.36, 0.12), (0.5, 0.12), (0.5, 0.38)], GLASS)
    p.poly([(0.53, 0.38), (0.53, 0.12), (0.67, 0.12), (0.76, 0.38)], GLASS)
    p.rect(0.0, 0.35, 1.0, 0.8, body, radius=0.3)
    p.rect(0.93, 0.45, 1.0, 0.55, (250, 240, 170))  # head light
    _wheels(p, [(0.22, 0.8), (0.78, 0.8)], 0.2)


def _draw_bus(p, rng, col):
    body = _jitter(rng, col, 15)
    p.rect(0.0, 0.02, 1.0, 0.84, body, outline=_shade(body, 0.6), radius=0.08)
    for i in range(6):  # a row of windows
        u = 0.05 + i * 0.145
        p.rect(u, 0.14, u + 0.11, 0.45, GLASS)
    p.rect(0.88, 0.14, 0.97, 0.72, (90, 120, 140))  # door
    p.rect(0.0, 0.58, 1.0, 0.63, _shade(body, 0.7))
    _wheels(p, [(0.18, 0.83), (0.78, 0.83)], 0.17)


def _draw_bicycle(p, rng, col):
    frame = _jitter(rng, col, 25)
    for u in (0.2, 0.8):  # wheels: dark tyres (rings) with a hub
        p.circle(u, 0.68, 0.31, None, outline=TYRE, width=p.width(0.08))
        p.circle(u, 0.68, 0.06, (170, 170, 175))
    w = 0.06
    p.line([(0.2, 0.68), (0.45, 0.68), (0.38, 0.3), (0.2, 0.68)], frame, w)
    p.line([(0.45, 0.68), (0.72, 0.3), (0.38, 0.3)], frame, w)
    p.line([(0.8, 0.68), (0.7, 0.12), (0.62, 0.08)], frame, w)  # fork + handlebar
    p.line([(0.38, 0.3), (0.36, 0.15)], frame, w)
    p.rect(0.27, 0.1, 0.45, 0.17, DARK, radius=0.4)  # saddle


def _draw_tractor(p, rng, col):
    body = _jitter(rng, col, 15)
    p.rect(0.38, 0.4, 0.97, 0.72, body, radius=0.15)  # hood
    p.rect(0.08, 0.05, 0.5, 0.66, body, outline=_shade(body, 0.6))  # cabin
    p.rect(0.14, 0.12, 0.44, 0.4, GLASS)
    p.rect(0.8, 0.12, 0.85, 0.42, DARK)  # exhaust pipe
    _wheels(p, [(0.28, 0.68), (0.82, 0.82)], [0.32, 0.18], hub=(240, 200, 30))


def _draw_refrigerator(p, rng, col):
    body = _jitter(rng, col, 8)
    _appliance_box(p, body, rng)
    p.line([(0.02, 0.36), (0.98, 0.36)], _shade(body, 0.5), 0.012)  # two doors
    _handle(p, 0.8, 0.1, 0.88, 0.3)
    _handle(p, 0.8, 0.42, 0.88, 0.7)
    p.rect(0.08, 0.05, 0.3, 0.08, (180, 200, 215))  # logo plate


def _draw_oven(p, rng, col):
    body = _jitter(rng, col, 10)
    _appliance_box(p, body, rng)
    p.rect(0.04, 0.03, 0.96, 0.18, _shade(body, 0.6))  # control panel
    for u in (0.15, 0.32, 0.68, 0.85):
        p.circle(u, 0.105, 0.045, (210, 210, 215))  # knobs
    _handle(p, 0.12, 0.24, 0.88, 0.29, (200, 200, 205))
    p.rect(0.12, 0.36, 0.88, 0.86, (120, 55, 20), outline=DARK)  # glowing window
    p.rect(0.2, 0.6, 0.8, 0.64, (230, 120, 40))


def _draw_microwave(p, rng, col):
    body = _jitter(rng, col, 10)
    _appliance_box(p, body, rng)
    p.rect(0.06, 0.14, 0.64, 0.86, (30, 32, 36))  # dark window
    p.rect(0.12, 0.22, 0.4, 0.45, (60, 62, 70))
    _handle(p, 0.67, 0.18, 0.71, 0.82)
    p.rect(0.75, 0.14, 0.95, 0.86, _shade(body, 0.8))  # keypad
    for i in range(3):
        for j in range(4):
            p.circle(0.8 + i * 0.05, 0.3 + j * 0.14, 0.035, (60, 60, 65))


def _draw_cup(p, rng, col):
    body = _jitter(rng, col, 30)
    p.ellipse(0.6, 0.3, 1.0, 0.8, None, outline=p.c(body), width=p.width(0.1))  # handle
    p.rect(0.05, 0.15, 0.75, 1.0, body, radius=0.2)
    _rim(p, 0.05, 0.75, 0.15, 0.12, body)


def _draw_bottle(p, rng, col):
    glass = _jitter(rng, col, 20)
    p.rect(0.05, 0.38, 0.95, 1.0, glass, radius=0.25)
    p.poly([(0.1, 0.42), (0.35, 0.22), (0.65, 0.22), (0.9, 0.42)], glass)
    p.rect(0.32, 0.06, 0.68, 0.3, glass)
    p.rect(0.05, 0.58, 0.95, 0.78, (240, 235, 220))  # label
    p.rect(0.3, 0.0, 0.7, 0.07, (200, 40, 40))  # cap
    _rim(p, 0.3, 0.7, 0.07, 0.03, glass)


def _draw_bowl(p, rng, col):
    body = _jitter(rng, col, 12)
    p.pie(0.0, -0.55, 1.0, 1.0, 0, 180, body)
    p.rect(0.35, 0.85, 0.65, 1.0, _shade(body, 0.8))  # foot
    _rim(p, 0.0, 1.0, 0.22, 0.2, body)


def _draw_tree(p, rng, col):
    p.rect(0.4, 0.45, 0.6, 1.0, _jitter(rng, (110, 70, 35), 15))  # trunk
    p.line([(0.5, 0.6), (0.3, 0.4)], (110, 70, 35), 0.04)
    _foliage(p, rng, 0.0, 0.0, 1.0, 0.68, _jitter(rng, col, 15), n=7)


def _draw_palm_tree(p, rng, col):
    trunk = _jitter(rng, (170, 130, 75), 15)
    bend = rng.uniform(-0.15, 0.15)
    pts = [(0.5 + bend * t * t, 1.0 - 0.82 * t) for t in np.linspace(0.0, 1.0, 6)]
    p.line(pts, trunk, 0.07, base="h")
    for (u, v) in pts[1:-1]:
        p.line([(u - 0.08, v), (u + 0.08, v)], _shade(trunk, 0.7), 0.015)  # trunk rings
    tu, tv = pts[-1]
    green = _jitter(rng, col, 15)
    for du, dv in ((-0.5, 0.15), (-0.35, -0.12), (0.0, -0.18), (0.35, -0.12), (0.5, 0.15), (-0.2, 0.25), (0.22, 0.25)):
        p.line([(tu, tv), (tu + du * 0.6, tv + dv - 0.05), (tu + du, tv + dv + 0.08)], green, 0.05)
    p.circle(tu - 0.04, tv + 0.04, 0.03, (90, 60, 30))  # coconuts
    p.circle(tu + 0.04, tv + 0.05, 0.03, (90, 60, 30))


def _draw_potted_plant(p, rng, col):
    green = _jitter(rng, col, 15)
    p.line([(0.5, 0.65), (0.5, 0.2)], (60, 110, 40), 0.04)  # stem
    p.line([(0.5, 0.5), (0.25, 0.3)], (60, 110, 40), 0.03)
    p.line([(0.5, 0.45), (0.75, 0.25)], (60, 110, 40), 0.03)
    _foliage(p, rng, 0.05, 0.0, 0.95, 0.6, green, n=5)
    p.poly([(0.15, 0.6), (0.85, 0.6), (0.72, 1.0), (0.28, 1.0)], _jitter(rng, (190, 90, 50), 12))  # pot
    p.rect(0.12, 0.58, 0.88, 0.66, (165, 75, 40))


def _draw_traffic_light(p, rng, col):
    _pole(p, 0.4, width=0.22)
    p.rect(0.0, 0.0, 1.0, 0.44, _jitter(rng, col, 8), radius=0.2)
    lit = rng.integers(3)
    for k, (colour, v) in enumerate((((230, 40, 30), 0.08), ((240, 200, 30), 0.22), ((40, 200, 70), 0.36))):
        p.circle(0.5, v, 0.055, colour if k == lit else _shade(colour, 0.45))


def _draw_stop_sign(p, rng, col):
    _pole(p, 0.3, width=0.12)
    red = _jitter(rng, col, 15)
    a = 0.29  # regular octagon in a square of side 1 (width) = 0.36 of the height
    side_v = 0.36
    pts = [(a, 0), (1 - a, 0), (1, a), (1, 1 - a), (1 - a, 1), (a, 1), (0, 1 - a), (0, a)]
    p.poly([(u, v * side_v) for u, v in pts], red, outline=(240, 240, 240))
    for k in range(4):  # four white letters: S T O P
        p.rect(0.17 + k * 0.175, 0.145, 0.3 + k * 0.175, 0.215, (245, 245, 245))


def _draw_street_lamp(p, rng, col):
    _pole(p, 0.08, u=0.2, width=0.1)
    dark = (60, 62, 68)
    p.line([(0.2, 0.1), (0.35, 0.0), (0.75, 0.02), (0.85, 0.1)], dark, 0.03)  # curved arm
    p.poly([(0.62, 0.1), (1.0, 0.1), (0.92, 0.2), (0.7, 0.2)], dark)  # lamp hood
    p.ellipse(0.68, 0.16, 0.94, 0.28, _jitter(rng, col, 10))  # glowing bulb


def _draw_boat(p, rng, col):
    hull = _jitter(rng, col, 10)
    p.rect(0.22, 0.12, 0.6, 0.5, (230, 230, 225), outline=(120, 120, 120))  # cabin
    for u in (0.27, 0.4, 0.5):
        p.rect(u, 0.2, u + 0.07, 0.34, (50, 80, 110))
    _hull(p, 0.48, 0.95, hull, stripe=(200, 40, 40))


def _draw_sailboat(p, rng, col):
    hull = _jitter(rng, col, 15)
    p.line([(0.48, 0.0), (0.48, 0.82)], (90, 60, 35), 0.02)  # mast
    p.poly([(0.46, 0.02), (0.46, 0.78), (0.06, 0.78)], (248, 248, 245), outline=(180, 180, 180))  # main sail
    p.poly([(0.52, 0.08), (0.52, 0.78), (0.88, 0.78)], (235, 235, 230), outline=(180, 180, 180))  # jib
    _hull(p, 0.8, 1.0, hull, stripe=(240, 240, 240))


def _draw_canoe(p, rng, col):
    hull = _jitter(rng, col, 12)
    p.line([(0.35, -0.05), (0.6, 0.9)], (120, 90, 50), 0.08)  # paddle
    _hull(p, 0.3, 1.0, hull)
    p.poly([(0.9, 0.25), (1.0, 0.0), (0.97, 0.3)], hull)  # upswept bow tip


_DRAWERS: dict[str, Callable] = {
    "person": _draw_person, "dog": _draw_dog, "cat": _draw_cat, "bird": _draw_bird, "cow": _draw_cow,
    "horse": _draw_horse, "sheep": _draw_sheep, "car": _draw_car, "bus": _draw_bus, "bicycle": _draw_bicycle,
    "tractor": _draw_tractor, "refrigerator": _draw_refrigerator, "oven": _draw_oven,
    "microwave": _draw_microwave, "cup": _draw_cup, "bottle": _draw_bottle, "bowl": _draw_bowl,
    "tree": _draw_tree, "palm tree": _draw_palm_tree, "potted plant": _draw_potted_plant,
    "traffic light": _draw_traffic_light, "stop sign": _draw_stop_sign, "street lamp": _draw_street_lamp,
    "boat": _draw_boat, "sailboat": _draw_sailboat, "canoe": _draw_canoe,
}
assert set(_DRAWERS) == set(CLASS_NAMES)


# --------------------------------------------------------------------------------------------
# Backgrounds and clutter
# --------------------------------------------------------------------------------------------
def _gradient(canvas: np.ndarray, y0: int, y1: int, top, bottom):
    if y1 <= y0:
        return
    t = np.linspace(0.0, 1.0, y1 - y0, dtype=np.float32)[:, None, None]
    canvas[y0:y1] = (np.asarray(top, np.float32) * (1 - t) + np.asarray(bottom, np.float32) * t)


def _background(theme: str, size: int, rng: np.random.Generator) -> tuple[Image.Image, tuple, float]:
    """The theme's backdrop at canvas size; returns (image, ground colour, horizon fraction)."""
    horizon = _HORIZONS[theme] + rng.uniform(-0.05, 0.05)
    hy = int(horizon * size)
    canvas = np.empty((size, size, 3), np.float32)
    j = lambda c, a=12: _jitter(rng, c, a)  # noqa: E731
    if theme == "street":
        _gradient(canvas, 0, hy, j((150, 185, 225)), j((200, 215, 230)))
        _gradient(canvas, hy, size, j((120, 120, 125)), j((80, 80, 86)))
        ground = (95, 95, 100)
    elif theme == "kitchen":
        _gradient(canvas, 0, hy, j((230, 215, 185)), j((215, 200, 170)))
        _gradient(canvas, hy, size, j((160, 115, 80)), j((130, 90, 60)))
        ground = (215, 200, 170)
    elif theme == "farm":
        _gradient(canvas, 0, hy, j((130, 185, 235)), j((190, 220, 240)))
        _gradient(canvas, hy, size, j((120, 175, 80)), j((85, 150, 55)))
        ground = (100, 160, 70)
    else:  # seaside
        sea = int((horizon + 0.32) * size)
        _gradient(canvas, 0, hy, j((120, 185, 240)), j((185, 220, 245)))
        _gradient(canvas, hy, sea, j((40, 100, 160)), j((60, 140, 185)))
        _gradient(canvas, sea, size, j((230, 210, 160)), j((215, 190, 140)))
        ground = (50, 120, 175)
    image = Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    s = size
    if theme == "street":
        x = 0
        while x < s:  # building silhouettes on the horizon
            w = int(rng.uniform(0.1, 0.22) * s)
            top = int(hy - rng.uniform(0.1, 0.3) * s)
            grey = int(rng.integers(120, 180))
            draw.rectangle([x, top, x + w, hy], fill=(grey, grey - 5, grey - 10))
            for wy in range(top + s // 40, hy - s // 40, max(2, s // 16)):
                for wx in range(x + s // 50, x + w - s // 40, max(2, s // 18)):
                    draw.rectangle([wx, wy, wx + s // 50, wy + s // 50], fill=(210, 215, 170))
            x += w + int(rng.uniform(0.0, 0.05) * s)
        draw.rectangle([0, hy, s, hy + s // 14], fill=j((175, 175, 170)))  # sidewalk
        lane = int((horizon + 1) / 2 * s + s * 0.05)
        for x in range(int(rng.uniform(0, 0.15) * s), s, s // 5):
            draw.rectangle([x, lane, x + s // 10, lane + max(1, s // 60)], fill=(235, 235, 225))
    elif theme == "kitchen":
        step = max(4, s // 10)
        for y in range(0, hy, step):  # wall tiles
            draw.line([(0, y), (s, y)], fill=(200, 185, 160), width=max(1, s // 200))
        for x in range(int(rng.uniform(0, step)), s, step):
            draw.line([(x, 0), (x, hy)], fill=(200, 185, 160), width=max(1, s // 200))
        draw.rectangle([0, hy - s // 40, s, hy + s // 60], fill=j((110, 80, 55)))  # counter edge
        for y in range(hy + s // 12, s, s // 9):
            draw.line([(0, y), (s, y)], fill=(115, 80, 55), width=max(1, s // 200))  # planks
    elif theme == "farm":
        for _ in range(2):  # hills
            cx, r = rng.uniform(0, 1) * s, rng.uniform(0.3, 0.6) * s
            draw.ellipse([cx - r, hy - r * 0.35, cx + r, hy + r * 0.35], fill=j((100, 160, 75)))
        fy = int((horizon + 0.1) * s)
        fence = (150, 110, 70)
        draw.line([(0, fy), (s, fy)], fill=fence, width=max(1, s // 90))
        draw.line([(0, fy + s // 30), (s, fy + s // 30)], fill=fence, width=max(1, s // 90))
        for x in range(int(rng.uniform(0, 0.1) * s), s, s // 8):
            draw.line([(x, fy - s // 40), (x, fy + s // 20)], fill=fence, width=max(1, s // 70))
    else:
        cx, cy, r = rng.uniform(0.1, 0.9) * s, rng.uniform(0.05, 0.2) * s, 0.06 * s
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=(255, 240, 170))  # sun
        sea = int((horizon + 0.32) * s)
        for _ in range(10):  # waves
            x, y = rng.uniform(0, 1) * s, rng.uniform(hy, sea)
            draw.arc([x, y, x + s * 0.08, y + s * 0.03], 200, 340, fill=(170, 210, 235), width=max(1, s // 120))
    return image, ground, horizon


def _clutter(draw: ImageDraw.ImageDraw, size: int, rng: np.random.Generator, mean: float):
    """Random strokes and blobs in muted colours: background clutter that is no class."""
    for _ in range(int(rng.poisson(mean))):
        colour = tuple(int(c) for c in rng.integers(60, 200, 3))
        x, y = rng.uniform(0, size, 2)
        r = rng.uniform(0.015, 0.07) * size
        if rng.random() < 0.5:
            x2, y2 = x + rng.normal(0, 0.12 * size), y + rng.normal(0, 0.12 * size)
            draw.line([(x, y), (x2, y2)], fill=colour, width=max(1, int(rng.uniform(0.004, 0.015) * size)))
        else:
            draw.ellipse([x - r, y - r * rng.uniform(0.4, 1.0), x + r, y + r], fill=colour)


# --------------------------------------------------------------------------------------------
# Composing one image
# --------------------------------------------------------------------------------------------
_THEME_INDEX = {t.name: i for i, t in enumerate(THEMES)}


def _sample_labels(rng: np.random.Generator, config: SceneConfig) -> tuple[list[str], list[int]]:
    """Draw the image's theme(s) and the classes it will contain (before placement)."""
    first = int(rng.integers(len(THEMES)))
    themes = [first]
    if rng.random() < config.two_theme_rate:
        second = int(rng.integers(len(THEMES) - 1))
        themes.append(second + (second >= first))
    factor = 0.75 if len(themes) == 2 else 1.0
    present: set[str] = set()
    for t in themes:
        for name, prob in THEMES[t].probabilities.items():
            if rng.random() < prob * factor:
                present.add(name)
    if not present:  # every image holds at least one object: the theme's most likely non-hub class
        probs = THEMES[first].probabilities
        present.add(max((n for n in probs if n not in HUB_CLASSES), key=lambda n: probs[n]))
    in_theme = set().union(*(THEMES[t].probabilities for t in themes))
    off_theme = [n for n in CLASS_NAMES if n not in in_theme]
    n_noise = min(int(rng.poisson(config.noise_rate)), 2)
    if n_noise and off_theme:
        for k in rng.choice(len(off_theme), size=min(n_noise, len(off_theme)), replace=False):
            present.add(off_theme[int(k)])
    ordered = [n for n in CLASS_NAMES if n in present]  # canonical order: deterministic
    return [THEMES[t].name for t in themes], [CLASS_INDEX[n] for n in ordered]


def _place(rng, cls: SceneClass, size: int, placed: list, max_overlap: float, relax: bool = False):
    """A box for one instance of ``cls`` that covers at most ``max_overlap`` of any placed box."""
    lo, hi = cls.anchor
    for _ in range(25):
        bottom = rng.uniform(lo, hi)
        depth = (bottom - lo) / max(hi - lo, 1e-6)  # 0 = far (high in the image), 1 = near
        h = cls.height * (0.75 + 0.45 * depth) * rng.uniform(0.85, 1.15) * size
        w = h * cls.aspect * rng.uniform(0.9, 1.1)
        if w > 0.95 * size:
            h, w = h * 0.95 * size / w, 0.95 * size
        h = min(h, 0.95 * size)
        w, h = max(w, 3.0), max(h, 3.0)
        y1 = min(bottom * size, float(size))
        y0 = y1 - h
        if y0 < 0:
            y0, y1 = 0.0, h
        x0 = rng.uniform(0, size - w)
        box = (x0, y0, x0 + w, y1)
        if relax or all(_overlap_ok(box, other[1], max_overlap) for other in placed):
            return box
    return None


def _overlap_ok(a, b, max_overlap: float) -> bool:
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return True
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return iw * ih <= max_overlap * smaller


def _supersample(image_size: int) -> int:
    return max(2, math.ceil(128 / image_size))


def render_scene(rng: np.random.Generator, config: SceneConfig) -> tuple[Image.Image, dict]:
    """Compose one image: returns the PIL image and its annotation (labels, boxes, themes)."""
    size = config.image_size
    ss = _supersample(size)
    canvas = size * ss
    themes, label_ids = _sample_labels(rng, config)

    # Instances of every present class; placement in a shuffled order so no class always wins.
    instances = []
    for c in label_ids:
        cls = CLASSES[c]
        extra = rng.binomial(cls.max_instances - 1, 0.35) if cls.max_instances > 1 else 0
        instances += [c] * (1 + int(extra))
    instances = instances[: config.max_objects]
    order = rng.permutation(len(instances))
    placed: list[tuple[int, tuple]] = []
    for k in order:
        c = instances[int(k)]
        first_of_class = all(pc != c for pc, _ in placed)
        box = _place(rng, CLASSES[c], size, placed, config.max_overlap)
        if box is None and first_of_class:
            box = _place(rng, CLASSES[c], size, placed, min(0.8, config.max_overlap + 0.3))
        if box is not None:
            placed.append((c, box))
    if not placed:  # cannot happen with the default knobs; keep the invariant anyway
        placed.append((label_ids[0], _place(rng, CLASSES[label_ids[0]], size, [], 1.0, relax=True)))

    image, ground, _ = _background(themes[0], canvas, rng)
    draw = ImageDraw.Draw(image)
    _clutter(draw, canvas, rng, config.clutter)
    # Painter's algorithm: objects lower in the image are nearer and occlude farther ones.
    placed.sort(key=lambda item: (item[1][3], item[0]))
    boxes = []
    for c, (x0, y0, x1, y1) in placed:
        cls = CLASSES[c]
        fade = cls.fade * rng.uniform(0.6, 1.2) if cls.fade else rng.uniform(0.0, 0.08)
        painter = _Painter(draw, (x0 * ss, y0 * ss, x1 * ss, y1 * ss), flip=bool(rng.random() < 0.5),
                           fade=fade, background=ground)
        _DRAWERS[cls.name](painter, rng, cls.colour)
        bx0, by0 = max(0, int(math.floor(x0))), max(0, int(math.floor(y0)))
        bx1, by1 = min(size, int(math.ceil(x1))), min(size, int(math.ceil(y1)))
        boxes.append([c, bx0, by0, max(bx1, bx0 + 1), max(by1, by0 + 1)])
    if rng.random() < 0.5:  # a little foreground clutter too (leaves, litter) over the objects
        _clutter(draw, canvas, rng, config.clutter / 4)
    if ss > 1:
        image = image.resize((size, size), Image.Resampling.BOX)
    if config.pixel_noise > 0:
        array = np.asarray(image, dtype=np.int16)
        noise = rng.normal(0.0, config.pixel_noise, array.shape).round().astype(np.int16)
        image = Image.fromarray(np.clip(array + noise, 0, 255).astype(np.uint8))
    labels = sorted({b[0] for b in boxes})
    return image, {"labels": labels, "boxes": boxes, "themes": themes}


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


# --------------------------------------------------------------------------------------------
# Generation, cache, loading
# --------------------------------------------------------------------------------------------
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
        meta = read_json(root / "annotations.json", "regenerate the dataset (python -m msrn_core.scenes --force)")
        return root, SceneConfig.from_dict(meta["config"])
    config = config or SceneConfig()
    return dataset_dir(root, config), config


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
                f"`python -m msrn_core.data.scenes --root {Path(root)} --image-size {config.image_size} "
                f"--seed {config.seed}`, or call load_scenes(..., generate=True)."
            )
        generate_scenes(config, root=folder.parent)
    meta = read_json(annotations, "regenerate the dataset (python -m msrn_core.scenes --force)")
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


# --------------------------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------------------------
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


def _conditional_probabilities(labels: np.ndarray) -> np.ndarray:
    """``P[i, j] = P(j | i) = count(i and j) / count(i)`` (diagonal 0), as ML-GCN defines it."""
    labels = np.asarray(labels, dtype=np.float64)
    counts = labels.T @ labels
    nums = np.diag(counts).copy()
    np.fill_diagonal(counts, 0)
    return counts / np.maximum(nums, 1)[:, None]


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------
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
    probs = _conditional_probabilities(train.labels)
    edges = probs >= 0.4
    same = np.array([[bool(set(a) & set(b)) for b in train.class_themes] for a in train.class_themes])
    np.fill_diagonal(same, False)
    lines.append(f"co-occurrence edges at t=0.4: {int(edges.sum())} "
                 f"({int((edges & same).sum())} within a theme, {int((edges & ~same).sum())} across)")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Generate the synthetic multi-label scene dataset.")
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
    from ..running.cli import run_cli

    return run_cli(main, argv)


if __name__ == "__main__":
    sys.exit(cli())

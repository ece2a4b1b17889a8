"""The scene grammar: the labels (classes and their families), the themes that compose them, and
the sampling of one image's labels from its theme(s).

Within a theme every class appears with probability 0.5-0.65, so ``P(j | i)`` between two classes
of one theme is above the paper's ``t = 0.4``; ``person`` is in every theme (the hub), ``dog``
and ``bird`` in two (bridges); a few off-theme objects are sprinkled in.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .config import SceneConfig


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

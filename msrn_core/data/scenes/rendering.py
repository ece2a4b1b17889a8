"""Composing one image: the theme's backdrop, clutter, the objects in painter's order (nearer ones
occlude farther ones), supersampling and pixel noise; the boxes in pixels of the saved image."""
from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from .boxes import _place
from .config import SceneConfig
from .grammar import CLASSES, THEMES, _sample_labels
from .objects import _DRAWERS
from .painter import _jitter, _Painter

_HORIZONS = {theme.name: theme.horizon for theme in THEMES}


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

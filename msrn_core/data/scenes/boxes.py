"""Where an object goes: a box at a random position and scale (lower in the image = nearer =
larger) that covers at most ``max_overlap`` of the smaller of two boxes."""
from __future__ import annotations

from .grammar import SceneClass


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

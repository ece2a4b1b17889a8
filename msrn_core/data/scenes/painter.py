"""Drawing one object: a painter working in the unit box of the object, and the parts that the
classes of one family share (wheels, legs, rims, foliage, poles, hulls)."""
from __future__ import annotations

import numpy as np
from PIL import ImageDraw


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

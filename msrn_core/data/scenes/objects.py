"""One drawing function per class: the family's shared parts plus a class-specific one, in the
class's colour, texture and proportions (appearance follows meaning)."""
from __future__ import annotations

from typing import Callable

import numpy as np

from .grammar import CLASS_NAMES
from .painter import (DARK, GLASS, SKIN, TYRE, _appliance_box, _eye, _foliage, _handle, _hull, _jitter, _legs,
                      _pole, _rim, _shade, _wheels)


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

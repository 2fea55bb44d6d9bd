"""Scene layouts: where the road, buildings, plants, poles and vehicles are, and what colour they are.

A layout is drawn from the scene seed alone, so both domains render the same scene. World coordinates
in metres: X to the right, Y up from the ground, Z forward from the camera, which sits at
``(0, CAMERA_HEIGHT, 0)`` looking along +Z.
Every object carries a source colour and a target colour; the renderer blends them by the shift.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from ..constants import FAR_DEPTH

ROAD, BUILDING, POLE, LIGHT, SIGN, VEGETATION, TERRAIN, SKY, CAR, TRUCK = range(10)
CAMERA_HEIGHT = 1.65
LANE_WIDTH = 3.5

# Source: saturated "game" colours. Target: the colours such things have in photographs.
SOURCE_PALETTE = {
    "car": [(200, 30, 30), (30, 60, 200), (230, 200, 40), (40, 160, 60), (240, 240, 240), (230, 120, 20)],
    "building": [(215, 190, 150), (190, 190, 200), (225, 170, 130), (170, 200, 210)],
    "leaf": [(40, 170, 40), (60, 190, 60)],
    "truck": [(240, 240, 240), (200, 40, 40), (40, 90, 190)],
}
TARGET_PALETTE = {
    "car": [(50, 52, 58), (150, 150, 155), (200, 200, 198), (90, 30, 30), (35, 45, 70), (120, 110, 95)],
    "building": [(140, 80, 60), (120, 115, 110), (170, 150, 120), (95, 90, 85)],
    "leaf": [(95, 105, 45), (120, 115, 50), (70, 90, 40)],
    "truck": [(180, 180, 175), (120, 50, 40), (60, 70, 85)],
}


@dataclass
class Box:
    """An axis-aligned box ``[x0, x1] × [y0, y1] × [z0, z1]``; ``pattern`` names surface detail."""

    cls: int
    x0: float
    x1: float
    y0: float
    y1: float
    z0: float
    z1: float
    src: tuple
    tgt: tuple
    pattern: str = ""
    params: tuple = ()


@dataclass
class Sphere:
    """A sphere (a tree crown or a bush) centred at ``(x, y, z)``."""

    cls: int
    x: float
    y: float
    z: float
    r: float
    src: tuple
    tgt: tuple


@dataclass
class Plate:
    """A flat shape facing the camera at depth ``z`` (a sign face): centre ``(x, y)``, size ``w × h``."""

    cls: int
    x: float
    y: float
    z: float
    w: float
    h: float
    shape: str
    src: tuple
    tgt: tuple


@dataclass
class Scene:
    road: tuple[float, float]            # X extent of the road
    lanes: tuple[float, ...]             # X of dashed lane markings
    kind: str                            # "urban", "suburban" or "rural"
    sun: tuple[float, float, float]      # unit vector towards the sun (target lighting)
    ground_src: dict = field(default_factory=dict)
    ground_tgt: dict = field(default_factory=dict)
    objects: list = field(default_factory=list)
    grade: tuple = ()                    # target colour grading draws: gains (3), saturation, contrast, gamma


def _jitter(rng: random.Random, color, amount: float) -> tuple:
    return tuple(min(max(c + rng.uniform(-amount, amount), 0.0), 255.0) for c in color)


def _pick(rng: random.Random, key: str) -> tuple[tuple, tuple]:
    """One object's colour in the source and in the target domain (independent draws, same stream)."""
    src = SOURCE_PALETTE[key][rng.randrange(len(SOURCE_PALETTE[key]))]
    tgt = TARGET_PALETTE[key][rng.randrange(len(TARGET_PALETTE[key]))]
    return _jitter(rng, src, 8), _jitter(rng, tgt, 18)


def _vehicle(rng: random.Random, x: float, z: float, truck: bool) -> list:
    """A car or truck with its rear at depth ``z``, centred at lateral ``x``."""
    if truck:
        src, tgt = _pick(rng, "truck")
        cls, w, length, h = TRUCK, 2.5, rng.uniform(7, 10), rng.uniform(3.2, 3.9)
        parts = [Box(cls, x - w / 2, x + w / 2, 0.6, h, z, z + length - 2.2, src, tgt),
                 Box(cls, x - w / 2 + 0.05, x + w / 2 - 0.05, 0.45, 2.9, z + length - 2.1, z + length, src, tgt)]
        axles = (z + 1.2, z + length - 1.6)
    else:
        src, tgt = _pick(rng, "car")
        cls, w, length = CAR, rng.uniform(1.7, 1.9), rng.uniform(3.9, 4.7)
        roof = rng.uniform(1.35, 1.55)
        parts = [Box(cls, x - w / 2, x + w / 2, 0.3, 0.95, z, z + length, src, tgt, "rear"),
                 Box(cls, x - w / 2 + 0.1, x + w / 2 - 0.1, 0.95, roof, z + 0.9, z + length - 1.0, src, tgt,
                     "glass")]
        axles = (z + 0.8, z + length - 0.8)
    dark = (25.0, 25.0, 25.0)
    for a in axles:
        parts.append(Box(cls, x - w / 2 - 0.02, x + w / 2 + 0.02, 0.0, 0.62, a - 0.33, a + 0.33, dark, dark))
    return parts


def _tree(rng: random.Random, x: float, z: float, big: bool) -> list:
    src, tgt = _pick(rng, "leaf")
    trunk_h = rng.uniform(1.5, 3.0) if big else rng.uniform(0.3, 0.8)
    r = rng.uniform(1.6, 3.2) if big else rng.uniform(0.6, 1.1)
    bark_s, bark_t = (110.0, 70.0, 30.0), (70.0, 60.0, 50.0)
    out = [Box(VEGETATION, x - 0.18, x + 0.18, 0.0, trunk_h + r * 0.5, z - 0.18, z + 0.18, bark_s, bark_t)]
    out.append(Sphere(VEGETATION, x, trunk_h + r * 0.8, z, r, src, tgt))
    if big and rng.random() < 0.6:  # a second lobe makes crowns less regular
        out.append(Sphere(VEGETATION, x + rng.uniform(-1, 1), trunk_h + r * rng.uniform(1.1, 1.5),
                          z + rng.uniform(-0.5, 0.5), r * rng.uniform(0.55, 0.8), src, tgt))
    return out


def _pole(rng: random.Random, x: float, z: float, side: int) -> list:
    """A pole carrying a traffic sign or a traffic light (sometimes on an arm over the road)."""
    grey_s, grey_t = (150.0, 150.0, 160.0), (105.0, 105.0, 100.0)
    h = rng.uniform(3.5, 6.5)
    out = [Box(POLE, x - 0.07, x + 0.07, 0.0, h, z - 0.07, z + 0.07, grey_s, grey_t)]
    u = rng.random()
    if u < 0.5:  # traffic sign
        shape = ("circle", "triangle", "rect", "diamond")[rng.randrange(4)]
        size = rng.uniform(0.6, 0.9)
        sy = min(h - size / 2, rng.uniform(2.2, 3.0))
        colors = {"circle": ((230, 30, 30), (170, 40, 40)), "triangle": ((250, 250, 250), (210, 205, 190)),
                  "rect": ((30, 90, 220), (40, 70, 140)), "diamond": ((250, 210, 0), (200, 170, 40))}[shape]
        out.append(Plate(SIGN, x - side * 0.1, sy, z - 0.1, size, size, shape, *colors))
    else:  # traffic light, on the pole or hanging over the road from an arm
        black_s, black_t = (40.0, 40.0, 40.0), (30.0, 32.0, 30.0)
        lx = x
        if u > 0.8:
            arm = rng.uniform(3.0, 5.0)
            lx = x - side * arm
            out.append(Box(POLE, min(x, lx), max(x, lx), h - 0.15, h - 0.02, z - 0.06, z + 0.06, grey_s, grey_t))
            top = h - 0.1
        else:
            top = h
        out.append(Box(LIGHT, lx - 0.18, lx + 0.18, top - 1.0, top, z - 0.35, z - 0.07, black_s, black_t, "lamps",
                       (int(rng.randrange(3)),)))
    return out


def make_scene(seed: int) -> Scene:
    """The layout of scene ``seed`` (any non-negative int)."""
    # Python's Mersenne Twister: reproducible on every platform, and ~10× cheaper per scalar draw than
    # numpy's Generator, which matters for a layout of ~100 objects rendered hundreds of times a second.
    rng = random.Random(seed)
    kind = rng.choices(("urban", "suburban", "rural"), weights=(0.4, 0.35, 0.25))[0]
    lanes = rng.randrange(2, 5)
    ego = rng.randrange(lanes)
    left = -(ego + 0.5) * LANE_WIDTH + rng.uniform(-0.4, 0.4)
    right = left + lanes * LANE_WIDTH
    sun_az, sun_el = rng.uniform(-1.2, 1.2), rng.uniform(0.3, 1.0)
    sun = (math.sin(sun_az) * math.cos(sun_el), math.sin(sun_el), math.cos(sun_az) * math.cos(sun_el))
    scene = Scene(road=(left, right), lanes=tuple(left + LANE_WIDTH * i for i in range(1, lanes)), kind=kind,
                  sun=sun)
    asphalt = rng.uniform(95, 125)
    scene.ground_src = {"road": (asphalt, asphalt, asphalt + 10), "marking": (245.0, 245.0, 245.0),
                        "terrain": _jitter(rng, (90, 200, 70), 10), "sky": (110.0, 170.0, 250.0)}
    asphalt_t = rng.uniform(60, 95)
    scene.ground_tgt = {"road": (asphalt_t + 4, asphalt_t + 2, asphalt_t), "marking": (200.0, 198.0, 185.0),
                        "terrain": _jitter(rng, (150, 140, 80), 20), "sky": _jitter(rng, (185, 200, 215), 15)}
    scene.grade = (rng.uniform(1.0, 1.15), rng.uniform(0.95, 1.05), rng.uniform(0.78, 0.92),
                   rng.uniform(0.55, 0.8), rng.uniform(0.8, 0.95), rng.uniform(1.05, 1.25))
    objs = scene.objects
    p_building = {"urban": 0.85, "suburban": 0.5, "rural": 0.08}[kind]
    p_tree = {"urban": 0.25, "suburban": 0.55, "rural": 0.8}[kind]
    for side, edge in ((-1, left), (1, right)):
        verge = rng.uniform(1.5, 6.0)
        # Buildings: a row of facades set back from the verge, with gaps.
        z = rng.uniform(2, 10)
        setback = edge + side * (verge + rng.uniform(0.5, 4))
        while z < FAR_DEPTH - 5:
            length = rng.uniform(8, 25)
            if rng.random() < p_building:
                src, tgt = _pick(rng, "building")
                depth = rng.uniform(10, 20)
                xa = setback + side * rng.uniform(0, 1.5)
                xb = xa + side * depth
                objs.append(Box(BUILDING, min(xa, xb), max(xa, xb), 0.0, rng.uniform(5, 20), z, z + length, src, tgt,
                                "windows", (rng.uniform(2.5, 4.0), rng.uniform(2.8, 3.5), rng.uniform(0.35, 0.6))))
            z += length + rng.uniform(0, 6)
        # Trees and bushes on the verge, hedges along it.
        z = rng.uniform(3, 12)
        while z < FAR_DEPTH - 5:
            if rng.random() < p_tree:
                objs += _tree(rng, edge + side * rng.uniform(1.0, verge + 1.5), z, big=rng.random() < 0.7)
            z += rng.uniform(4, 14)
        if rng.random() < (0.6 if kind != "urban" else 0.2):
            z0 = rng.uniform(3, 30)
            src, tgt = _pick(rng, "leaf")
            xh = edge + side * rng.uniform(verge * 0.5, verge)
            objs.append(Box(VEGETATION, xh - 0.5, xh + 0.5, 0.0, rng.uniform(0.8, 1.8), z0, z0 + rng.uniform(8, 30),
                            src, tgt))
        # Poles with signs and traffic lights just off the road.
        z = rng.uniform(6, 20)
        while z < 60:
            objs += _pole(rng, edge + side * rng.uniform(0.4, 1.2), z, side)
            z += rng.uniform(10, 30)
        # Parked cars along the kerb.
        if kind != "rural" and rng.random() < 0.5:
            z = rng.uniform(4, 15)
            while z < 50:
                objs += _vehicle(rng, edge - side * 1.1, z, truck=False)
                z += rng.uniform(5.5, 14)
    # Traffic in the lanes: ahead in ours and the others.
    for lane in range(lanes):
        if lane == ego and rng.random() < 0.3:
            continue
        z = rng.uniform(6, 25) if lane == ego else rng.uniform(2, 20)
        x = left + (lane + 0.5) * LANE_WIDTH + rng.uniform(-0.3, 0.3)
        while z < 70:
            truck = rng.random() < 0.18
            objs += _vehicle(rng, x, z, truck)
            z += rng.uniform(12, 35)
    # The far background: a tree line or a skyline closing the view near the horizon.
    for x in range(-80, 80, 6):
        if rng.random() < (0.7 if kind == "rural" else 0.4):
            src, tgt = _pick(rng, "leaf")
            objs.append(Sphere(VEGETATION, float(x + rng.uniform(-2, 2)), rng.uniform(1, 4), rng.uniform(74, 79),
                               rng.uniform(3, 6), src, tgt))
    return scene

"""Render a scene layout into an image, a class map and a metric depth map (z-buffered)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import kernels
from .effects import SHADOW_DARKNESS, finish, shadow_rects
from .scene import CAMERA_HEIGHT, FAR_DEPTH, ROAD, SKY, TERRAIN, Box, Plate, Scene, Sphere, make_scene
from .shift import Shift

FOCAL = 0.58     # focal length as a fraction of the image width (KITTI's camera: 721 px / 1242 px)
HORIZON = 0.46   # principal point row as a fraction of the image height

# Shading per face (front, -X, +X, top, bottom): flat in the source domain; in the target, Lambert
# shading from the scene's sun.
_NORMALS = np.array([(0, 0, -1), (-1, 0, 0), (1, 0, 0), (0, 1, 0), (0, -1, 0)], np.float64)
_SOURCE_SHADE = np.array([1.0, 0.82, 0.82, 1.12, 0.6])
# Window, car glass and tail-light colours: (source, target).
_PATTERN_RGB = np.array([[(70, 110, 160), (60, 80, 110), (230, 20, 20)],
                         [(40, 45, 52), (28, 32, 40), (140, 20, 15)]], np.float64)
_LAMPS = np.array([(255, 40, 30), (255, 200, 0), (40, 230, 80)], np.float64)
_PATTERNS = {"": kernels.NO_PATTERN, "windows": kernels.WINDOWS, "glass": kernels.GLASS, "rear": kernels.REAR,
             "lamps": kernels.LAMPS}
_SHAPES = {"circle": kernels.CIRCLE, "rect": kernels.RECT, "diamond": kernels.DIAMOND, "triangle": kernels.TRIANGLE}


@dataclass(frozen=True)
class Sample:
    """One rendered view: ``image`` H×W×3 uint8, ``labels`` H×W uint8 (class index), ``depth`` H×W float32
    metres along the optical axis (``FAR_DEPTH`` for sky and beyond)."""

    image: np.ndarray
    labels: np.ndarray
    depth: np.ndarray


def _mix(src, tgt, appearance: float) -> np.ndarray:
    """Colours blended from source toward target by the appearance shift (clipped to 0..255)."""
    src, tgt = np.asarray(src, np.float64), np.asarray(tgt, np.float64)
    return np.clip(src + appearance * (tgt - src), 0, 255)


def _table(scene: Scene, appearance: float) -> np.ndarray:
    """The scene's objects as an N×15 primitive table (see ``kernels``), colours already blended."""
    rows = []
    for o in scene.objects:
        if isinstance(o, Box):
            params = (tuple(o.params) + (0.0, 0.0, 0.0))[:3]
            rows.append((kernels.BOX, o.cls, o.x0, o.x1, o.y0, o.y1, o.z0, o.z1, 0, 0, 0, _PATTERNS[o.pattern], *params))
        elif isinstance(o, Sphere):
            rows.append((kernels.SPHERE, o.cls, o.x, o.y, o.z, o.r, 0, 0, 0, 0, 0, 0, 0, 0, 0))
        else:
            assert isinstance(o, Plate)
            rows.append((kernels.PLATE, o.cls, o.x, o.y, o.z, o.w, o.h, _SHAPES[o.shape], 0, 0, 0, 0, 0, 0, 0))
    table = np.array(rows, np.float64).reshape(-1, 15)
    table[:, 8:11] = _mix([o.src for o in scene.objects], [o.tgt for o in scene.objects], appearance).reshape(-1, 3)
    return table


def render(seed: int, domain: str = "source", height: int = 128, width: int = 384, shift: Shift = Shift()) -> Sample:
    """Render scene ``seed`` in ``domain`` ("source": flat game-like shading; "target": the shifted,
    photograph-like domain). The same seed gives the same layout, labels and depth in both domains."""
    if domain not in ("source", "target"):
        raise ValueError(f"domain must be 'source' or 'target', got {domain!r}")
    if not (isinstance(height, (int, np.integer)) and isinstance(width, (int, np.integer))
            and 8 <= height <= 2048 and 8 <= width <= 4096):
        raise ValueError(f"image size must be integers with 8 <= height <= 2048 and 8 <= width <= 4096, "
                         f"got {height}×{width}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**63:
        raise ValueError(f"seed must be an integer in [0, 2^63), got {seed!r}")
    if not isinstance(shift, Shift):
        raise TypeError(f"shift must be a gioada.sim.Shift, got {type(shift).__name__}")
    scene = make_scene(int(seed))
    target = domain == "target"
    appearance = shift.level("appearance") if target else 0.0
    lighting = shift.level("lighting") if target else 0.0

    # 1. Camera: per-pixel ray slopes.
    f, cx, cy = FOCAL * width, width / 2, HORIZON * height
    xn = (np.arange(width) + 0.5 - cx) / f     # W: X / Z
    yn = (np.arange(height) + 0.5 - cy) / f    # H: (camera height - Y) / Z
    depth = np.empty((height, width), np.float32)
    labels = np.empty((height, width), np.uint8)
    color = np.empty((height, width, 3), np.float32)

    # 2. Ground (with cast shadows in the lit target) and sky.
    g_src, g_tgt = scene.ground_src, scene.ground_tgt
    names = ("road", "marking", "terrain", "sky")
    ground_rgb = np.vstack([_mix([g_src[n] for n in names], [g_tgt[n] for n in names], appearance),
                            [[225.0, 235.0, 245.0]]])
    shadows = shadow_rects(scene) if lighting > 0 else np.zeros((0, 4))
    kernels.ground_and_sky(xn, yn, CAMERA_HEIGHT, FAR_DEPTH, np.array(scene.road), np.array(scene.lanes, np.float64),
                           ground_rgb, shadows, 1 - SHADOW_DARKNESS * min(lighting, 1.5), ROAD, TERRAIN, SKY,
                           depth, labels, color)

    # 3. Objects, z-buffered, shaded flat (source) or by the sun (target).
    target_shade = 0.5 + 0.7 * np.maximum(_NORMALS @ np.array(scene.sun), 0)
    face_shade = _SOURCE_SHADE + lighting * (target_shade - _SOURCE_SHADE)
    pattern_rgb = _mix(_PATTERN_RGB[0], _PATTERN_RGB[1], appearance)
    kernels.rasterise(_table(scene, appearance), xn, yn, f, cx, cy, CAMERA_HEIGHT, depth, labels, color, face_shade,
                      np.array(scene.sun), lighting, pattern_rgb, _LAMPS)

    # 4. The target's surface, atmosphere and camera.
    image = finish(color, labels, depth, scene, shift if target else None, int(seed) % 2**32)
    return Sample(image, labels, depth)

"""Rasterise a scene layout into an image, a class map and a metric depth map (z-buffered)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .effects import apply_camera_effects, cast_shadows, jpeg, texture
from .scene import CAMERA_HEIGHT, FAR_DEPTH, ROAD, SKY, TERRAIN, Box, Plate, Scene, Sphere, make_scene
from .shift import Shift

NEAR = 0.5
FOCAL = 0.58       # focal length as a fraction of the image width (KITTI's camera: 721 px / 1242 px)
HORIZON = 0.46     # principal point row as a fraction of the image height

# Per-face shading in the source domain (flat, game-like): front (-Z), left (-X), right (+X), top, bottom.
_FACES = ("front", "left", "right", "top", "bottom")
_NORMALS = np.array([(0, 0, -1), (-1, 0, 0), (1, 0, 0), (0, 1, 0), (0, -1, 0)], np.float32)
_SOURCE_SHADE = np.array([1.0, 0.82, 0.82, 1.12, 0.6], np.float32)
_SOURCE_LIGHT = np.array([0.3, 0.8, -0.5], np.float32) / np.linalg.norm([0.3, 0.8, -0.5])
_WINDOW = (np.array([70, 110, 160], np.float32), np.array([40, 45, 52], np.float32))
_GLASS = (np.array([60, 80, 110], np.float32), np.array([28, 32, 40], np.float32))
_TAIL = (np.array([230, 20, 20], np.float32), np.array([140, 20, 15], np.float32))
_LAMPS = np.array([(255, 40, 30), (255, 200, 0), (40, 230, 80)], np.float32)


@dataclass(frozen=True)
class Sample:
    """One rendered view: ``image`` H×W×3 uint8, ``labels`` H×W uint8 (class index), ``depth`` H×W float32
    metres along the optical axis (``FAR_DEPTH`` for sky and beyond)."""

    image: np.ndarray
    labels: np.ndarray
    depth: np.ndarray


class _Canvas:
    """Z-buffered colour, class and depth buffers plus the camera's per-pixel ray slopes."""

    def __init__(self, height: int, width: int, scene: Scene, appearance: float, lighting: float) -> None:
        self.h, self.w = height, width
        f = FOCAL * width
        self.f, self.cx, self.cy = f, width / 2, HORIZON * height
        self.xn = ((np.arange(width, dtype=np.float32) + 0.5 - self.cx) / f)[None, :]   # X / Z per column
        self.yn = ((np.arange(height, dtype=np.float32) + 0.5 - self.cy) / f)[:, None]  # (h - Y) / Z per row
        self.depth = np.full((height, width), np.inf, np.float32)
        self.labels = np.full((height, width), SKY, np.uint8)
        self.color = np.zeros((height, width, 3), np.float32)
        self.appearance, self.lighting = appearance, lighting
        sun = np.array(scene.sun, np.float32)
        target_shade = 0.5 + 0.7 * np.maximum(_NORMALS @ sun, 0)
        self.face_shade = _SOURCE_SHADE + lighting * (target_shade - _SOURCE_SHADE)
        self.sun = sun

    def mix(self, src, tgt) -> np.ndarray:
        """An object's colour in this rendering: source blended toward target by the appearance shift."""
        src, tgt = np.asarray(src, np.float32), np.asarray(tgt, np.float32)
        return np.clip(src + self.appearance * (tgt - src), 0, 255)

    def bbox(self, xs, ys, zs) -> tuple[slice, slice] | None:
        """Pixel rows and columns covering the points (xs, ys, zs), or None when off screen."""
        z = np.maximum(np.asarray(zs, np.float32), NEAR)
        u = self.cx + self.f * np.asarray(xs, np.float32) / z
        v = self.cy - self.f * (np.asarray(ys, np.float32) - CAMERA_HEIGHT) / z
        u0, u1 = max(int(np.floor(u.min())), 0), min(int(np.ceil(u.max())) + 1, self.w)
        v0, v1 = max(int(np.floor(v.min())), 0), min(int(np.ceil(v.max())) + 1, self.h)
        return (slice(v0, v1), slice(u0, u1)) if u0 < u1 and v0 < v1 else None

    def paint(self, rows: slice, cols: slice, depth: np.ndarray, cls: int, color: np.ndarray) -> None:
        """Write ``color`` (h×w×3), ``cls`` and ``depth`` (h×w, inf = no hit) where nearer than the buffer."""
        zb = self.depth[rows, cols]
        hit = depth < zb
        zb[hit] = depth[hit]
        self.labels[rows, cols][hit] = cls
        self.color[rows, cols][hit] = color[hit]


def _ground_and_sky(c: _Canvas, scene: Scene) -> tuple[np.ndarray, np.ndarray]:
    """Paint road, markings, terrain and sky; returns the ground's world X and Z per pixel (inf for sky)."""
    yn = np.broadcast_to(c.yn, (c.h, c.w))
    ground = yn > 1e-6
    z = np.where(ground, CAMERA_HEIGHT / np.where(ground, yn, 1), np.inf).astype(np.float32)
    x = c.xn * z
    left, right = scene.road
    road = ground & (x >= left) & (x <= right)
    dash = np.mod(np.minimum(z, 1e6), 9.0) < 3.0
    marking = road & ((np.abs(x - left - 0.3) < 0.08) | (np.abs(x - right + 0.3) < 0.08))
    for lane in scene.lanes:
        marking |= road & dash & (np.abs(x - lane) < 0.07)
    src, tgt = scene.ground_src, scene.ground_tgt
    t = np.clip(-c.yn / 0.35, 0, 1)[..., None]  # sky gradient: paler at the horizon
    sky_top, sky = c.mix(src["sky"], tgt["sky"]), np.array([225, 235, 245], np.float32)
    color = np.broadcast_to(sky + t * (sky_top - sky), (c.h, c.w, 3)).copy()
    color[ground & ~road] = c.mix(src["terrain"], tgt["terrain"])
    color[road] = c.mix(src["road"], tgt["road"])
    color[marking] = c.mix(src["marking"], tgt["marking"])
    c.color[:] = color
    c.labels[road] = ROAD
    c.labels[ground & ~road] = TERRAIN
    c.depth[:] = np.minimum(z, FAR_DEPTH)
    return x, z


def _box(c: _Canvas, b: Box) -> None:
    if b.z1 <= NEAR:
        return
    z0 = max(b.z0, NEAR)
    box = c.bbox([b.x0, b.x1] * 4, [b.y0, b.y0, b.y1, b.y1] * 2, [z0] * 4 + [b.z1] * 4)
    if box is None:
        return
    rows, cols = box
    xn, yn = c.xn[:, cols], c.yn[rows]
    shape = (rows.stop - rows.start, cols.stop - cols.start)
    depth = np.full(shape, np.inf, np.float32)
    face = np.zeros(shape, np.int8)
    lu = np.zeros(shape, np.float32)   # horizontal position on the face, metres (for patterns)
    ly = np.zeros(shape, np.float32)   # height above the ground, metres

    def hit(f: int, z, inside, horizontal) -> None:
        z = np.broadcast_to(z, shape)
        ok = inside & (z < depth) & (z >= NEAR)
        depth[ok] = z[ok]
        face[ok] = f
        lu[ok] = np.broadcast_to(horizontal, shape)[ok]
        ly[ok] = np.broadcast_to(CAMERA_HEIGHT - yn * z, shape)[ok]

    if b.z0 >= NEAR:  # the face towards the camera
        x, y = xn * b.z0, CAMERA_HEIGHT - yn * b.z0
        hit(0, np.float32(b.z0), (x >= b.x0) & (x <= b.x1) & (y >= b.y0) & (y <= b.y1), x - b.x0)
    for f, xp in ((1, b.x0), (2, b.x1)):  # side faces seen from the road
        if (f == 1 and b.x0 > 0) or (f == 2 and b.x1 < 0):
            with np.errstate(divide="ignore", invalid="ignore"):
                z = xp / xn
            y = CAMERA_HEIGHT - yn * z
            hit(f, z, (z >= b.z0) & (z <= b.z1) & (y >= b.y0) & (y <= b.y1), z - b.z0)
    for f, yp in ((3, b.y1), (4, b.y0)):  # top seen from above, bottom seen from below
        if (f == 3 and yp < CAMERA_HEIGHT) or (f == 4 and yp > CAMERA_HEIGHT):
            with np.errstate(divide="ignore", invalid="ignore"):
                z = (CAMERA_HEIGHT - yp) / yn
            x = xn * z
            hit(f, z, (z >= b.z0) & (z <= b.z1) & (x >= b.x0) & (x <= b.x1), x - b.x0)
    if not np.isfinite(depth).any():
        return
    color = np.broadcast_to(c.mix(b.src, b.tgt), shape + (3,)).copy()
    a = c.appearance
    if b.pattern == "windows":
        su, sv, frac = b.params
        win = (face <= 2) & (np.mod(lu, su) / su > 0.3) & (np.mod(lu, su) / su < 0.3 + frac) \
            & (np.mod(ly, sv) / sv > 0.35) & (np.mod(ly, sv) / sv < 0.8) & (ly > 1.5) & (ly < b.y1 - 0.8)
        color[win] = _WINDOW[0] + a * (_WINDOW[1] - _WINDOW[0])
    elif b.pattern == "glass":
        color[face != 3] = _GLASS[0] + a * (_GLASS[1] - _GLASS[0])
    elif b.pattern == "rear":
        w = b.x1 - b.x0
        tail = (face == 0) & ((lu < 0.28) | (lu > w - 0.28)) & (ly > 0.6) & (ly < 0.82)
        color[tail] = _TAIL[0] + a * (_TAIL[1] - _TAIL[0])
    elif b.pattern == "lamps":
        cx, active = (b.x0 + b.x1) / 2, b.params[0]
        for i in range(3):
            cy = b.y1 - 0.2 - 0.3 * i
            lamp = (face == 0) & ((lu + b.x0 - cx) ** 2 + (ly - cy) ** 2 < 0.11 ** 2)
            color[lamp] = _LAMPS[i] if i == active else _LAMPS[i] * 0.25
    color *= c.face_shade[face][..., None]
    c.paint(rows, cols, depth, b.cls, color)


def _sphere(c: _Canvas, s: Sphere) -> None:
    if s.z + s.r <= NEAR:
        return
    box = c.bbox([s.x - s.r, s.x + s.r] * 2, [s.y - s.r, s.y - s.r, s.y + s.r, s.y + s.r], [s.z - s.r] * 4)
    if box is None:
        return
    rows, cols = box
    xn, yn = c.xn[:, cols], c.yn[rows]
    # Ray p(t) = (xn t, h - yn t, t); solve |p - centre|² = r² for the near root t (= depth).
    dx, dy, dz = s.x, s.y - CAMERA_HEIGHT, s.z
    a = xn * xn + yn * yn + 1
    bh = xn * dx - yn * dy + dz
    disc = bh * bh - a * (dx * dx + dy * dy + dz * dz - s.r * s.r)
    inside = disc > 0
    z = np.where(inside, (bh - np.sqrt(np.maximum(disc, 0))) / a, np.inf).astype(np.float32)
    z[z < NEAR] = np.inf
    if not np.isfinite(z).any():
        return
    z_hit = np.where(np.isfinite(z), z, dz)
    n = np.stack(np.broadcast_arrays((xn * z_hit - dx) / s.r, (CAMERA_HEIGHT - yn * z_hit - s.y) / s.r, (z_hit - dz) / s.r), -1)
    soft = 0.78 + 0.3 * (n @ _SOURCE_LIGHT)
    lit = 0.5 + 0.7 * np.maximum(n @ c.sun, 0)
    shade = soft + c.lighting * (lit - soft)
    c.paint(rows, cols, z, s.cls, c.mix(s.src, s.tgt) * shade[..., None])


def _plate(c: _Canvas, p: Plate) -> None:
    if p.z <= NEAR:
        return
    box = c.bbox([p.x - p.w / 2, p.x + p.w / 2], [p.y - p.h / 2, p.y + p.h / 2], [p.z, p.z])
    if box is None:
        return
    rows, cols = box
    u = (c.xn[:, cols] * p.z - p.x) / p.w
    v = (CAMERA_HEIGHT - c.yn[rows] * p.z - p.y) / p.h
    inside = {"circle": u * u + v * v <= 0.25, "rect": (np.abs(u) <= 0.5) & (np.abs(v) <= 0.5),
              "diamond": np.abs(u) + np.abs(v) <= 0.5,
              "triangle": (v >= -0.5) & (np.abs(u) <= 0.5 * (0.5 - v))}[p.shape]
    inside = np.broadcast_to(inside, (rows.stop - rows.start, cols.stop - cols.start))
    depth = np.where(inside, np.float32(p.z), np.float32(np.inf))
    color = np.broadcast_to(c.mix(p.src, p.tgt) * c.face_shade[0], depth.shape + (3,)).copy()
    border = inside & (np.maximum(np.abs(u), np.abs(v)) > 0.4) if p.shape == "rect" else None
    if border is not None:
        color[border] = 240
    c.paint(rows, cols, depth, p.cls, color)


_DRAW = {Box: _box, Sphere: _sphere, Plate: _plate}


def render(seed: int, domain: str = "source", height: int = 128, width: int = 384, shift: Shift = Shift()) -> Sample:
    """Render scene ``seed`` in ``domain`` ("source": flat game-like shading; "target": the shifted,
    photograph-like domain). The same seed gives the same layout, labels and depth in both domains."""
    if domain not in ("source", "target"):
        raise ValueError(f"domain must be 'source' or 'target', got {domain!r}")
    if not (isinstance(height, int) and isinstance(width, int) and 8 <= height <= 2048 and 8 <= width <= 4096):
        raise ValueError(f"image size must be integers with 8 <= height <= 2048 and 8 <= width <= 4096, "
                         f"got {height}×{width}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    scene = make_scene(int(seed))
    target = domain == "target"
    level = (lambda name: shift.level(name)) if target else (lambda name: 0.0)
    canvas = _Canvas(height, width, scene, level("appearance"), level("lighting"))
    ground_x, ground_z = _ground_and_sky(canvas, scene)
    rng = np.random.default_rng([int(seed), height, width])
    if level("lighting") > 0:
        cast_shadows(canvas, ground_x, ground_z, scene, level("lighting"))
    for obj in scene.objects:
        _DRAW[type(obj)](canvas, obj)
    depth = np.minimum(canvas.depth, FAR_DEPTH)
    color = canvas.color
    if level("texture") > 0:
        color = texture(color, canvas.labels, level("texture"), rng)
    if target:
        color = apply_camera_effects(color, depth, scene, shift, rng)
    image = np.clip(color, 0, 255).round().astype(np.uint8)
    if target and level("compression") > 0:
        image = jpeg(image, level("compression"))
    return Sample(image, canvas.labels, depth.astype(np.float32))


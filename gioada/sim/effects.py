"""The target domain's image effects: textures, cast shadows, haze, colour grading and the camera."""
from __future__ import annotations

import io

import numpy as np
from PIL import Image

from .scene import BUILDING, CAR, FAR_DEPTH, TRUCK, Box, Scene
from .shift import Shift

# Texture amplitude per class: road, building, pole, light, sign, vegetation, terrain, sky, car, truck.
_TEXTURE = np.array([0.14, 0.16, 0.06, 0.03, 0.03, 0.38, 0.3, 0.03, 0.05, 0.07], np.float32)
_HAZE = np.array([205, 210, 216], np.float32)
_HAZE_DISTANCE = 110.0   # metres at which haze hides 63% of the scene, at strength 1
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def _lerp_matrix(n_out: int, n_in: int) -> np.ndarray:
    """n_out×n_in matrix resampling a signal of length n_in to n_out by linear interpolation."""
    pos = np.linspace(0, n_in - 1, n_out)
    lo = np.floor(pos).astype(int).clip(0, n_in - 2)
    t = (pos - lo).astype(np.float32)
    m = np.zeros((n_out, n_in), np.float32)
    m[np.arange(n_out), lo] = 1 - t
    m[np.arange(n_out), lo + 1] = t
    return m


def texture(color: np.ndarray, labels: np.ndarray, level: float, rng: np.random.Generator) -> np.ndarray:
    """Surface detail: luminance noise at two scales, strongest on foliage and grass. color: H×W×3."""
    h, w = labels.shape
    fine = rng.standard_normal((h, w), dtype=np.float32)
    small = rng.standard_normal((max(h // 6, 2), max(w // 6, 2)), dtype=np.float32)
    coarse = _lerp_matrix(h, small.shape[0]) @ small @ _lerp_matrix(w, small.shape[1]).T
    gain = 1 + level * _TEXTURE[np.minimum(labels, len(_TEXTURE) - 1)] * (0.5 * fine + 0.9 * coarse)
    return color * np.maximum(gain, 0.2)[..., None]


def cast_shadows(canvas, ground_x: np.ndarray, ground_z: np.ndarray, scene: Scene, level: float) -> None:
    """Darken the ground where buildings and vehicles block the sun (before the objects are drawn)."""
    sx, sy, sz = scene.sun
    shadow = np.zeros(ground_z.shape, bool)
    for b in scene.objects:
        if not (isinstance(b, Box) and b.cls in (BUILDING, CAR, TRUCK) and b.y0 < 0.7):
            continue
        reach = min(b.y1 / sy, 2.0 * b.y1)  # shadow length on flat ground, capped at low sun
        dx, dz = -sx * reach, -sz * reach
        x0, x1 = min(b.x0, b.x0 + dx), max(b.x1, b.x1 + dx)
        z0, z1 = max(min(b.z0, b.z0 + dz), 0.6), min(max(b.z1, b.z1 + dz), FAR_DEPTH)
        if z1 <= z0:
            continue
        box = canvas.bbox([x0, x1, x0, x1], [0, 0, 0, 0], [z0, z0, z1, z1])
        if box is None:
            continue
        gx, gz = ground_x[box], ground_z[box]
        shadow[box] |= (gx >= x0) & (gx <= x1) & (gz >= z0) & (gz <= z1)
    canvas.color[shadow] *= 1 - 0.45 * min(level, 1.5)


def _blur(color: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of an H×W×3 image (edges replicated)."""
    r = max(int(np.ceil(2 * sigma)), 1)
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2).astype(np.float32)
    k /= k.sum()
    for axis in (0, 1):
        pad = [(0, 0)] * 3
        pad[axis] = (r, r)
        p = np.pad(color, pad, mode="edge")
        n = color.shape[axis]
        color = sum(k[i] * np.take(p, np.arange(i, i + n), axis=axis) for i in range(2 * r + 1))
    return color


def apply_camera_effects(color: np.ndarray, depth: np.ndarray, scene: Scene, shift: Shift,
                         rng: np.random.Generator) -> np.ndarray:
    """Haze by depth, colour grading, blur, vignetting and sensor noise on an H×W×3 float image (0..255)."""
    h, w = depth.shape
    if (s := shift.level("haze")) > 0:
        t = np.exp(-depth * (s / _HAZE_DISTANCE))[..., None]
        color = color * t + _HAZE * (1 - t)
    if (s := shift.level("color")) > 0:
        r, g, b, sat, contrast, gamma = scene.grade
        x = color / 255 * (1 + s * (np.array([r, g, b], np.float32) - 1))
        lum = (x @ _LUMA)[..., None]
        x = lum + (1 + s * (sat - 1)) * (x - lum)
        x = 0.5 + (1 + s * (contrast - 1)) * (x - 0.5)
        color = 255 * np.clip(x, 0, 1) ** (1 + s * (gamma - 1))
    if (s := shift.level("blur")) > 0:
        color = _blur(color, 0.7 * s * w / 384)
    if (s := shift.level("vignette")) > 0:
        u = (np.arange(w, dtype=np.float32) + 0.5) / w * 2 - 1
        v = (np.arange(h, dtype=np.float32) + 0.5) / h * 2 - 1
        color = color * (1 - 0.3 * s * (u[None, :] ** 2 + v[:, None] ** 2) / 2)[..., None]
    if (s := shift.level("noise")) > 0:
        color = color + rng.standard_normal(color.shape, dtype=np.float32) * (7 * s)
    return color


def jpeg(image: np.ndarray, level: float) -> np.ndarray:
    """Round-trip an H×W×3 uint8 image through JPEG at a quality falling with ``level`` (1 -> 45)."""
    quality = int(round(max(5.0, 95 - 50 * level)))
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=quality)
    return np.array(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))

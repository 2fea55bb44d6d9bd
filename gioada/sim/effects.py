"""The target domain's look: cast shadows, textures, haze, colour grading and the camera."""
from __future__ import annotations

import io

import numpy as np
from PIL import Image

from . import kernels
from .scene import BUILDING, CAR, FAR_DEPTH, TRUCK, Box, Scene
from .shift import Shift

# Texture amplitude per class: road, building, pole, light, sign, vegetation, terrain, sky, car, truck.
TEXTURE_AMP = np.array([0.14, 0.16, 0.06, 0.03, 0.03, 0.38, 0.3, 0.03, 0.05, 0.07])
HAZE_RGB = np.array([205.0, 210.0, 216.0])
HAZE_DISTANCE = 110.0   # metres at which haze hides 63% of the scene, at strength 1
SHADOW_DARKNESS = 0.45  # fraction of light a cast shadow removes, at strength 1


def shadow_rects(scene: Scene) -> np.ndarray:
    """S×4 ground rectangles (x0, x1, z0, z1) shaded by buildings and vehicles under the scene's sun."""
    sx, sy, sz = scene.sun
    rects = []
    for b in scene.objects:
        if not (isinstance(b, Box) and b.cls in (BUILDING, CAR, TRUCK) and b.y0 < 0.7):
            continue
        reach = min(b.y1 / sy, 2.0 * b.y1)  # shadow length on flat ground, capped for a low sun
        dx, dz = -sx * reach, -sz * reach
        z0, z1 = max(min(b.z0, b.z0 + dz), 0.6), min(max(b.z1, b.z1 + dz), FAR_DEPTH)
        if z1 > z0:
            rects.append((min(b.x0, b.x0 + dx), max(b.x1, b.x1 + dx), z0, z1))
    return np.array(rects, np.float64).reshape(-1, 4)


def finish(color: np.ndarray, labels: np.ndarray, depth: np.ndarray, scene: Scene, shift: Shift | None,
           seed: int) -> np.ndarray:
    """H×W×3 float colour -> uint8 image; ``shift`` None renders the source domain (no effects)."""
    out = np.empty(color.shape, np.uint8)
    if shift is None:
        kernels.sensor(color, seed, 0.0, 0.0, out)
        return out
    kernels.surface_and_atmosphere(color, labels, depth, seed, shift.level("texture"), TEXTURE_AMP,
                                   shift.level("haze"), HAZE_RGB, HAZE_DISTANCE, shift.level("color"),
                                   np.array(scene.grade))
    if (s := shift.level("blur")) > 0:
        color = kernels.blur(color, s * color.shape[1] / 384)
    kernels.sensor(color, seed, shift.level("vignette"), shift.level("noise"), out)
    if (s := shift.level("compression")) > 0:
        out = jpeg(out, s)
    return out


def jpeg(image: np.ndarray, level: float) -> np.ndarray:
    """Round-trip an H×W×3 uint8 image through JPEG at a quality falling with ``level`` (1 -> 45)."""
    quality = int(round(max(5.0, 95 - 50 * level)))
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    return np.array(Image.open(buf))

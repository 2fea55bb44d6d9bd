"""Every dataset's own classes, named once with gioada's class names (the Cityscapes vocabulary).

A label space (``gioada.classes``) then keeps the classes it has, by name; every other id or colour is
``IGNORE_INDEX``. So one table per dataset serves every label space: SYNTHIA's wall is class 3 of
``synthia16`` and ignored in ``synthia13``; a KITTI sidewalk (a Cityscapes id) is ignored in ``vkitti10``.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from ..classes import IGNORE_INDEX, LabelSpace

# Cityscapes label ids (cityscapesScripts' labels.py) of the 19 evaluated classes (trainIds 0..18, in
# this order); every other id (unlabeled, ego vehicle, ground, parking, guard rail, caravan, ...) is void.
# GTA5 and KITTI's semantic benchmark use these ids too.
CITYSCAPES_IDS: dict[int, str] = {
    7: "road", 8: "sidewalk", 11: "building", 12: "wall", 13: "fence", 17: "pole", 19: "traffic light",
    20: "traffic sign", 21: "vegetation", 22: "terrain", 23: "sky", 24: "person", 25: "rider", 26: "car",
    27: "truck", 28: "bus", 31: "train", 32: "motorcycle", 33: "bicycle",
}

# SYNTHIA-RAND-CITYSCAPES class ids (its README's table). Void: 0 void, 13 parking-slot, 14 road-work,
# 22 lane marking -- as in the standard SYNTHIA -> Cityscapes benchmark.
SYNTHIA_IDS: dict[int, str] = {
    1: "sky", 2: "building", 3: "road", 4: "sidewalk", 5: "fence", 6: "vegetation", 7: "pole", 8: "car",
    9: "traffic sign", 10: "person", 11: "bicycle", 12: "motorcycle", 15: "traffic light", 16: "terrain",
    17: "rider", 18: "truck", 19: "bus", 20: "train", 21: "wall",
}

# Virtual KITTI (1.3.1 and 2) categories. Vans are cars, as in Cityscapes' definition of "car" (which
# KITTI's labels follow); GuardRail, Misc and Undefined are void.
VKITTI_CATEGORIES: dict[str, str] = {
    "Terrain": "terrain", "Sky": "sky", "Tree": "vegetation", "Vegetation": "vegetation",
    "Building": "building", "Road": "road", "TrafficSign": "traffic sign", "TrafficLight": "traffic light",
    "Pole": "pole", "Truck": "truck", "Car": "car", "Van": "car",
}

# Virtual KITTI 2's class colours, the same in every scene's colors.txt; used when a scene's colors.txt
# is absent (it ships in the separate "textgt" archive).
VKITTI2_COLOURS: dict[tuple[int, int, int], str] = {
    (210, 0, 200): "Terrain", (90, 200, 255): "Sky", (0, 199, 0): "Tree", (90, 240, 0): "Vegetation",
    (140, 140, 140): "Building", (100, 60, 100): "Road", (250, 100, 255): "GuardRail",
    (255, 255, 0): "TrafficSign", (200, 200, 0): "TrafficLight", (255, 130, 0): "Pole", (80, 80, 80): "Misc",
    (160, 60, 60): "Truck", (255, 127, 80): "Car", (0, 139, 139): "Van", (0, 0, 0): "Undefined",
}


def class_index(name: str | None, space: LabelSpace) -> int:
    """Index of gioada class ``name`` in ``space``, or ``IGNORE_INDEX`` if the space lacks it."""
    return space.classes.index(name) if name in space.classes else IGNORE_INDEX


def id_lut(ids: Mapping[int, str], space: LabelSpace, size: int = 256) -> np.ndarray:
    """Lookup table uint8[size]: a dataset's class id -> class index in ``space`` (``IGNORE_INDEX`` if unmapped)."""
    lut = np.full(size, IGNORE_INDEX, dtype=np.uint8)
    for i, name in ids.items():
        lut[i] = class_index(name, space)
    return lut


def colour_table(colours: Mapping[tuple[int, int, int], str], categories: Mapping[str, str],
                 space: LabelSpace) -> tuple[np.ndarray, np.ndarray]:
    """Sorted colour codes ``r<<16 | g<<8 | b`` (int64[N]) and their class indices in ``space`` (uint8[N]).

    ``colours`` maps a colour to a dataset category (e.g. ``"Car"``); ``categories`` names it for gioada.
    """
    codes = np.array([(r << 16) | (g << 8) | b for r, g, b in colours], dtype=np.int64)
    classes = np.array([class_index(categories.get(c), space) for c in colours.values()], dtype=np.uint8)
    order = np.argsort(codes)
    return codes[order], classes[order]


def lookup_colours(rgb: np.ndarray, table: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Colour-coded labels H×W×3 uint8 -> class indices H×W uint8; colours not in ``table`` are ignored."""
    codes, classes = table
    code = (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]
    at = np.searchsorted(codes, code).clip(max=len(codes) - 1)
    return np.where(codes[at] == code, classes[at], IGNORE_INDEX).astype(np.uint8)

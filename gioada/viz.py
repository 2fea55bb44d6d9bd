"""Pictures: label colours, depth colour maps, overlays, legends and figure grids."""
from __future__ import annotations

import functools

import numpy as np

from .classes import IGNORE_INDEX, VKITTI10, LabelSpace
from .constants import FAR_DEPTH

IGNORE_COLOR = (0, 0, 0)


def palette(space: LabelSpace = VKITTI10) -> np.ndarray:
    """256×3 uint8 lookup: class index -> colour; every other index (ignore) -> black."""
    lut = np.zeros((256, 3), np.uint8)
    lut[: space.num_classes] = np.array(space.colors, np.uint8)
    lut[IGNORE_INDEX] = IGNORE_COLOR
    return lut


def colorize_labels(labels: np.ndarray, space: LabelSpace = VKITTI10) -> np.ndarray:
    """Class map H×W (ints) -> H×W×3 uint8 colours."""
    return palette(space)[np.asarray(labels).astype(np.uint8)]


def overlay(image: np.ndarray, labels: np.ndarray, alpha: float = 0.55, space: LabelSpace = VKITTI10) -> np.ndarray:
    """Blend label colours H×W×3 over an image H×W×3 uint8 (ignored pixels keep the image)."""
    colors = colorize_labels(labels, space).astype(np.float32)
    mix = (1 - alpha) * image.astype(np.float32) + alpha * colors
    keep = (np.asarray(labels) == IGNORE_INDEX)[..., None]
    return np.where(keep, image, mix).round().astype(np.uint8)


@functools.lru_cache(maxsize=None)
def _cmap(name: str) -> np.ndarray:
    """Matplotlib's colour map ``name`` as a 256×3 uint8 lookup (built once)."""
    import matplotlib
    lut = (matplotlib.colormaps[name](np.linspace(0, 1, 256))[:, :3] * 255).astype(np.uint8)
    lut.flags.writeable = False
    return lut


def colorize_depth(depth: np.ndarray, max_depth: float = FAR_DEPTH, cmap: str = "magma_r") -> np.ndarray:
    """Depth H×W metres -> H×W×3 uint8 (near = bright), on a log scale so near structure stays visible."""
    d = np.clip(np.asarray(depth, np.float32), 1.0, max_depth)
    t = np.log(d) / np.log(max_depth)
    return _cmap(cmap)[(t * 255).astype(np.uint8)]


def colorize_confidence(prob: np.ndarray, cmap: str = "coolwarm_r") -> np.ndarray:
    """Probability "real" H×W in [0, 1] -> H×W×3 uint8; 0.5 (chance) is the neutral middle colour."""
    return _cmap(cmap)[(np.clip(prob, 0, 1) * 255).astype(np.uint8)]

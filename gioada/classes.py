"""Label spaces: class names, display colours and the ignore index.

Every label map in gioada holds class indices ``0..K-1``, or ``IGNORE_INDEX`` for pixels that count
in no loss and no metric.
"""
from __future__ import annotations

from dataclasses import dataclass

IGNORE_INDEX = 255


@dataclass(frozen=True)
class LabelSpace:
    """An ordered set of classes with an RGB colour each (for overlays and legends)."""

    name: str
    classes: tuple[str, ...]
    colors: tuple[tuple[int, int, int], ...]

    def __post_init__(self) -> None:
        if len(self.classes) != len(self.colors):
            raise ValueError(f"{self.name}: {len(self.classes)} classes but {len(self.colors)} colours")

    @property
    def num_classes(self) -> int:
        return len(self.classes)


# Cityscapes' palette, so every label space colours a class the same way.
_PALETTE = {
    "road": (128, 64, 128), "sidewalk": (244, 35, 232), "building": (70, 70, 70),
    "wall": (102, 102, 156), "fence": (190, 153, 153), "pole": (153, 153, 153),
    "traffic light": (250, 170, 30), "traffic sign": (220, 220, 0), "vegetation": (107, 142, 35),
    "terrain": (152, 251, 152), "sky": (70, 130, 180), "person": (220, 20, 60),
    "rider": (255, 0, 0), "car": (0, 0, 142), "truck": (0, 0, 70), "bus": (0, 60, 100),
    "train": (0, 80, 100), "motorcycle": (0, 0, 230), "bicycle": (119, 11, 32),
}


def _space(name: str, classes: tuple[str, ...]) -> LabelSpace:
    return LabelSpace(name, classes, tuple(_PALETTE[c] for c in classes))


# The 10 classes of the paper's Virtual KITTI -> KITTI benchmark; the built-in simulator uses them too.
VKITTI10 = _space("vkitti10", (
    "road", "building", "pole", "traffic light", "traffic sign",
    "vegetation", "terrain", "sky", "car", "truck",
))
CITYSCAPES19 = _space("cityscapes19", (
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
    "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train",
    "motorcycle", "bicycle",
))
# SYNTHIA -> Cityscapes: the standard 16 classes, and the 13 without wall, fence and pole.
SYNTHIA16 = _space("synthia16", (
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
    "vegetation", "sky", "person", "rider", "car", "bus", "motorcycle", "bicycle",
))
SYNTHIA13 = _space("synthia13", tuple(c for c in SYNTHIA16.classes if c not in ("wall", "fence", "pole")))

LABEL_SPACES = {s.name: s for s in (VKITTI10, CITYSCAPES19, SYNTHIA16, SYNTHIA13)}


def get_label_space(name: str) -> LabelSpace:
    """Look a label space up by name, e.g. ``"vkitti10"``."""
    try:
        return LABEL_SPACES[name]
    except KeyError:
        raise ValueError(f"unknown label space {name!r}; choose one of {sorted(LABEL_SPACES)}") from None

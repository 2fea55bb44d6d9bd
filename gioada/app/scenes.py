"""Scene sources for Explore: held-out simulator scenes, or validation images of datasets on disk.

A :class:`SceneSource` returns a (source, target) pair of :class:`~gioada.sim.Sample` (image H×W×3 uint8,
labels H×W, depth H×W metres or None) for a scene number, at a shift strength and a size.
"""
from __future__ import annotations

import threading
from typing import Any, Protocol

import numpy as np

from ..classes import VKITTI10, LabelSpace, get_label_space
from ..config import DataConfig
from ..data.synthetic import eval_scene_seed, tensor_to_image
from ..sim import Sample, Shift, render

MAX_SCENE = 10**9                        # held-out scene numbers offered: 0 .. MAX_SCENE


class SceneSource(Protocol):
    kind: str
    space: LabelSpace

    def get(self, index: int, shift: float, height: int, width: int) -> tuple[Sample, Sample, str]:
        """(source sample, target sample, a one-line description)."""


class SimScenes:
    """Held-out scenes of the built-in simulator: the same layout in the source and target domains."""

    kind = "sim"
    space = VKITTI10

    def get(self, index: int, shift: float, height: int, width: int) -> tuple[Sample, Sample, str]:
        seed = eval_scene_seed(index)
        s = Shift(strength=shift)
        text = (f"Held-out scene #{index} (simulator seed {seed}, never used in training), "
                f"shift strength {shift:g}")
        return render(seed, "source", height, width), render(seed, "target", height, width, s), text


class DatasetScenes:
    """Validation images of datasets on disk (e.g. ``vkitti2:PATH`` -> ``kitti:PATH``).

    Source and target scenes are different photos here (real datasets are unpaired); scene ``i`` is
    item ``i`` of each split, wrapping around.
    """

    kind = "datasets"

    def __init__(self, source: str, target: str, label_space: str = "vkitti10", scenes: int = 200) -> None:
        self.source, self.target, self.scenes = source, target, scenes
        self.space = get_label_space(label_space)
        self._label_space = label_space
        self._sets: dict[tuple[str, int, int], Any] = {}
        self._lock = threading.Lock()
        self._open("target", 64, 192)  # fail now, with the loader's own message, not on the first click

    def _open(self, domain: str, height: int, width: int) -> Any:
        key = (domain, height, width)
        with self._lock:
            if key not in self._sets:
                try:
                    from ..data import eval_set
                    cfg = DataConfig(source=self.source, target=self.target, label_space=self._label_space,
                                     height=height, width=width, val_scenes=self.scenes)
                    self._sets[key] = eval_set(cfg, domain)
                except ImportError as e:
                    raise ValueError(f"dataset support is not available in this installation ({e}); "
                                     "run the app without --source/--target to use the built-in simulator") from e
            return self._sets[key]

    def get(self, index: int, shift: float, height: int, width: int) -> tuple[Sample, Sample, str]:
        out = []
        for domain in ("source", "target"):
            ds = self._open(domain, height, width)
            if len(ds) == 0:
                raise ValueError(f"the {domain} dataset has no validation images")
            image, labels, depth = ds[index % len(ds)]
            depth = depth[0].numpy().astype(np.float32)
            if not np.isfinite(depth).any() or not (depth > 0).any():
                depth = None  # e.g. GTA5 has no depth
            out.append(Sample(tensor_to_image(image), labels.numpy().astype(np.uint8), depth))
        text = (f"Validation image #{index % len(self._open('target', height, width))} of "
                f"{self.source.split(':')[0]} (source) and {self.target.split(':')[0]} (target)")
        return out[0], out[1], text

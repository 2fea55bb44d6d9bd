"""Datasets over the built-in simulator.

Scene seeds: training scenes are drawn from ``[0, 2^31)`` by hashing (run seed, stream, index); held-out
scenes lie above, so none is ever a training scene. They come in two disjoint splits: *validation* scenes
(``2^31 + index``), watched while training and by any tuning run, and *test* scenes (``2^31 + 2^30 + index``),
used only to evaluate: the README's figures, ``evaluate`` and Explore's gallery.

The datasets are map-style (``__len__`` and ``__getitem__``), which is all a ``DataLoader`` asks; they do not
subclass torch's ``Dataset``, so that importing them does not import torch (see ``gioada.lazy``).
"""
from __future__ import annotations

import numpy as np

from ..lazy import torch
from ..sim import Sample, Shift, render

HELD_OUT_BASE = 2**31
SPLIT_SEED_BASE = {"val": HELD_OUT_BASE, "test": HELD_OUT_BASE + 2**30}
_STREAMS = {"source": 0, "target": 1}


def train_scene_seed(run_seed: int, stream: str, index: int) -> int:
    """The simulator seed of training scene ``index`` of a ``stream`` ("source" or "target")."""
    state = np.random.SeedSequence([run_seed, _STREAMS[stream], index]).generate_state(1)[0]
    return int(state) % HELD_OUT_BASE


def eval_scene_seed(index: int, split: str = "test") -> int:
    """The simulator seed of held-out scene ``index`` of ``split`` ("test" or "val")."""
    return SPLIT_SEED_BASE[split] + index


def image_to_tensor(image: np.ndarray) -> torch.Tensor:
    """H×W×3 uint8 -> 3×H×W float32 in [-1, 1]."""
    return torch.from_numpy(image).permute(2, 0, 1).float().div(127.5).sub(1.0)


def tensor_to_image(image: torch.Tensor) -> np.ndarray:
    """3×H×W in [-1, 1] -> H×W×3 uint8."""
    return ((image.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()


def sample_to_tensors(sample: Sample) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(image 3×H×W in [-1, 1], labels H×W int64, depth 1×H×W metres)."""
    return (image_to_tensor(sample.image), torch.from_numpy(sample.labels.astype(np.int64)),
            torch.from_numpy(sample.depth).unsqueeze(0))


def random_crop(rng: np.random.Generator, crop: tuple[int, int], *tensors: torch.Tensor) -> list[torch.Tensor]:
    """The same random ``crop`` (H, W) window of each tensor (…×H×W, one frame), placed by ``rng``."""
    (h, w), (ch, cw) = tensors[0].shape[-2:], crop
    y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    return [t[..., y:y + ch, x:x + cw] for t in tensors]


class SimTrainSet:
    """Item i: ``(real 3×h×w, fake 3×h×w, labels h×w, depths 1×h×w)``, random ``crop`` (h, w) windows of
    scenes rendered at the native H×W (the whole frame when ``crop`` is None).

    ``real`` is a target-domain scene and ``fake`` a *different* source-domain scene (unpaired, as with
    real data), each cropped at its own place. In oracle mode the labelled scene is rendered in the target
    domain instead.
    """

    def __init__(self, length: int, height: int, width: int, shift: Shift, seed: int = 0,
                 oracle: bool = False, crop: tuple[int, int] | None = None) -> None:
        self.length, self.height, self.width = length, height, width
        self.shift, self.seed, self.oracle = shift, seed, oracle
        self.crop = crop or (height, width)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> tuple[torch.Tensor, ...]:
        size = dict(height=self.height, width=self.width, shift=self.shift)
        real = render(train_scene_seed(self.seed, "target", i), "target", **size)
        labelled = render(train_scene_seed(self.seed, "source", i), "target" if self.oracle else "source", **size)
        crops = np.random.default_rng([self.seed, 2, i])
        (real,) = random_crop(crops, self.crop, image_to_tensor(real.image))
        return (real, *random_crop(crops, self.crop, *sample_to_tensors(labelled)))


class SimEvalSet:
    """Held-out scenes of one split in one domain: item i is ``(image 3×H×W, labels H×W, depth 1×H×W)``."""

    def __init__(self, length: int, height: int, width: int, shift: Shift, domain: str = "target",
                 split: str = "test") -> None:
        if split not in SPLIT_SEED_BASE:
            raise ValueError(f"split={split!r}: expected 'test' or 'val'")
        self.length, self.height, self.width, self.shift = length, height, width, shift
        self.domain, self.split = domain, split

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> tuple[torch.Tensor, ...]:
        return sample_to_tensors(render(eval_scene_seed(i, self.split), self.domain, self.height, self.width, self.shift))

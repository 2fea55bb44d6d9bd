"""Numbers that several parts of gioada must agree on, defined once.

``FAR_DEPTH`` is the far plane in metres: the simulator renders sky (and anything beyond) at exactly this
depth, the networks scale and clamp depth by it, the depth metrics exclude pixels at it (sky, as in
KITTI's evaluation) and the depth colour maps end there. A model's own ``max_depth`` hyperparameter
defaults to it; change it here and every part moves together.

``COLLAPSE_MARGIN``: a run *collapsed* when its target mIoU lies more than this many points below its
reference: across seeds, the row's median (``gioada.ablation.collapses``); during a fine-tune, the best it
has reached (the app's collapse warning).

``ASSETS`` is the folder of what gioada ships (trained models, ``backbones/`` of pretrained encoders): the
folder named by the environment variable ``GIOADA_ASSETS`` if it is set; else ``gioada/assets/`` inside
the installed package (a wheel carries them as package data); else the checkout's ``assets/`` beside
``gioada/`` (a source tree, or ``pip install -e .``).
"""
from __future__ import annotations

import os
from pathlib import Path

FAR_DEPTH = 80.0  # metres
COLLAPSE_MARGIN = 10.0  # mIoU points
ENCODERS = ("resnet", "efficientnet-lite0")  # T's encoders (gioada.networks.task.TaskNetwork)


def find_assets(env: bool = True) -> Path:
    """The folder holding what gioada ships (see ``ASSETS`` above for the order searched; ``env=False``: the
    package's or checkout's own, whatever ``GIOADA_ASSETS`` says)."""
    if env and os.environ.get("GIOADA_ASSETS"):
        return Path(os.environ["GIOADA_ASSETS"]).expanduser()
    package = Path(__file__).resolve().parent
    installed = package / "assets"
    return installed if installed.is_dir() else package.parent / "assets"


ASSETS = find_assets()


def shipped_encoder(encoder: str) -> Path | None:
    """The shipped ImageNet weights of T's ``encoder`` (``backbones/ENCODER.safetensors``): in ``ASSETS``,
    else in gioada's own assets (``GIOADA_ASSETS`` may name a folder of models alone); None where none ship."""
    for folder in dict.fromkeys((ASSETS, find_assets(env=False))):
        path = folder / "backbones" / f"{encoder}.safetensors"
        if path.is_file():
            return path
    return None

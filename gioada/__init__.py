"""gioada: GIO-Ada (geometrically guided input-output adaptation) with a built-in driving-scene simulator.

The model names (``GIOAda``, the networks, ``REAL``/``FAKE``) are imported on first use (PEP 562), so that
``import gioada`` and the parts that need no training (the app's first view, the simulator) do not pay for
importing PyTorch Lightning.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .classes import IGNORE_INDEX, VKITTI10, LabelSpace, get_label_space
from .config import DataConfig, ModelConfig, RunConfig, with_overrides

if TYPE_CHECKING:
    from .module import FAKE, REAL, GIOAda
    from .networks import Discriminator, ImageTransformNetwork, TaskNetwork

__version__ = "0.1.0"

_LAZY = {"FAKE": ".module", "REAL": ".module", "GIOAda": ".module", "Discriminator": ".networks",
         "ImageTransformNetwork": ".networks", "TaskNetwork": ".networks"}

__all__ = ["DataConfig", "Discriminator", "FAKE", "GIOAda", "IGNORE_INDEX", "ImageTransformNetwork", "LabelSpace",
           "ModelConfig", "REAL", "RunConfig", "TaskNetwork", "VKITTI10", "get_label_space", "with_overrides"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

"""The trained models shipped in ``assets/``, loaded by name.

Where they are found (``ASSETS``): the folder named by the environment variable ``GIOADA_ASSETS`` if it
is set; else ``gioada/assets/`` inside the installed package (a wheel carries them as package data);
else the checkout's ``assets/`` beside ``gioada/`` (a source tree, or ``pip install -e .``).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from .checkpoint import is_run_dir, load_model

if TYPE_CHECKING:   # GIOAda imports Lightning: loaded where a model is built
    from .module import GIOAda


def find_assets() -> Path:
    """The folder holding the shipped models (see the module docstring for the order searched)."""
    if os.environ.get("GIOADA_ASSETS"):
        return Path(os.environ["GIOADA_ASSETS"]).expanduser()
    package = Path(__file__).resolve().parent
    installed = package / "assets"
    return installed if installed.is_dir() else package.parent / "assets"


ASSETS = find_assets()
# Seed 0 of these ablation rows (gioada/ablation.py), in the order the app lists them. `gioada-content` is the
# full method with a content constraint on G (not in the paper), the adapted row that did not collapse in 3 seeds.
SHIPPED = ("source-only", "input-only", "output-only", "no-depth", "gioada", "gioada-content", "oracle")


def available() -> list[str]:
    """Names of the shipped models present in ``assets/``, in the ablation's order."""
    return [n for n in SHIPPED if is_run_dir(ASSETS / n)]


def resolve_run(name_or_path: str | Path) -> Path:
    """A shipped model's name (``"gioada"``) or a run folder -> the run folder."""
    if str(name_or_path) in SHIPPED:
        path = ASSETS / str(name_or_path)
        if not is_run_dir(path):
            raise FileNotFoundError(f"shipped model {name_or_path!r} is missing from {ASSETS}")
        return path
    path = Path(name_or_path)
    if not is_run_dir(path):
        raise FileNotFoundError(f"{path} is neither a shipped model ({', '.join(SHIPPED)}) nor a run folder "
                                "(one holding model.safetensors and config.json)")
    return path


def load_pretrained(name: str, map_location: str = "cpu") -> GIOAda:
    """Load a shipped model by name, e.g. ``load_pretrained("gioada")`` (safetensors, no pickle)."""
    return load_model(resolve_run(name), map_location)

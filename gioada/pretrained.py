"""The trained models shipped in ``assets/``, loaded by name.

Where they are found: ``ASSETS`` (:mod:`gioada.constants`: the folder named by ``GIOADA_ASSETS``, else the
installed package's ``gioada/assets/``, else the checkout's ``assets/``).
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .checkpoint import is_run_dir, load_model
from .constants import ASSETS

if TYPE_CHECKING:   # GIOAda imports Lightning: loaded where a model is built
    from .module import GIOAda


# What assets/ ships, in the order the app lists them: seed 0 of seven ablation rows (gioada/ablation.py), then
# `gioada-seed1`, seed 1 of `gioada` (a name "ROW-seedN" is seed N of ROW: shipped_source): the same settings
# and another seed, which collapsed, so Explore can show it beside seed 0. `gioada-content` is the full method
# with a content constraint on G (not in the paper), the adapted row that did not collapse in 3 seeds.
SHIPPED = ("source-only", "input-only", "output-only", "no-depth", "gioada", "gioada-content", "oracle",
           "gioada-seed1")


def shipped_source(name: str) -> tuple[str, int]:
    """The ablation row and seed a shipped model is: ``"gioada-seed1"`` -> ``("gioada", 1)``, ``"oracle"`` ->
    ``("oracle", 0)``."""
    row, _, seed = name.rpartition("-seed")
    return (row, int(seed)) if row and seed.isdigit() else (name, 0)


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

"""The target domain's shift away from the source domain: one strength, components switchable."""
from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

COMPONENTS = ("texture", "lighting", "haze", "color", "noise", "blur", "vignette", "compression", "appearance")
MAX_STRENGTH = 2.0
UNIT = 0.6


@dataclass(frozen=True)
class Shift:
    """How far the target ("real") domain is from the source (game-like) domain.

    ``strength`` scales every component (0 = target identical to source, 1 = default, 2 = severe);
    each component can be switched off to see which shift hurts which class.
    """

    strength: float = 1.0
    texture: bool = True      # surface detail: asphalt grain, foliage, facade dirt
    lighting: bool = True     # directional sun shading and cast shadows
    haze: bool = True         # atmospheric haze growing with depth
    color: bool = True        # camera colour grading: white balance, saturation, contrast, gamma
    noise: bool = True        # sensor noise
    blur: bool = True         # optical blur
    vignette: bool = True     # darkened image corners
    compression: bool = True  # JPEG artefacts
    appearance: bool = True   # a different distribution of object colours (cars, buildings, plants, sky)

    def __post_init__(self) -> None:
        s = self.strength
        if isinstance(s, bool) or not isinstance(s, (int, float)) or not math.isfinite(s) \
                or not 0.0 <= s <= MAX_STRENGTH:
            raise ValueError(f"shift strength must be a number in [0, {MAX_STRENGTH:g}], got {s!r}")

    def without(self, *names: str) -> "Shift":
        """This shift with the named components switched off."""
        unknown = sorted(set(names) - set(COMPONENTS))
        if unknown:
            raise ValueError(f"unknown shift component(s) {unknown}; choose from {list(COMPONENTS)}")
        return replace(self, **{n: False for n in names})

    def level(self, component: str) -> float:
        """How strongly ``component`` applies: 0 when switched off; at strength 1, the effects' full
        magnitudes times ``UNIT`` (calibrated so that a model trained on the source alone keeps roughly
        a third of its mIoU on the target, like the paper's no-adaptation baseline on KITTI)."""
        return float(self.strength) * UNIT if getattr(self, component) else 0.0

    @property
    def enabled(self) -> tuple[str, ...]:
        return tuple(f.name for f in fields(self) if f.name in COMPONENTS and getattr(self, f.name))

"""Validation of numbers from the UI or the API (sliders can be bypassed): a finite number in a range,
or a ValueError that names the bad value and the valid range.
"""
from __future__ import annotations

import math
from typing import Any

# What the app accepts (Fine-tune and the live lab alike; API callers skip the sliders): (lo, hi) inclusive.
# Narrower than what the library's config accepts (gioada.config): the app's runs must finish on a CPU.
LIMITS: dict[str, tuple[float, float]] = {
    "lam_input": (0.0, 10.0), "lam_output": (0.0, 10.0), "lam_depth": (0.0, 10.0), "lr": (1e-6, 0.1),
    "d_ratio": (0.1, 100.0), "steps": (1, 20_000), "batch_size": (1, 64), "height": (32, 512), "seed": (0, 2**31 - 1),
}


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else f"{x:g}"


def check_number(name: str, value: Any, lo: float, hi: float, kind: str = "a number") -> float:
    """``value`` (a number or numeric text) as a finite float in [lo, hi], or a ValueError naming the range."""
    valid = f"expected {kind} in [{_num(lo)}, {_num(hi)}]"
    if isinstance(value, bool) or value is None:
        raise ValueError(f"{name}={value!r} is not a number: {valid}")
    try:
        v = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{name}={str(value)[:40]!r} is not a number: {valid}") from None
    if not math.isfinite(v) or not lo <= v <= hi:
        raise ValueError(f"{name}={v!r} is out of range: {valid}")
    return v


def check_int(name: str, value: Any, lo: int, hi: int) -> int:
    """``value`` as an int in [lo, hi] (floats must be whole), or a ValueError naming the valid range."""
    v = check_number(name, value, lo, hi, "an integer")
    if not v.is_integer():
        raise ValueError(f"{name}={value!r} is not a whole number: expected an integer in [{lo}, {hi}]")
    return int(v)

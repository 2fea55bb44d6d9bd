"""Running trained models: device choice and batched prediction."""
from __future__ import annotations

from .lazy import torch


DEVICES = ("auto", "cpu", "gpu", "cuda")


def check_device(preference: str) -> str:
    """``preference`` if it names a device :func:`pick_device` knows (checked without importing torch)."""
    if preference not in DEVICES:
        raise ValueError(f"device={preference!r} is invalid: use auto, cpu or gpu")
    return preference


def pick_device(preference: str = "auto") -> torch.device:
    """``"auto"`` -> the GPU when there is one, else the CPU; ``"cpu"``/``"gpu"``/``"cuda"`` force it."""
    check_device(preference)
    if preference == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if preference in ("gpu", "cuda"):
        if not torch.cuda.is_available():
            raise RuntimeError("a GPU was asked for, but torch sees none; use device 'auto' or 'cpu'")
        return torch.device("cuda")
    return torch.device("cpu")


def predicted_classes(logits: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """Per-pixel class indices: logits B×K×H×W -> B×H×W (``dim``: the class axis). The same as
    ``argmax(dim)``, but torch's CPU argmax over a middle axis is 4-8× slower than ``max(dim).indices``
    (28.5 vs 3.7 ms for 2×10×128×384 on one thread)."""
    return logits.max(dim).indices

"""Running trained models: device choice and batched prediction."""
from __future__ import annotations

import torch


def pick_device(preference: str = "auto") -> torch.device:
    """``"auto"`` -> the GPU when there is one, else the CPU; ``"cpu"``/``"gpu"``/``"cuda"`` force it."""
    if preference == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if preference in ("gpu", "cuda"):
        if not torch.cuda.is_available():
            raise RuntimeError("a GPU was asked for, but torch sees none; use device 'auto' or 'cpu'")
        return torch.device("cuda")
    if preference == "cpu":
        return torch.device("cpu")
    raise ValueError(f"device={preference!r} is invalid: use auto, cpu or gpu")

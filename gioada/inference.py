"""Running trained models: device choice, window-by-window prediction of large frames, class maps."""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

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


# oneDNN ISA caps (ONEDNN_MAX_CPU_ISA) that still allow bf16 dot products; below them bf16 is emulated.
BF16_ISAS = frozenset({"AVX512_CORE_BF16", "AVX512_CORE_FP16", "AVX10_1_512", "AVX512_CORE_AMX",
                       "AVX512_CORE_AMX_FP16", "AVX10_1_512_AMX", "AVX10_1_512_AMX_FP16", "AVX10_2_512",
                       "AVX10_2_512_AMX_2", "DEFAULT", "ALL"})


def native_bf16(cpuinfo: str | None = None, isa_cap: str | None = None) -> bool:
    """Whether this CPU multiplies bf16 in hardware (its ``avx512_bf16`` or ``amx_bf16`` flag) and oneDNN may
    use it (``ONEDNN_MAX_CPU_ISA``, or its older name ``DNNL_MAX_CPU_ISA``, unset or at least
    AVX512_CORE_BF16). oneDNN's own answer (``torch.ops.mkldnn._is_mkldnn_bf16_supported``) is also True
    where it emulates bf16, which is slower.

    ``cpuinfo``: the text of /proc/cpuinfo (read when None; no such file: False); ``isa_cap``: the cap
    (from the environment when None)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return False
    if isa_cap is None:               # DNNL_MAX_CPU_ISA: oneDNN's older name for the same cap
        isa_cap = os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA", "")
    cap = isa_cap.strip().upper()
    flags = next((line.split(":", 1)[1].split() for line in cpuinfo.splitlines() if line.startswith("flags")), [])
    return bool({"avx512_bf16", "amx_bf16"} & set(flags)) and (not cap or cap in BF16_ISAS)


def cpu_bf16(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager:
    """bf16 autocast for inference on the CPU when ``enabled`` (see :func:`native_bf16`); else nothing.
    Outputs come out in bf16 where autocast computed them: cast them back with ``.float()``."""
    if enabled and device.type == "cpu":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def predicted_classes(logits: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """Per-pixel class indices: logits B×K×H×W -> B×H×W (``dim``: the class axis). The same as
    ``argmax(dim)``, but torch's CPU argmax over a middle axis is 4-8× slower than ``max(dim).indices``
    (28.5 vs 3.7 ms for 2×10×128×384 on one thread)."""
    return logits.max(dim).indices


def inference_mode(window: tuple[int, int] | None) -> str:
    """How a model with this ``GIOAda.window`` predicts a frame: "whole frame", or "windows of H×W"."""
    return "whole frame" if window is None else f"windows of {window[0]}×{window[1]}"


def window_starts(size: int, window: int) -> list[int]:
    """Offsets of windows of ``window`` pixels along an axis of ``size``, half a window apart, the last
    flush with the end: every pixel is covered and none is left to a window's border alone."""
    if size <= window:
        return [0]
    starts = list(range(0, size - window + 1, max(1, window // 2)))
    return starts if starts[-1] == size - window else starts + [size - window]


def sliding_window(net, images: torch.Tensor, window: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """``net``'s prediction of frames larger than the crops it was trained on, window by window.

    images B×3×H×W; ``net`` maps B'×3×h×w to (logits B'×K×h×w, depth B'×1×h×w) for h×w = ``window``
    (clipped to the frame). Windows overlap by half (:func:`window_starts`); the class probabilities and
    the depth of overlapping windows are averaged. Returns (log-probabilities B×K×H×W: logits whose
    softmax is the average, depth B×1×H×W). Windows go through ``net`` in batches of at most as many
    pixels as ``images`` holds, so memory stays that of one whole-frame pass, whatever the window count.
    """
    b, _, h, w = images.shape
    wh, ww = min(window[0], h), min(window[1], w)
    boxes = [(t, left) for t in window_starts(h, wh) for left in window_starts(w, ww)]
    per_call = max(1, (h * w) // (wh * ww))                              # windows (of each image) per net call
    prob_sum = depth_sum = None
    count = images.new_zeros(1, 1, h, w)
    for first in range(0, len(boxes), per_call):
        chunk = boxes[first:first + per_call]
        logits, depth = net(torch.cat([images[:, :, t:t + wh, left:left + ww] for t, left in chunk]))  # (n·B)×…
        probs = logits.softmax(dim=1)
        if prob_sum is None:
            prob_sum, depth_sum = images.new_zeros(b, probs.shape[1], h, w), images.new_zeros(b, 1, h, w)
        for i, (t, left) in enumerate(chunk):
            prob_sum[:, :, t:t + wh, left:left + ww] += probs[i * b:(i + 1) * b]
            depth_sum[:, :, t:t + wh, left:left + ww] += depth[i * b:(i + 1) * b]
            count[:, :, t:t + wh, left:left + ww] += 1
    return (prob_sum / count).clamp_min(1e-12).log(), depth_sum / count

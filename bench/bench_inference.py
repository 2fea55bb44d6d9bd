"""Inference latency of one Explore click: render a scene in both domains, translate it with G, run T
on the source, translated and target images, and both discriminators on each (plus the confidence map).
Each round clicks twice, alternating: T on whole frames, and T window by window at ``--window`` (what a
model trained on crops of that size does, ``GIOAda.window``); the ratio is the median per-round ratio.

    python bench/bench_inference.py [--model gioada] [--height 128 --width 384] [--window 64 192] [--n 30]
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from gioada.checkpoint import build_model
from gioada.config import RunConfig
from gioada.data import sample_to_tensors
from gioada.inference import inference_mode, pick_device
from gioada.pretrained import available, load_pretrained
from gioada.sim import Shift, render


@torch.no_grad()
def click(model, seed: int, h: int, w: int, device: torch.device) -> None:
    src = [t.unsqueeze(0).to(device) for t in sample_to_tensors(render(seed, "source", h, w, Shift()))]
    tgt = sample_to_tensors(render(seed, "target", h, w, Shift()))[0].unsqueeze(0).to(device)
    translated = model.translate(*src)
    images = torch.cat([src[0], translated, tgt])                 # 3×3×H×W: one batch for T and D_in
    logits, depth = model(images)
    model.input_discriminator(images)
    model.output_discriminator(model.task_outputs(logits, depth))
    model.input_discriminator.confidence_map(tgt)
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--model", default="gioada", help="shipped model name (an untrained default model if absent)")
    p.add_argument("--height", type=int, default=128)
    p.add_argument("--width", type=int, default=384)
    p.add_argument("--window", type=int, nargs=2, default=(64, 192), metavar=("H", "W"),
                   help="T's window for the window-by-window clicks (a training crop)")
    p.add_argument("--n", type=int, default=30)
    a = p.parse_args()
    device = pick_device()
    model = (load_pretrained(a.model) if a.model in available() else build_model(RunConfig())).to(device).eval()
    windows = {inference_mode(w): w for w in (None, tuple(a.window))}
    times: dict[str, list[float]] = {k: [] for k in windows}
    for i in range(-3, a.n):                                   # 3 warm-up rounds
        for name, window in windows.items():
            model.window = window
            t = time.perf_counter()
            click(model, 1000 + i, a.height, a.width, device)
            if i >= 0:
                times[name].append(1000 * (time.perf_counter() - t))
    where = torch.cuda.get_device_name(0) if device.type == "cuda" else \
        f"CPU, {os.cpu_count()} cores, {torch.get_num_threads()} threads"
    for name, ts in times.items():
        print(f"explore click at {a.height}×{a.width} ({a.model}, T on {name}) on {where}: median "
              f"{statistics.median(ts):.1f} ms, p90 {sorted(ts)[int(0.9 * len(ts)) - 1]:.1f} ms over {a.n} clicks")
    whole, windowed = times.values()
    print(f"window by window / whole frame: {statistics.median(b / a for a, b in zip(whole, windowed)):.2f}x")


if __name__ == "__main__":
    main()

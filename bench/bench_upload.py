"""An uploaded 12-megapixel photo through Explore, against a built-in scene in the same run.

Times ``Explorer.upload`` of a 4000×3000 JPEG (decoding, the centre crop and resize to the models' frame,
both models, every panel) and of the same JPEG at 400×300, beside ``Explorer.scene`` (a gallery click),
alternating, with the shipped models, one torch thread as the app's compute thread uses. The goal
(issue 24): first panels of a 12 MP upload in ≤ 1.5 s. Say what else ran on the machine.

    python bench/bench_upload.py [--rounds 5]
"""
from __future__ import annotations

import argparse
import io
import os
import statistics
import time

import numpy as np
import torch
from PIL import Image

from gioada.app.explore import Explorer
from gioada.app.registry import ModelRegistry
from gioada.pretrained import ASSETS

MODELS = ["gioada", "source-only"]


def photo(width: int, height: int) -> bytes:
    """A JPEG of ``width``×``height``: sky above, a noisy road below (photo-like entropy for the decoder)."""
    rng = np.random.default_rng(0)
    img = (rng.random((height, width, 3)) * 255).astype(np.uint8)
    img[: height // 2] = (120, 160, 210)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=5)
    a = p.parse_args()
    torch.set_num_threads(1)
    explorer = Explorer(ModelRegistry(ASSETS, os.devnull))
    explorer.scene(MODELS, 0, 1.0)                                  # models loaded, as in the running app
    big, small = photo(4000, 3000), photo(400, 300)
    times: dict[str, list[float]] = {"12 MP upload": [], "0.12 MP upload": [], "scene (new each round)": []}
    for r in range(a.rounds):
        for name, run in (("12 MP upload", lambda: explorer.upload(MODELS, big)),
                          ("0.12 MP upload", lambda: explorer.upload(MODELS, small)),
                          ("scene (new each round)", lambda: explorer.scene(MODELS, 100 + r, 1.0))):
            t = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - t)
    print(f"{len(big) / 1e6:.1f} MB JPEG at 4000×3000; {MODELS[0]} vs {MODELS[1]}; one torch thread; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    for name, xs in times.items():
        print(f"  {name:24s}: median {1000 * statistics.median(xs):5.0f} ms (min {1000 * min(xs):.0f}, "
              f"max {1000 * max(xs):.0f}, {len(xs)} rounds)")
    ratio = statistics.median(b / s for b, s in zip(times["12 MP upload"], times["scene (new each round)"]))
    print(f"  12 MP upload / scene: {ratio:.2f}× (median of per-round ratios); goal: 12 MP ≤ 1.5 s")


if __name__ == "__main__":
    main()

"""bf16 inference on the CPU: is it worth it for Explore? Times T's window-by-window prediction and both
discriminators (``GIOAda.judge``, what an Explore click runs per model) in float32 and under bf16 autocast, on
one thread (as the app's calls run), and evaluates each shipped model both ways on the same held-out scenes;
then Explore's whole view of a new scene (``Explorer``, the default pair) both ways: its time and the largest
change of a per-scene mIoU it shows. bf16 pays only on CPUs with native bf16 (AVX512_BF16 or AMX); elsewhere
oneDNN emulates it, and the app keeps float32 (``gioada.inference.native_bf16``).

    python bench/bench_bf16.py [--scenes 100] [--models gioada source-only oracle] [--views 20]
"""
from __future__ import annotations

import argparse
import contextlib
import platform
import statistics
import time

import torch

from gioada.app.explore import Explorer
from gioada.app.registry import ModelRegistry
from gioada.checkpoint import load_run_config
from gioada.evaluate import evaluate
from gioada.inference import native_bf16
from gioada.pretrained import load_pretrained, resolve_run


def _bf16():
    return torch.autocast("cpu", dtype=torch.bfloat16)


def _median_ms(fn, n: int = 7) -> float:
    fn()
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--scenes", type=int, default=100)
    p.add_argument("--models", nargs="+", default=["gioada", "source-only", "oracle"])
    p.add_argument("--views", type=int, default=20, help="new scenes Explore shows both ways")
    a = p.parse_args()
    torch.set_num_threads(1)
    onednn = torch.ops.mkldnn._is_mkldnn_bf16_supported()
    print(f"CPU: {platform.processor() or platform.machine()}; native bf16 (CPU flags, ISA cap): {native_bf16()}; "
          f"oneDNN says bf16 supported: {onednn}; torch {torch.__version__}")
    for key in a.models:
        model = load_pretrained(key).eval()
        data = load_run_config(resolve_run(key)).data
        x = torch.rand(3, 3, data.height, data.width) * 2 - 1
        fp32 = _median_ms(lambda: model.judge(x))
        with _bf16():
            bf16 = _median_ms(lambda: model.judge(x))
        figures = {}
        for name, ctx in (("fp32", contextlib.nullcontext), ("bf16", _bf16)):
            with ctx():
                figures[name] = evaluate(model, data, "target", a.scenes)["miou"]
        print(f"{key}: judge of 3 frames {data.height}×{data.width} on one thread: fp32 {fp32:.0f} ms, "
              f"bf16 {bf16:.0f} ms ({fp32 / bf16:.2f}×); target mIoU on {a.scenes} scenes: fp32 "
              f"{figures['fp32']:.2f}, bf16 {figures['bf16']:.2f} (Δ {figures['bf16'] - figures['fp32']:+.2f})")
    explore_views(a.views)


def explore_views(n: int, keys: tuple[str, str] = ("gioada", "source-only")) -> None:
    """Explore's view of ``n`` new scenes (no view cache) through ``keys``, float32 and bf16."""
    registry = ModelRegistry("assets", "/nonexistent-runs", device="cpu")
    models = [(k, registry.load(k)) for k in keys]
    ways = {"fp32": Explorer(registry, bf16=False), "bf16": Explorer(registry, bf16=True)}
    ms, views = {w: [] for w in ways}, {w: [] for w in ways}
    for i in range(n):
        for w, explorer in ways.items():
            t = time.perf_counter()
            views[w].append(explorer._render_scene(models, i, 1.0))
            ms[w].append(1000 * (time.perf_counter() - t))
    change = max(abs(b.miou_target - f.miou_target) for fv, bv in zip(views["fp32"], views["bf16"])
                 for f, b in zip(fv.models, bv.models))
    fp32, bf16 = statistics.median(ms["fp32"]), statistics.median(ms["bf16"])
    print(f"Explore, a new scene through {' and '.join(keys)} on one thread ({n} scenes): fp32 {fp32:.0f} ms, "
          f"bf16 {bf16:.0f} ms ({fp32 / bf16:.2f}×); largest change of a per-scene target mIoU: {change:.2f}")


if __name__ == "__main__":
    main()

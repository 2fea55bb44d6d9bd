"""Simulator throughput vs what training consumes.

Renders scenes on one core (the simulator is single-threaded) and prints samples/s per domain and
size, then the rate a training step needs: each step uses batch_size target + batch_size source images.

    python bench/bench_sim.py                     # 128×384 and the training size 64×192
    python bench/bench_sim.py --steps-per-second 2.0 --batch-size 8
"""
from __future__ import annotations

import argparse
import platform
import time

from gioada.sim import render


def rate(domain: str, height: int, width: int, n: int) -> float:
    """Samples per second rendering n distinct scenes."""
    render(0, domain, height, width)  # compile / warm caches
    t = time.perf_counter()
    for seed in range(1, n + 1):
        render(seed, domain, height, width)
    return n / (time.perf_counter() - t)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=500, help="scenes per measurement")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--steps-per-second", type=float, default=None,
                   help="measured training speed (bench_train.py); default: estimate from a 20-step run")
    a = p.parse_args()
    print(f"# simulator throughput on {platform.processor() or platform.machine()}, one core, {a.n} scenes each")
    rates = {}
    for h, w in ((128, 384), (64, 192)):
        for domain in ("source", "target"):
            rates[h, w, domain] = r = rate(domain, h, w, a.n)
            print(f"{domain:>6} {h}×{w}: {r:7.0f} samples/s ({1000 / r:.2f} ms each)")
    sps = a.steps_per_second
    if sps is None:  # measure the default CPU model's training step, data excluded
        import torch
        from bench_train import make_batch, plain_steps

        from gioada import GIOAda, ModelConfig
        torch.manual_seed(0)
        model = GIOAda(**{**ModelConfig().__dict__, "num_steps_per_epoch": 100})
        sps = 10 / plain_steps(model, make_batch(a.batch_size, 64, 192, torch.device("cpu")), 10)
        print(f"training step (default model, 64×192, batch {a.batch_size}, {torch.get_num_threads()} threads): "
              f"{sps:.2f} steps/s")
    need = sps * a.batch_size
    pair = 1 / (1 / rates[64, 192, "source"] + 1 / rates[64, 192, "target"])
    print(f"training consumes {need:.0f} source + {need:.0f} target samples/s at 64×192; "
          f"the simulator supplies {pair:.0f} pairs/s on one core ({pair / need:.1f}× what is needed)")


if __name__ == "__main__":
    main()

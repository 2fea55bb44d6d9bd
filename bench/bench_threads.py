"""How torch's OpenMP threads fare beside other work: training steps/s under each wait policy, alone and
next to busy processes (what Chromium, the app's server or another run are to a training run).

Each figure is a fresh process (the policy is read when torch loads OpenMP) timing 6 training steps at
64×192, batch 4, after one warm-up step.

    python bench/bench_threads.py              # alone, then beside 2 busy processes
    python bench/bench_threads.py --busy 3
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import subprocess
import sys

POLICIES = {"default": {}, "GOMP_SPINCOUNT=10000": {"GOMP_SPINCOUNT": "10000"},
            "OMP_WAIT_POLICY=PASSIVE": {"OMP_WAIT_POLICY": "PASSIVE"}}
STEPS = """
import time, torch
from bench.bench_step import current_step, fresh_model, make_batch
from gioada.allocator import keep_freed_memory
keep_freed_memory()                      # as training runs
batch = make_batch(4, 64, 192)
model, opts = fresh_model()
current_step(model, batch, opts)
start = time.perf_counter()
for _ in range(6):
    current_step(model, batch, opts)
print(6 / (time.perf_counter() - start))
"""


def steps_per_second(env: dict[str, str]) -> float:
    base = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    out = subprocess.run([sys.executable, "-c", STEPS], env=base | env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def spin() -> None:
    while True:
        pass


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--busy", type=int, default=2, help="busy processes beside the run in the second part")
    p.add_argument("--rounds", type=int, default=2)
    a = p.parse_args()
    print(f"{os.cpu_count()} cores; steps/s of a 64×192 batch-4 training step (median of {a.rounds})")
    for label, busy in (("alone", 0), (f"beside {a.busy} busy processes", a.busy)):
        hogs = [multiprocessing.Process(target=spin, daemon=True) for _ in range(busy)]
        for h in hogs:
            h.start()
        try:
            rates = {name: statistics.median(steps_per_second(env) for _ in range(a.rounds))
                     for name, env in POLICIES.items()}
        finally:
            for h in hogs:
                h.terminate()
        print(f"  {label:28s} " + "   ".join(f"{name} {r:.2f}" for name, r in rates.items()))


if __name__ == "__main__":
    main()

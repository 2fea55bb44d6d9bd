"""The CPU training step, before and after the speed work, side by side in one run.

``baseline`` is the training step as it was (commit c9d399c): G and T run once for the discriminator
step (without gradients) and again for the generator step, every network judges real and fake inputs in
separate calls, and the networks upsample with ``F.interpolate``. ``current`` is what
``GIOAda.training_step`` runs now: one forward pass of G and T shared by both steps, T and each
discriminator called once over the real and fake batch together, upsampling as two small matrix
products (``resize_bilinear``, the same function). ``current-bf16`` is ``current`` under CPU bf16
autocast (``--precision bf16-mixed``): fast only on CPUs with native bf16 (AMX, AVX512-BF16).
Both update the same networks from the same weights on the same pre-built batch (no simulator), in
alternating rounds so machine load affects both alike; the median ratio is printed, with the FLOPs of
one step (``torch.utils.flop_counter``) and the share of the CPU's fp32 peak they reach.

    python bench/bench_step.py                      # both settings below, 5 rounds
    python bench/bench_step.py --rounds 9 --steps 8
"""
from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

import gioada.networks.common as common
import gioada.networks.task as task
from gioada import GIOAda, ModelConfig
from gioada.module import FAKE, REAL, bce, frozen

# (name, height, width, batch): the app's default fine-tune and the shipped models' training.
SETTINGS = (("default fine-tune", 48, 144, 4), ("shipped models", 64, 192, 8))
Step = Callable[[GIOAda, tuple, tuple], None]


@contextlib.contextmanager
def interpolate_upsampling():
    """The networks as they were: bilinear upsampling by ``F.interpolate``."""
    def interpolate(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        return torch.nn.functional.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)
    saved = common.resize_bilinear, task.resize_bilinear
    common.resize_bilinear = task.resize_bilinear = interpolate
    try:
        yield
    finally:
        common.resize_bilinear, task.resize_bilinear = saved


def baseline_step(model: GIOAda, batch: tuple, optimizers: tuple) -> None:
    """The step as it was before: separate forward passes for the D and G steps, separate D calls."""
    with interpolate_upsampling():
        _baseline_step(model, batch, optimizers)


def _baseline_step(model: GIOAda, batch: tuple, optimizers: tuple) -> None:
    real, fake, labels, depths = batch
    opt_g, opt_d = optimizers
    hp = model.hparams
    with torch.no_grad():
        translated = model.translate(fake, labels, depths)
        out_real = model.task_outputs(*model.task_network(real))
        out_fake = model.task_outputs(*model.task_network(translated))
    d_total = bce(model.input_discriminator.logits_map(real), REAL) \
        + bce(model.input_discriminator.logits_map(translated), FAKE)
    d_total = hp.lam_input * d_total + hp.lam_output * (
        bce(model.output_discriminator.logits_map(out_real), REAL)
        + bce(model.output_discriminator.logits_map(out_fake), FAKE))
    opt_d.zero_grad(set_to_none=True)
    d_total.backward()
    opt_d.step()
    with frozen(model.input_discriminator, model.output_discriminator):
        translated = model.translate(fake, labels, depths)
        logits, depth = model.task_network(translated)
        far = hp.max_depth
        total = model.label_loss(logits, labels) + hp.lam_depth * model.depth_loss(depth / far, depths / far)
        total = total + hp.lam_input * bce(model.input_discriminator.logits_map(translated), REAL)
        d_out = model.output_discriminator.logits_map
        out_real = model.task_outputs(*model.task_network(real))
        total = total + hp.lam_output * (bce(d_out(model.task_outputs(logits, depth)), REAL) + bce(d_out(out_real), FAKE))
        opt_g.zero_grad(set_to_none=True)
        total.backward()
        opt_g.step()


def current_step(model: GIOAda, batch: tuple, optimizers: tuple) -> None:
    """What ``GIOAda.training_step`` runs (less Lightning's logging and the schedulers)."""
    opt_g, opt_d = optimizers
    outputs = model.forward_pass(*batch, generator=model.noise_generator(batch[0].device))
    model.discriminator_step(batch, opt_d, outputs)
    model.generator_step(batch, opt_g, outputs)


def current_bf16_step(model: GIOAda, batch: tuple, optimizers: tuple) -> None:
    with torch.autocast("cpu", dtype=torch.bfloat16):
        current_step(model, batch, optimizers)


VARIANTS: dict[str, Step] = {"baseline": baseline_step, "current": current_step, "current-bf16": current_bf16_step}


def make_batch(b: int, h: int, w: int) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(0)
    return (torch.rand(b, 3, h, w, generator=g) * 2 - 1, torch.rand(b, 3, h, w, generator=g) * 2 - 1,
            torch.randint(0, 10, (b, h, w), generator=g), torch.rand(b, 1, h, w, generator=g) * 79 + 1)


def fresh_model() -> tuple[GIOAda, tuple]:
    torch.manual_seed(0)
    model = GIOAda(**vars(ModelConfig()) | {"num_steps_per_epoch": 10**6}).train()
    (opt_g, opt_d), _ = model.configure_optimizers()
    return model, (opt_g, opt_d)


def steps_per_second(step: Step, batch: tuple, steps: int) -> tuple[float, float]:
    """(steps per wall-clock second, steps per CPU second of this process) after one warm-up step.

    CPU time counts the work whatever else the machine runs; with one torch thread it is the robust
    figure on a shared machine (with more, idle threads spinning at barriers count too)."""
    model, optimizers = fresh_model()
    step(model, batch, optimizers)  # warm-up: allocator and oneDNN primitive caches
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        step(model, batch, optimizers)
    return steps / (time.perf_counter() - wall), steps / (time.process_time() - cpu)


def flops(step: Step, batch: tuple) -> int:
    model, optimizers = fresh_model()
    with FlopCounterMode(display=False) as counter:
        step(model, batch, optimizers)
    return counter.get_total_flops()


def peak_gflops() -> tuple[float, str]:
    """fp32 peak of this CPU: cores × 2 FMA units × SIMD lanes × 2 FLOP × clock (the usual estimate)."""
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    lanes = 16 if " avx512f" in info else 8 if " avx2" in info else 4
    mhz = [float(line.split(":")[1]) for line in info.splitlines() if line.startswith("cpu MHz")]
    ghz = (max(mhz) if mhz else 2000.0) / 1000
    cores = torch.get_num_threads()
    return cores * 2 * lanes * 2 * ghz, f"{cores} cores × 2 FMA × {lanes} lanes × 2 × {ghz:.2f} GHz"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=6, help="timed steps per variant and round")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's, one per core)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    peak, how = peak_gflops()
    print(f"{platform.processor() or platform.machine()} CPU, {os.cpu_count()} cores, "
          f"{torch.get_num_threads()} torch threads; fp32 peak ≈ {peak:.0f} GFLOP/s ({how})")
    for name, h, w, b in SETTINGS:
        batch = make_batch(b, h, w)
        wall: dict[str, list[float]] = {v: [] for v in VARIANTS}
        cpu: dict[str, list[float]] = {v: [] for v in VARIANTS}
        for _ in range(args.rounds):
            for v, step in VARIANTS.items():
                w_rate, c_rate = steps_per_second(step, batch, args.steps)
                wall[v].append(w_rate)
                cpu[v].append(c_rate)
        print(f"\n{name}: {h}×{w}, batch {b}, {args.steps} steps × {args.rounds} alternating rounds")
        for v, step in VARIANTS.items():
            r, f = statistics.median(wall[v]), flops(step, batch)
            print(f"  {v:12s}: {r:6.2f} steps/s  {r * b:6.1f} source images/s  {f / 1e9:6.1f} GFLOP/step  "
                  f"{r * f / 1e9:6.1f} GFLOP/s ({100 * r * f / 1e9 / peak:.0f}% of peak)  "
                  f"{1000 / statistics.median(cpu[v]):6.0f} CPU ms/step")
        for v in ("current", "current-bf16"):
            for label, rates in (("wall clock", wall), ("CPU time", cpu)):
                ratios = [c / base for c, base in zip(rates[v], rates["baseline"])]
                print(f"  {v} / baseline ({label}): median {statistics.median(ratios):.2f}× "
                      f"(rounds: {', '.join(f'{x:.2f}' for x in ratios)})")


if __name__ == "__main__":
    main()

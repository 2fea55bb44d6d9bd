"""The CPU training step, before and after the speed work, side by side in one run.

``baseline`` is the training step as it was (commit c9d399c): G and T run once for the discriminator
step (without gradients) and again for the generator step, every network judges real and fake inputs in
separate calls, and the networks upsample with ``F.interpolate``. ``current`` is what
``GIOAda.training_step`` runs now: one forward pass of G and T shared by both steps, T and each
discriminator called once over the real and fake batch together, upsampling as two small matrix
products (``resize_bilinear``, the same function), channels-last weights and activations, Adam's fused
kernel, G's one-hot labels written in place, in a process whose allocator keeps freed memory
(``gioada.allocator.keep_freed_memory``, as ``python -m gioada`` and ``python app.py`` run).
``current-glibc`` is the same step with glibc's default allocator settings, ``current-nchw`` with NCHW
weights and activations (each change's share).
``current-bf16`` is ``current`` under CPU bf16 autocast (``--precision bf16-mixed``): fast only on CPUs
with native bf16 (AMX, AVX512-BF16). ``current-efficientnet`` is ``current`` with T's encoder the
ImageNet-pretrained EfficientNet-Lite0 (``--encoder efficientnet-lite0 --pretrained-backbone``): what that
lever costs a step.
Every variant updates the same networks from the same weights on the same pre-built batch (no
simulator), each measurement in a fresh process (the allocator's settings are process-wide), in
alternating rounds so machine load affects all alike; the median ratio is printed, with the FLOPs of one
step (``torch.utils.flop_counter``) and the share of the CPU's fp32 peak they reach.

    python bench/bench_step.py                      # both settings below, 5 rounds
    python bench/bench_step.py --rounds 9 --steps 8
    python bench/bench_step.py --isa native AVX512_CORE AVX2 --variants current current-nchw --threads 1

``--isa`` repeats the measurement with oneDNN held to each ISA (``ONEDNN_MAX_CPU_ISA``; ``native``: what
this CPU has, AMX included where present), so channels-last can be weighed against NCHW on every path a
user's CPU may take; name the CPU (``lscpu``) beside the figures.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
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
    # G's noise from the training generator, the same draw for both steps (the old step drew twice from
    # torch's global RNG): the arithmetic is then comparable with today's step (test_module.py).
    noise = model.noise_generator(real.device)
    drawn = noise.get_state()
    with torch.no_grad():
        translated = model.translate(fake, labels, depths, generator=noise)
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
    noise.set_state(drawn)
    with frozen(model.input_discriminator, model.output_discriminator):
        translated = model.translate(fake, labels, depths, generator=noise)
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


# Variant -> (step, whether its process keeps freed memory).
VARIANTS: dict[str, tuple[Step, bool]] = {
    "baseline": (baseline_step, False), "current-glibc": (current_step, False),
    "current-nchw": (current_step, True), "current": (current_step, True), "current-bf16": (current_bf16_step, True),
    "current-efficientnet": (current_step, True)}
# Variants that are today's step on another model: T with the ImageNet-pretrained EfficientNet-Lite0 encoder.
CONFIGS = {"current-efficientnet": {"encoder": "efficientnet-lite0", "pretrained_backbone": True}}


def make_batch(b: int, h: int, w: int) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(0)
    return (torch.rand(b, 3, h, w, generator=g) * 2 - 1, torch.rand(b, 3, h, w, generator=g) * 2 - 1,
            torch.randint(0, 10, (b, h, w), generator=g), torch.rand(b, 1, h, w, generator=g) * 79 + 1)


def fresh_model(variant: str = "current", **config) -> tuple[GIOAda, tuple]:
    """A model from fixed weights and its two optimizers: ``configure_optimizers``' (fused Adam), or for
    the baseline NCHW weights and torch's default Adam (a loop over the tensors on the CPU), as then.
    ``current-nchw`` differs from ``current`` in the layout only."""
    torch.manual_seed(0)
    model = GIOAda(**vars(ModelConfig()) | {"num_steps_per_epoch": 10**6} | config).train()
    (opt_g, opt_d), _ = model.configure_optimizers()
    if variant in ("baseline", "current-nchw"):
        model.to(memory_format=torch.contiguous_format)
    if variant == "baseline":
        opt_g, opt_d = (torch.optim.Adam(g["params"], lr=g["lr"], betas=g["betas"])      # as OneCycle set them
                        for g in (opt_g.param_groups[0], opt_d.param_groups[0]))
    return model, (opt_g, opt_d)


def steps_per_second(variant: str, batch: tuple, steps: int) -> tuple[float, float]:
    """(steps per wall-clock second, steps per CPU second of this process) after one warm-up step.

    CPU time counts the work whatever else the machine runs; with one torch thread it is the robust
    figure on a shared machine (with more, idle threads spinning at barriers count too)."""
    step = VARIANTS[variant][0]
    model, optimizers = fresh_model(variant, **CONFIGS.get(variant, {}))
    step(model, batch, optimizers)  # warm-up: allocator and oneDNN primitive caches
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        step(model, batch, optimizers)
    return steps / (time.perf_counter() - wall), steps / (time.process_time() - cpu)


def flops(variant: str, batch: tuple) -> int:
    step = VARIANTS[variant][0]
    model, optimizers = fresh_model(variant, **CONFIGS.get(variant, {}))
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


def measure(variant: str, setting: int, steps: int, threads: int | None, isa: str = "native") -> tuple[float, float]:
    """(steps/s wall clock, steps/s of CPU time) of ``variant`` at ``SETTINGS[setting]``, in a fresh process
    whose oneDNN is held to ``isa`` (``native``: not held)."""
    cmd = [sys.executable, __file__, "--child", variant, str(setting), "--steps", str(steps)]
    if threads:
        cmd += ["--threads", str(threads)]
    env = {k: v for k, v in os.environ.items() if k != "ONEDNN_MAX_CPU_ISA"}
    if isa != "native":
        env["ONEDNN_MAX_CPU_ISA"] = isa
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=Path(__file__).parent.parent, env=env)
    if out.returncode:
        raise SystemExit(f"{variant} failed:\n{out.stderr}")
    return tuple(json.loads(out.stdout.splitlines()[-1]))


def child(variant: str, setting: int, steps: int) -> None:
    if VARIANTS[variant][1]:
        from gioada.allocator import keep_freed_memory
        keep_freed_memory()
    _, h, w, b = SETTINGS[setting]
    print(json.dumps(steps_per_second(variant, make_batch(b, h, w), steps)))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=6, help="timed steps per variant and round")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's, one per core)")
    p.add_argument("--isa", nargs="+", default=["native"],
                   help="oneDNN ISAs to hold each measurement to, e.g. native AVX512_CORE AVX2 (default: native)")
    p.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS),
                   help="variants to measure (default: all)")
    p.add_argument("--child", nargs=2, metavar=("VARIANT", "SETTING"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.child:
        return child(args.child[0], int(args.child[1]), args.steps)
    peak, how = peak_gflops()
    print(f"{platform.processor() or platform.machine()} CPU, {os.cpu_count()} cores, "
          f"{torch.get_num_threads()} torch threads; fp32 peak ≈ {peak:.0f} GFLOP/s ({how})")
    variants = args.variants
    for isa in args.isa:
        for i, setting in enumerate(SETTINGS):
            report(isa, i, setting, variants, args)


def report(isa: str, i: int, setting: tuple, variants: list[str], args: argparse.Namespace) -> None:
    """Measure ``variants`` at ``setting`` under oneDNN ISA ``isa`` in alternating rounds; print rates and ratios."""
    name, h, w, b = setting
    peak, _ = peak_gflops()
    batch = make_batch(b, h, w)
    wall: dict[str, list[float]] = {v: [] for v in variants}
    cpu: dict[str, list[float]] = {v: [] for v in variants}
    for _ in range(args.rounds):
        for v in variants:
            w_rate, c_rate = measure(v, i, args.steps, args.threads, isa)
            wall[v].append(w_rate)
            cpu[v].append(c_rate)
    print(f"\n{name}: {h}×{w}, batch {b}, oneDNN ISA {isa}, {args.steps} steps × {args.rounds} alternating rounds")
    # FLOPs of the same networks; not of another model's (torch's counter also overcounts depthwise convolutions).
    counted = {v: flops(v, batch) for v in {"current"} | ({"baseline", "current-bf16"} & set(variants))}
    for v in variants:
        r, f = statistics.median(wall[v]), counted.get(v, None if v in CONFIGS else counted["current"])
        work = (f"{f / 1e9:6.1f} GFLOP/step  {r * f / 1e9:6.1f} GFLOP/s ({100 * r * f / 1e9 / peak:.0f}% of peak)"
                if f else "(FLOPs not counted)")
        print(f"  {v:20s}: {r:6.2f} steps/s  {r * b:6.1f} source images/s  {work}  "
              f"{1000 / statistics.median(cpu[v]):6.0f} CPU ms/step")
    for v, base in (("current", "baseline"), ("current", "current-nchw"), ("current", "current-glibc"),
                    ("current-bf16", "baseline"), ("current-bf16", "current"), ("current-efficientnet", "current")):
        if v not in variants or base not in variants:
            continue
        for label, rates in (("wall clock", wall), ("CPU time", cpu)):
            ratios = [c / b_ for c, b_ in zip(rates[v], rates[base])]
            print(f"  {v} / {base} ({label}): median {statistics.median(ratios):.2f}× "
                  f"(rounds: {', '.join(f'{x:.2f}' for x in ratios)})")


if __name__ == "__main__":
    main()

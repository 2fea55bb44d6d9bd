"""Training throughput: the Lightning GIOAda step vs a plain PyTorch loop of the same networks.

Both see the same pre-built batch (so the simulator's cost is excluded), and run in alternating
rounds so that machine load affects both alike. Also prints peak memory per step, and on a GPU
steps/s for fp32 and bf16-mixed at 256×768 and the largest batch that fits.

    python bench/bench_train.py                 # CPU default size (64×192, batch 8)
    python bench/bench_train.py --height 256 --width 768 --batch-size 8   # GPU size
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import warnings

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

import gioada.train  # noqa: F401  (importing it silences Lightning's console noise)
from gioada import DataConfig, GIOAda, ModelConfig
from gioada.inference import pick_device

warnings.filterwarnings("ignore", message=".*no `val_dataloader`.*")   # timing only: no validation


def make_batch(b: int, h: int, w: int, device: torch.device) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(0)
    batch = (torch.rand(b, 3, h, w, generator=g) * 2 - 1, torch.rand(b, 3, h, w, generator=g) * 2 - 1,
             torch.randint(0, 10, (b, h, w), generator=g), torch.rand(b, 1, h, w, generator=g) * 79 + 1)
    return tuple(t.to(device) for t in batch)


def plain_steps(model: GIOAda, batch: tuple[torch.Tensor, ...], steps: int) -> float:
    """The same update as GIOAda.training_step (its steps and schedulers) without Lightning; returns seconds."""
    (opt_g, opt_d), (sched_g, sched_d) = model.configure_optimizers()
    sync()
    start = time.perf_counter()
    for _ in range(steps):
        outputs = model.forward_pass(*batch, generator=model.noise_generator(batch[0].device))
        model.discriminator_step(batch, opt_d, outputs)
        model.generator_step(batch, opt_g, outputs)
        sched_g.step()
        sched_d.step()
    sync()
    return time.perf_counter() - start


class _Clock(pl.Callback):
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):  # noqa: ANN001
        if batch_idx == 1:  # the first batch pays Lightning's and the allocator's warm-up
            sync()
            self.start = time.perf_counter()

    def on_train_end(self, trainer, pl_module):  # noqa: ANN001
        sync()
        self.seconds = time.perf_counter() - self.start


def lightning_steps(model: GIOAda, batch: tuple[torch.Tensor, ...], steps: int, precision: str = "32-true") -> float:
    """``steps`` timed Lightning training steps (after one warm-up step); returns seconds."""
    cpu = tuple(t.cpu() for t in batch)
    data = TensorDataset(*(t.repeat(steps + 1, *([1] * (t.dim() - 1))) for t in cpu))
    clock = _Clock()
    trainer = pl.Trainer(max_epochs=1, accelerator="auto", devices=1, precision=precision, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         callbacks=[clock])
    trainer.fit(model, DataLoader(data, batch_size=batch[0].shape[0]))
    return clock.seconds


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def model_for(args: argparse.Namespace, steps: int) -> GIOAda:
    cfg = dataclasses.replace(ModelConfig(), num_steps_per_epoch=steps * 100)
    return GIOAda(**dataclasses.asdict(cfg))


def compare(args: argparse.Namespace) -> None:
    device = pick_device()
    batch = make_batch(args.batch_size, args.height, args.width, device)
    light, plain = [], []
    for _ in range(args.rounds):
        light.append(args.steps / lightning_steps(model_for(args, args.steps), batch, args.steps))
        m = model_for(args, args.steps).to(device).train()
        plain_steps(m, batch, 1)  # warm-up, like Lightning's first batch
        plain.append(args.steps / plain_steps(m, batch, args.steps))
    lm, pm = statistics.median(light), statistics.median(plain)
    print(f"training step, {args.height}×{args.width}, batch {args.batch_size}, {args.steps} steps × "
          f"{args.rounds} rounds on {describe(device)}")
    print(f"  Lightning GIOAda : {lm:.3f} steps/s  ({lm * args.batch_size:.1f} source images/s)")
    print(f"  plain PyTorch    : {pm:.3f} steps/s")
    print(f"  ratio Lightning/plain: {lm / pm:.3f}  (overhead {100 * (1 - lm / pm):+.1f}%)")


def peak_memory(args: argparse.Namespace) -> None:
    """Peak memory of a Lightning training step, measured in a fresh process per size."""
    if args.child:
        device = pick_device()
        batch = make_batch(args.batch_size, args.height, args.width, device)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        lightning_steps(model_for(args, 3), batch, 2)
        if device.type == "cuda":
            print(f"{torch.cuda.max_memory_allocated() / 2**20:.0f} MiB GPU")
        else:
            print(f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB RSS")
        return
    for h, w, b in ((64, 192, 8), (256, 768, 8)):
        out = subprocess.run([sys.executable, __file__, "--memory", "--child", "--height", str(h), "--width", str(w),
                              "--batch-size", str(b)], capture_output=True, text=True, check=True).stdout.strip()
        print(f"peak memory of a training step at {h}×{w}, batch {b}: {out.splitlines()[-1]}")


def gpu_figures(h: int, w: int, native_h: int, native_w: int, steps: int = 30) -> list[str]:
    """fp32 vs bf16-mixed Lightning steps/s, images/s and peak memory at h×w, batch 8, and the largest
    power-of-two batch that fits at the native size. On a CPU the same figures, without memory."""
    device = pick_device()
    cuda = device.type == "cuda"
    lines = []
    for precision in ("32-true", "bf16-mixed"):
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        try:
            sec = lightning_steps(model_for(None, steps), make_batch(8, h, w, device), steps, precision)
            mem = f", peak {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB GPU memory" if cuda else ""
            lines.append(f"{describe(device)} {precision} {h}×{w} batch 8: {steps / sec:.2f} steps/s, "
                         f"{steps * 8 / sec:.1f} images/s{mem}")
        except torch.OutOfMemoryError:
            lines.append(f"{precision} {h}×{w} batch 8: out of memory")
        finally:
            if cuda:
                torch.cuda.empty_cache()
    if not cuda:
        return lines + ["no GPU: the largest-batch search is skipped"]

    def fits(b: int) -> bool:
        try:
            lightning_steps(model_for(None, 2), make_batch(b, native_h, native_w, device), 1, "bf16-mixed")
            return True
        except torch.OutOfMemoryError:
            return False
        finally:
            torch.cuda.empty_cache()

    largest, b = 0, 1
    while b <= 1024 and fits(b):
        largest, b = b, b * 2
    return lines + [f"largest power-of-two batch that fits at the native {native_h}×{native_w} (bf16-mixed): "
                    f"{largest or 'none, not even 1'}"]


def gpu_report(args: argparse.Namespace) -> None:
    if not torch.cuda.is_available():
        print("no GPU: skipping the fp32 / bf16-mixed and largest-batch figures (bench/gpu.sh runs them)")
        return
    data = DataConfig()
    for line in gpu_figures(data.crop_height, data.crop_width, data.height, data.width):
        print(line)


def describe(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(0)
    return f"{platform.processor() or platform.machine()} CPU, {os.cpu_count()} cores, {torch.get_num_threads()} threads"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--height", type=int, default=64)
    p.add_argument("--width", type=int, default=192)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--memory", action="store_true", help="only the peak-memory figures")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    pl.seed_everything(0, verbose=False)
    if args.memory:
        peak_memory(args)
        return
    compare(args)
    peak_memory(args)
    gpu_report(args)


if __name__ == "__main__":
    main()

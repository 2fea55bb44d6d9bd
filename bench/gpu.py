"""Everything the project measures on a GPU, in one run that needs no network and no gradio.

On a CUDA machine with torch, Lightning, torchmetrics, numba, safetensors, matplotlib, pillow (and
pytest, for the first part) preinstalled, ``bash bench/gpu.sh`` runs, within ``--budget`` seconds:

1. the test suite's GPU-relevant tests (the ones that need no gradio), on the GPU where they pick a device;
2. the training benchmark: the Lightning step in fp32 and bf16-mixed (steps/s, images/s, peak GPU memory)
   and the largest batch that fits at the native size;
3. the app's default fine-tune through the library's FinetuneManager (what the app calls), on the GPU;
4. the shipped ``gioada`` model's run at its full length (3000 steps, or ``--steps``), timed alone;
5. the rest of the ablation (every row × 3 seeds, ``python -m gioada ablation``), several runs at a time,
   launching no new run once the budget is nearly spent (the ablation resumes where it stopped).
   ``--steps 6000`` trains the set at twice the length instead (the CPU's 3000-step set already exists;
   at 6000 steps the oracle reached 82 mIoU where it had 69). ``--screen`` trains the stabiliser screen
   instead (``gioada.ablation.SCREEN``: each candidate on top of gioada, 5 seeds, 1500 steps), into
   runs/gpu-screen (its summary: ``python -m gioada ablation --screen --out runs/gpu-screen --summary docs``).

Every figure goes to ``OUT/gpu.md``, printed at the end; the runs' metrics and logs are packed into
``OUT/ablation-metrics.tar.gz`` and the shipped rows' seed-0 weights into ``OUT/shipped-weights.tar.gz``.
``--smoke`` runs the same script in seconds with tiny settings (on the CPU too), to check it end to end.
"""
from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))          # runs on a GPU machine without installing the package
sys.path.insert(0, str(ROOT / "bench"))

GPU_TESTS = ["tests/test_module.py", "tests/test_networks.py", "tests/test_config.py", "tests/test_ablation.py",
             "tests/test_train_cli.py", "tests/test_evaluate.py", "tests/test_device.py"]
SMOKE_TRAIN = ["--steps", "4", "--val-every", "4", "--eval-scenes", "4", "--val-scenes", "2", "--height", "64",
               "--width", "192", "--crop-height", "32", "--crop-width", "96", "--task-width", "8",
               "--transform-width", "8", "--disc-width", "8"]


class Report:
    """Lines of markdown, written to ``path`` as they come (a run cut short still leaves its figures)."""

    def __init__(self, path: Path) -> None:
        self.path, self.lines = path, []

    def __call__(self, line: str = "") -> None:
        print(line, flush=True)
        self.lines.append(line)
        self.path.write_text("\n".join(self.lines) + "\n")


def section(report: Report, title: str, start: float) -> None:
    report(f"\n## {title}  (at {time.time() - start:.0f} s)\n")


def run_tests(report: Report, smoke: bool) -> None:
    tests = [t for t in GPU_TESTS if (ROOT / t).exists()]
    cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests]
    if smoke:
        cmd += ["-k", "device"]
    t0 = time.time()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=os.environ | {"GIOADA_TEST_THREADS": "4"})
    tail = (proc.stdout + proc.stderr).strip().splitlines()[-1:] or ["(no output)"]
    report(f"`{' '.join(cmd[1:])}`: {tail[0]} ({time.time() - t0:.0f} s)")


def training_benchmark(report: Report, smoke: bool) -> None:
    import bench_train

    from gioada.config import DataConfig
    data = DataConfig()
    h, w = (32, 96) if smoke else (data.crop_height, data.crop_width)
    for line in bench_train.gpu_figures(h, w, data.height, data.width, steps=3 if smoke else 30):
        report(f"- {line}")


def default_finetune(report: Report, smoke: bool) -> None:
    from gioada.app.finetune import FinetuneManager, FinetuneParams
    from gioada.app.registry import ModelRegistry
    runs = ROOT / "runs" / "gpu-finetune"
    manager = FinetuneManager(ModelRegistry(runs_dir=runs))
    params = FinetuneParams(steps=3, batch_size=2, height=32) if smoke else FinetuneParams()
    t0 = time.time()
    job = manager.start(params)
    snap = job.wait()
    report(f"- default fine-tune ({params.steps} steps, batch {params.batch_size}, crops {params.height}×"
           f"{params.width}, start from {params.start_from or 'scratch'}) on {manager.device}: "
           f"{snap.state}, {time.time() - t0:.1f} s wall, "
           f"{snap.steps_per_second or 0:.2f} steps/s; {snap.message}")


def ablation(report: Report, smoke: bool, budget_end: float, jobs: int, steps: int | None,
             screen: bool = False) -> Path:
    from gioada.ablation import ABLATION, SCREEN, markdown, pending, summarise, train_all
    study = SCREEN if screen else ABLATION
    name = f"gpu-{study.name}" + (f"-{steps}" if steps else "") + ("-smoke" if smoke else "")
    out = ROOT / "runs" / name
    extra = ["--device", "auto", *(["--steps", str(steps)] if steps else []), *(SMOKE_TRAIN if smoke else [])]
    t0 = time.time()
    train_all(out, ["gioada"], [0], jobs=1, threads=4, extra=extra, log=lambda s: report(f"- {s}"), study=study)
    report(f"- `gioada` seed 0 at its full length, alone: {time.time() - t0:.0f} s wall "
           f"(train time and steps/s in its run.json below)")
    rows, seeds = list(study.rows), [0] if smoke else list(study.seeds)
    while pending(out, rows, seeds) and time.time() < budget_end:
        batch = pending(out, rows, seeds)[:jobs]
        train_all(out, sorted({r for r, _ in batch}, key=rows.index), sorted({s for _, s in batch}), jobs=jobs,
                  threads=max(1, (os.cpu_count() or 2) // jobs), extra=extra, log=lambda s: report(f"- {s}"),
                  study=study)
    left = pending(out, rows, seeds)
    report(f"- runs still owed: {len(left)} (`python -m gioada ablation{' --screen' if screen else ''} "
           f"--out {out.relative_to(ROOT)} "
           f"-- --device auto{f' --steps {steps}' if steps else ''}` resumes them)")
    summary = summarise(out, tuple(study.rows))
    report("\n" + markdown(summary))
    for row, s in summary.items():
        for seed, r in s["seeds"].items():
            report(f"- {row} {seed}: {r['train_seconds']} s training on {r['hardware']}")
    return out


def pack(out: Path, dest: Path) -> None:
    with tarfile.open(dest / "ablation-metrics.tar.gz", "w:gz") as tar:
        for p in sorted(out.rglob("*")):
            if p.is_file() and p.suffix != ".safetensors":
                tar.add(p, arcname=str(p.relative_to(out.parent)))
    with tarfile.open(dest / "shipped-weights.tar.gz", "w:gz") as tar:
        for p in sorted(out.glob("*/seed0/model.safetensors")):
            tar.add(p, arcname=str(p.relative_to(out.parent)))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=os.environ.get("OUT") or str(ROOT / "runs" / "gpu"))
    p.add_argument("--budget", type=float, default=450, help="seconds; no new ablation run starts after it")
    p.add_argument("--jobs", type=int, default=6, help="ablation runs at once")
    p.add_argument("--smoke", action="store_true", help="tiny settings: checks the script end to end in seconds")
    p.add_argument("--screen", action="store_true", help="train the stabiliser screen (5 seeds of each candidate) "
                   "instead of the ablation, into runs/gpu-screen")
    p.add_argument("--steps", type=int, default=None, help="train every ablation run this long instead of the "
                   "ablation's 3000 steps, into runs/gpu-ablation-STEPS (6000: the oracle at 3000 is undertrained)")
    a = p.parse_args()
    start = time.time()
    dest = Path(a.out)
    dest.mkdir(parents=True, exist_ok=True)
    report = Report(dest / "gpu.md")
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU (CPU only)"
    report(f"# GPU figures: {gpu}\n\ntorch {torch.__version__}, Python {platform.python_version()}, "
           f"{os.cpu_count()} CPU cores; `bash bench/gpu.sh{' --smoke' if a.smoke else ''}`")
    section(report, "1. GPU-relevant tests", start)
    run_tests(report, a.smoke)
    section(report, "2. Training step: fp32 vs bf16-mixed", start)
    training_benchmark(report, a.smoke)
    section(report, "3. The app's default fine-tune, through FinetuneManager", start)
    default_finetune(report, a.smoke)
    section(report, "4-5. The shipped model at full length, then the ablation", start)
    out = ablation(report, a.smoke, start + a.budget, a.jobs, a.steps, a.screen)
    pack(out, dest)
    report(f"\ntotal {time.time() - start:.0f} s")
    print("\n" + (dest / "gpu.md").read_text())


if __name__ == "__main__":
    main()

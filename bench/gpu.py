"""Everything the project measures on a GPU, in one run that needs no network and no gradio.

On a CUDA machine with torch, Lightning, torchmetrics, numba, safetensors, matplotlib, pillow (and
pytest, for the tests) preinstalled, ``bash bench/gpu.sh`` runs the ``--parts`` in the order given, within
``--budget`` seconds (a part other than training is skipped once under a minute is left):

- ``tests``: the test suite's GPU-relevant tests (the ones that need no gradio);
- ``bench``: the Lightning step in fp32 and bf16-mixed (steps/s, images/s, peak GPU memory) and the largest
  batch that fits at the native size;
- ``finetune``: the app's default fine-tune through the library's FinetuneManager (what the app calls);
- ``train``: training waves. ``--wave ROW,ROW[@STEPS]`` (repeatable) trains those rows × the study's seeds at
  a length (the study's own without ``@``) into runs/gpu-ablation[-STEPS], ``--jobs`` runs at a time; a batch
  starts only if the slowest pace so far says it ends within the budget (the first always starts), and a
  failed run prints the end of its log and stops. Without ``--wave``: every row at ``--steps``.
  ``--screen`` trains the stabiliser screen's rows instead (``gioada.ablation.SCREEN``), ``--final`` the final
  set's (``gioada.ablation.FINAL``: every row with the ImageNet encoder, 3 seeds, 6000 steps).

Every figure goes to ``OUT/gpu.md``, printed at the end. After every finished run, the runs' metrics and logs
are packed into ``OUT/ablation-metrics.tar.gz`` and each row's median-validation seed's weights (the one the
app ships) into ``OUT/weights-N.tar`` (at most 15 MiB each: what the device machine sends back), so a run cut
short still returns what it finished. ``--smoke`` runs the same script in seconds with tiny settings (on the
CPU too), to check it end to end.
"""
from __future__ import annotations

import argparse
import os
import platform
import shlex
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))          # runs on a GPU machine without installing the package
sys.path.insert(0, str(ROOT / "bench"))
if TYPE_CHECKING:
    from gioada.ablation import Study

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


def parse_wave(text: str) -> tuple[list[str], int | None]:
    """``"ROW,ROW@STEPS"`` (or ``"ROW,ROW"``: the study's length) -> (rows, steps)."""
    rows, _, steps = text.partition("@")
    return [r for r in rows.split(",") if r], int(steps) if steps else None


def train_waves(report: Report, smoke: bool, deadline: float, jobs: int, waves: list[tuple[list[str], int | None]],
                dest: Path, study: Study | None = None, train_args: tuple[str, ...] = ()) -> list[Path]:
    """Train each wave's rows × the study's seeds at its length, ``jobs`` runs at a time, into
    runs/gpu-STUDY[-STEPS]. A batch of runs starts only if the slowest run so far says it ends before
    ``deadline`` (the first always starts); the results are packed into ``dest`` after every finished run.
    ``study``: a ``gioada.ablation.Study`` (default: the ablation)."""
    from gioada.ablation import ABLATION, markdown, pending, summarise, train_all
    study = study or ABLATION
    outs: list[Path] = []
    pace: list[float] = []                        # seconds per step of each finished run
    lock = threading.Lock()

    def log(line: str) -> None:
        with lock:
            report(f"- {line}")
            if " done in " in line:
                pack(outs, dest, report)

    for rows, steps in waves:
        unknown = set(rows) - set(study.rows)
        if unknown:
            raise SystemExit(f"unknown rows {sorted(unknown)}: choose from {', '.join(study.rows)}")
        length = steps or int(study.train_args[study.train_args.index("--steps") + 1])
        out = ROOT / "runs" / (f"gpu-{study.name}" + (f"-{steps}" if steps else "") + ("-smoke" if smoke else ""))
        outs.append(out)
        extra = ["--device", "auto", *(["--steps", str(steps)] if steps else []), *(SMOKE_TRAIN if smoke else []), *train_args]
        seeds = [0] if smoke else list(study.seeds)
        while todo := pending(out, rows, seeds):
            batch = todo[:jobs]
            needed = max(pace) * length * 1.1 if pace else 0.0
            if time.time() + needed > deadline:
                report(f"- not started: {len(todo)} runs of {', '.join(rows)} at {length} steps (about "
                       f"{needed:.0f} s each at the pace so far, {max(0.0, deadline - time.time()):.0f} s left)")
                break
            t0 = time.time()
            results = train_all(out, rows, seeds, jobs=len(batch), threads=max(1, (os.cpu_count() or 2) // len(batch)),
                                extra=extra, log=log, study=study, only=batch)
            failed = [(r, s) for r, s, code in results if code]
            for r, s in failed:
                tail = (out / r / f"seed{s}.log").read_text(errors="replace").strip().splitlines()[-15:]
                report(f"- {r} seed {s} FAILED; the end of its log:\n\n```\n" + "\n".join(tail) + "\n```")
            if failed:
                return outs
            pace.append((time.time() - t0) / length)
        summary = summarise(out, tuple(rows))
        report(f"\n{out.relative_to(ROOT)} ({length} steps):\n\n" + markdown(summary) + "\n")
        for row, s in summary.items():
            for seed, r in s["seeds"].items():
                report(f"- {row} {seed}: {r['train_seconds']} s training on {r['hardware']}")
    return outs


def pack(outs: list[Path], dest: Path, report: Report | None = None) -> None:
    """Every run's metrics and logs into ``ablation-metrics.tar.gz``; the weights of each row's median-
    validation seed (the one to ship) into ``weights-N.tar`` files of at most 15 MiB (what comes back)."""
    from gioada.ablation import median_validation_seed
    with tarfile.open(dest / "ablation-metrics.tar.gz.tmp", "w:gz") as tar:
        for out in outs:
            for p in sorted(out.rglob("*")):
                if p.is_file() and p.suffix != ".safetensors":
                    tar.add(p, arcname=str(p.relative_to(out.parent)))
    (dest / "ablation-metrics.tar.gz.tmp").replace(dest / "ablation-metrics.tar.gz")
    chosen = [p / "model.safetensors" for out in outs for row in sorted(q.name for q in out.iterdir() if q.is_dir())
              if (p := median_validation_seed(out, row)) is not None]
    groups: list[list[Path]] = [[]]
    for w in chosen:
        if groups[-1] and sum(x.stat().st_size for x in groups[-1]) + w.stat().st_size > 15 * 2**20:
            groups.append([])
        groups[-1].append(w)
    for n, group in enumerate(g for g in groups if g):
        if n >= 6:                                    # 8 files come back: gpu.md, the metrics, 6 of weights
            if report:
                report(f"- weights left out (8 files come back): {[str(w) for w in group]}")
            continue
        with tarfile.open(dest / f"weights-{n + 1}.tar.tmp", "w") as tar:
            for w in group:
                tar.add(w, arcname=str(w.relative_to(w.parents[2].parent)))
        (dest / f"weights-{n + 1}.tar.tmp").replace(dest / f"weights-{n + 1}.tar")


PARTS = {"tests": "GPU-relevant tests", "bench": "Training step: fp32 vs bf16-mixed",
         "finetune": "The app's default fine-tune, through FinetuneManager", "train": "Training the set"}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=os.environ.get("OUT") or str(ROOT / "runs" / "gpu"))
    p.add_argument("--budget", type=float, default=450, help="seconds; no part or batch of runs starts that "
                   "would end after it")
    p.add_argument("--jobs", type=int, default=6, help="training runs at once")
    p.add_argument("--parts", default="tests,bench,finetune,train",
                   help=f"comma-separated, run in this order: {', '.join(PARTS)}")
    p.add_argument("--smoke", action="store_true", help="tiny settings: checks the script end to end in seconds")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--screen", action="store_true", help="train the stabiliser screen (5 seeds of each "
                       "candidate) instead of the ablation, into runs/gpu-screen")
    which.add_argument("--final", action="store_true", help="train the final set (every row with the ImageNet "
                       "encoder, 3 seeds, 6000 steps) instead of the ablation, into runs/gpu-final")
    p.add_argument("--steps", type=int, default=None, help="train every ablation run this long instead of the "
                   "ablation's 3000 steps, into runs/gpu-ablation-STEPS (6000: the oracle at 3000 is undertrained)")
    p.add_argument("--wave", action="append", default=[], metavar="ROW,ROW[@STEPS]",
                   help="rows to train (3 seeds each) at a length, instead of every row at --steps; repeat for "
                   "several, trained in order, each only if the pace so far says it fits the budget")
    p.add_argument("--train-args", default="", help="more `python -m gioada train` flags for every run, e.g. "
                   "'--num-workers 1' (a loader process renders the simulator's scenes beside each run)")
    a = p.parse_args()
    start = time.time()
    dest = Path(a.out)
    dest.mkdir(parents=True, exist_ok=True)
    report = Report(dest / "gpu.md")
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU (CPU only)"
    report(f"# GPU figures: {gpu}\n\ntorch {torch.__version__}, Python {platform.python_version()}, "
           f"{os.cpu_count()} CPU cores; `bash bench/gpu.sh {' '.join(sys.argv[1:])}`")
    from gioada.ablation import ABLATION, FINAL, SCREEN
    study = SCREEN if a.screen else FINAL if a.final else ABLATION
    waves = [parse_wave(w) for w in a.wave] or [(list(study.rows), a.steps)]
    deadline = start + a.budget
    for n, part in enumerate(a.parts.split(","), 1):
        if part not in PARTS:
            raise SystemExit(f"unknown part {part!r}: choose from {', '.join(PARTS)}")
        if part != "train" and time.time() > deadline - 60:
            report(f"\n(skipped {part}: under a minute of the budget left)")
            continue
        section(report, f"{n}. {PARTS[part]}", start)
        if part == "tests":
            run_tests(report, a.smoke)
        elif part == "bench":
            training_benchmark(report, a.smoke)
        elif part == "finetune":
            default_finetune(report, a.smoke)
        else:
            outs = train_waves(report, a.smoke, deadline, a.jobs, waves, dest, study,
                               tuple(shlex.split(a.train_args)))
            pack(outs, dest, report)
    report(f"\ntotal {time.time() - start:.0f} s")
    print("\n" + (dest / "gpu.md").read_text())


if __name__ == "__main__":
    main()

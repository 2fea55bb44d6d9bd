"""The ablation: every row of the results table trained with several seeds, resumably, and its summary.

Each row is a set of ``python -m gioada train`` flags on top of one shared command, so a row is a
setting of the one ``GIOAda``, and a run is re-created by the command stored beside it. Runs land in
``OUT/ROW/seedS``; a finished run (its folder exists: runs are written atomically) is never retrained,
so an interrupted ablation resumes where it stopped.

    python -m gioada ablation --out runs/ablation --jobs 2          # train what is missing
    python -m gioada ablation --out runs/ablation --summary docs    # docs/ablation.json + .md
    python -m gioada ablation --screen --jobs 2                     # the stabiliser screen, into runs/screen
    python -m gioada ablation --screen --summary docs               # docs/screen.json + .md
    python -m gioada ablation --final --jobs 2                      # the final set, into runs/final

A *collapse* is one definition everywhere: a seed more than ``COLLAPSE_MARGIN`` (10) mIoU points below its
row's median over seeds.
"""
from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch

from .checkpoint import CONFIG, LOG, METRICS, RUN_INFO, read_json
from .constants import COLLAPSE_MARGIN
from .inference import inference_mode, predicted_classes

# T's encoder with ImageNet's weights (EfficientNet-Lite0, shipped in assets/backbones/), where ours learns
# from scratch: the paper's and ADVENT/DADA's backbones start from ImageNet.
IMAGENET = ("--encoder", "efficientnet-lite0", "--pretrained-backbone")
# Row name -> train flags. The first six are the paper's ablation; the three split rows switch off one use
# of geometry each (no-depth switches off all three). gioada-content is not in the paper: the full method with
# a content constraint on G (a lever against the input-level game's collapses). The -imagenet rows are
# source-only, gioada and oracle with the ImageNet encoder. gioada.pretrained.SHIPPED says which runs
# assets/ ships.
ROWS: dict[str, tuple[str, ...]] = {
    "source-only": ("--lam-input", "0", "--lam-output", "0"),
    "input-only": ("--lam-output", "0"),
    "output-only": ("--lam-input", "0"),
    "no-depth": ("--lam-depth", "0", "--no-transform-depth", "--no-output-disc-depth"),
    "gioada": (),
    "oracle": ("--oracle", "--lam-input", "0", "--lam-output", "0"),
    "no-depth-loss": ("--lam-depth", "0"),
    "no-g-depth": ("--no-transform-depth",),
    "no-dout-depth": ("--no-output-disc-depth",),
    "gioada-content": ("--lam-content", "1"),
    "source-only-imagenet": ("--lam-input", "0", "--lam-output", "0", *IMAGENET),
    "gioada-imagenet": IMAGENET,
    "oracle-imagenet": ("--oracle", "--lam-input", "0", "--lam-output", "0", *IMAGENET),
}
# The shipped length: 128×384 native frames, random 64×192 crops, batch 8 (the config's defaults).
TRAIN_ARGS = ("--steps", "3000", "--val-every", "500", "--eval-scenes", "500", "--half")
SEEDS = (0, 1, 2)
THIN = ("pole", "traffic light", "traffic sign")
# A curve has levelled off where no later validation is more than this many mIoU points higher (about the
# oracle's seed-to-seed std at 6000 steps, 1.2; four times the spread of resampling the test scenes, 0.26).
LEVEL_TOLERANCE = 1.0

# The stabiliser screen (issue 26): the full method with one candidate each, 5 seeds, at a length that still
# shows gioada's collapses. The first six change only the optimisation; label-dropout changes the objective;
# imagenet changes only where T's encoder starts (ImageNet's weights instead of random ones).
SCREEN_ROWS: dict[str, tuple[str, ...]] = {
    "gioada": (),
    "ttur": ("--d-lr-scale", "0.25"),
    "spectral-norm": ("--spectral-norm",),
    "lsgan": ("--gan-loss", "lsgan"),
    "label-smoothing": ("--d-label-smoothing", "0.1"),
    "warmup": ("--warmup-steps", "300"),
    "ema": ("--ema-decay", "0.999"),
    "label-dropout": ("--label-dropout", "0.5"),
    "imagenet": IMAGENET,
}
SCREEN_ARGS = ("--steps", "1500", "--val-every", "250", "--eval-scenes", "200", "--half")


@dataclass(frozen=True)
class Study:
    """A set of rows (name -> train flags) trained with shared flags and seeds into ``OUT/ROW/seedS``."""

    name: str                          # names the summary files: DOCS/NAME.json, .md, DOCS/NAME/ROW/seedS/
    rows: dict[str, tuple[str, ...]]
    train_args: tuple[str, ...]
    seeds: tuple[int, ...]
    out: str                           # default folder of its runs


ABLATION = Study("ablation", ROWS, TRAIN_ARGS, SEEDS, "runs/ablation")
SCREEN = Study("screen", SCREEN_ROWS, SCREEN_ARGS, (0, 1, 2, 3, 4), "runs/screen")
# The final set (issue 26 §2): every ablation row with the lever the screen chose (T's encoder from ImageNet's
# weights: the only candidate beyond gioada's seed spread), at the length the validation curves call for (6000
# steps: the oracle's gain over 3000 is three times its spread; README), 3 seeds.
FINAL = Study("final", {row: (*flags, *IMAGENET) for row, flags in ROWS.items() if not row.endswith("-imagenet")},
              ("--steps", "6000", "--val-every", "500", "--eval-scenes", "500", "--half"), SEEDS, "runs/final")


def collapses(values: Sequence[float]) -> list[bool]:
    """Which seeds collapsed: more than ``COLLAPSE_MARGIN`` points below the median of ``values``."""
    median = statistics.median(values)
    return [v < median - COLLAPSE_MARGIN for v in values]


def run_dir(out: str | Path, row: str, seed: int) -> Path:
    return Path(out) / row / f"seed{seed}"


def command(out: str | Path, row: str, seed: int, extra: Sequence[str] = (), study: Study = ABLATION) -> list[str]:
    """The train command of ``study``'s ``row`` with ``seed`` (``extra`` flags last, so they win)."""
    return [sys.executable, "-m", "gioada", "train", "--out", str(run_dir(out, row, seed)), *study.rows[row],
            "--seed", str(seed), *study.train_args, *extra]


def pending(out: str | Path, rows: Sequence[str], seeds: Sequence[int]) -> list[tuple[str, int]]:
    """(row, seed) pairs without a finished run (no metrics), seeds first (seed 0 of every row, then seed 1, ...)."""
    return [(r, s) for s in seeds for r in rows if not (run_dir(out, r, s) / METRICS).is_file()]


def set_aside(path: Path) -> Path | None:
    """Rename an unfinished run folder (e.g. a sitting that ended mid-run) to ``seedS.incomplete[-N]``.

    Returns the new path, or None when there was nothing to move. Nothing is deleted.
    """
    if not path.exists():
        return None
    target, n = path.with_name(path.name + ".incomplete"), 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.incomplete-{n}")
    return path.rename(target)


def train_all(out: str | Path, rows: Sequence[str] = tuple(ROWS), seeds: Sequence[int] = SEEDS, jobs: int = 1,
              threads: int = 1, extra: Sequence[str] = (), log=print,
              study: Study = ABLATION, only: Sequence[tuple[str, int]] | None = None) -> list[tuple[str, int, int]]:
    """Train every missing (row, seed) (of ``only``, when given), ``jobs`` at a time with ``threads`` torch
    threads each.

    Returns ``(row, seed, exit code)`` per run started. Each run's console output goes to
    ``OUT/ROW/seedS.log``.
    """
    unknown = set(rows) - set(study.rows)
    if unknown:
        raise ValueError(f"unknown rows {sorted(unknown)}: choose from {', '.join(study.rows)}")
    todo = [job for job in pending(out, rows, seeds) if only is None or job in only]
    log(f"{len(todo)} runs to train in {out} ({jobs} at a time, {threads} threads each)")
    env = os.environ | {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}

    def one(job: tuple[str, int]) -> tuple[str, int, int]:
        row, seed = job
        path = run_dir(out, row, seed)
        path.parent.mkdir(parents=True, exist_ok=True)
        moved = set_aside(path)
        if moved is not None:
            log(f"{row} seed {seed}: unfinished run kept as {moved}; training it again")
        start = time.time()
        with open(path.parent / f"seed{seed}.log", "w") as f:
            code = subprocess.run(command(out, row, seed, extra, study), stdout=f, stderr=subprocess.STDOUT,
                                  env=env).returncode
        log(f"{row} seed {seed}: {'done' if code == 0 else f'FAILED (exit {code})'} in {time.time() - start:.0f} s")
        return row, seed, code

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(one, todo))


def _finished(out: str | Path, row: str) -> list[Path]:
    """The finished runs of ``row`` (folders ``seedS`` with metrics), by seed."""
    return sorted((p for p in Path(out, row).glob("seed*") if p.is_dir() and (p / METRICS).is_file()),
                  key=lambda p: int(p.name[4:]))


def _inference(target: dict[str, Any]) -> str:
    """How a stored evaluation predicted frames (those written before the field existed: whole frames)."""
    return target.get("inference", inference_mode(None))


def _mean_std(values: list[float]) -> dict[str, Any]:
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else None,
            "n": len(values), "values": values, "worst": min(values), "collapses": sum(collapses(values))}


def summarise(out: str | Path, rows: Sequence[str] = tuple(ROWS)) -> dict[str, Any]:
    """Every finished seed's metrics and command, and per row the mean ± std over seeds (sample std), the
    worst seed and the count of collapses (:func:`collapses`)."""
    summary: dict[str, Any] = {}
    for row in rows:
        runs = {}
        for p in _finished(out, row):
            target = read_json(p, METRICS)["target"]
            info = read_json(p, RUN_INFO)
            runs[p.name] = {"miou": target["miou"], "per_class_iou": target["per_class_iou"], "depth": target["depth"],
                            "scenes": target["scenes"], "inference": _inference(target),
                            "command": info.get("command"),
                            "hardware": info.get("hardware"), "train_seconds": info.get("train_seconds")}
        if not runs:
            continue
        per_class = {c: statistics.fmean(r["per_class_iou"][c] for r in runs.values())
                     for c in next(iter(runs.values()))["per_class_iou"]}
        summary[row] = {"seeds": runs, "miou": _mean_std([r["miou"] for r in runs.values()]),
                        "thin_miou": _mean_std([statistics.fmean(r["per_class_iou"][c] for c in THIN)
                                                for r in runs.values()]),
                        "per_class_iou_mean": per_class}
    return summary


def validation_curve(run: str | Path) -> list[tuple[int, float]]:
    """(steps trained, validation mIoU in %) at each validation in a run's ``log.csv``; empty when it logged none."""
    import csv
    path = Path(run) / LOG
    if not path.is_file():
        return []
    with open(path, newline="") as f:      # Lightning logs the step index: after 500 steps, 499
        return [(int(float(row["step"])) + 1, 100 * float(row["val/miou"]))
                for row in csv.DictReader(f) if row.get("val/miou")]


def final_validation(run: str | Path) -> float | None:
    """The last validation mIoU (%) in a run's ``log.csv`` (None when it logged none)."""
    curve = validation_curve(run)
    return curve[-1][1] if curve else None


def levels_off(curve: Sequence[tuple[int, float]], tolerance: float = LEVEL_TOLERANCE) -> int | None:
    """The first step of ``curve`` (:func:`validation_curve`) from which no later validation is more than
    ``tolerance`` points higher: where training has levelled off. None when only the last validation is (the
    run was still rising when it ended), or the curve is empty."""
    for i, (step, value) in enumerate(curve[:-1]):
        if all(later - value <= tolerance for _, later in curve[i + 1:]):
            return step
    return None


def curves_figure(runs: Sequence[str | Path], path: str | Path, tolerance: float = LEVEL_TOLERANCE) -> list[dict]:
    """Every run's validation curve in one figure (a colour per row, a line style per seed; a dot where it
    levels off, :func:`levels_off`), saved to ``path``. Returns, per run, its label, steps, last validation
    and level-off step. A run is a folder ``ROW/seedS`` with a ``log.csv``."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows: dict[str, Any] = {}
    found, styles = [], ["-", "--", ":", "-."]
    fig, ax = plt.subplots(figsize=(9, 5), dpi=110)
    for run in map(Path, runs):
        curve = validation_curve(run)
        if not curve:
            raise ValueError(f"{run} has no validation in its {LOG}")
        colour = rows.setdefault(run.parent.name, f"C{len(rows) % 10}")
        seed = int(run.name[4:]) if run.name[4:].isdigit() else 0
        steps, values = zip(*curve)
        label = f"{run.parent.name} {run.name} ({steps[-1]} steps)"
        ax.plot(steps, values, styles[seed % len(styles)], color=colour, label=label, linewidth=1.4)
        flat = levels_off(curve, tolerance)
        if flat is not None:
            ax.plot([flat], [dict(curve)[flat]], "o", color=colour, markersize=6)
        found.append({"run": label, "steps": steps[-1], "final": values[-1], "levels_off": flat})
    ax.set_xlabel("training step")
    ax.set_ylabel("validation mIoU (%), held-out target scenes")
    ax.set_title(f"Validation curves (dot: levels off, no later validation more than {tolerance:g} mIoU "
                 f"point{'' if tolerance == 1 else 's'} higher)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return found


def median_validation_seed(out: str | Path, row: str) -> Path | None:
    """The finished run of ``row`` whose final validation mIoU is the median over its seeds (the lower middle
    for an even count): the seed to ship, as HRDA and MIC ship theirs. None when no seed has finished."""
    scored = sorted(((v, p) for p in _finished(out, row) if (v := final_validation(p)) is not None),
                    key=lambda vp: vp[0])
    return scored[(len(scored) - 1) // 2][1] if scored else None


def reevaluate(out: str | Path, log=print) -> list[Path]:
    """Evaluate every finished run again where its ``metrics.json`` comes from another inference mode
    (``inference.inference_mode``: runs evaluated on whole frames before window-by-window prediction), on as
    many test scenes as before. The earlier figures stay in ``metrics.json`` under ``superseded``.
    Returns the runs re-evaluated."""
    from .checkpoint import load_model, load_run_config
    from .evaluate import evaluate

    done = []
    for row in ROWS:
        for p in _finished(out, row):
            metrics, data = read_json(p, METRICS), load_run_config(p).data
            old = metrics["target"]
            if _inference(old) == inference_mode(data.window):
                continue
            new = evaluate(load_model(p), data, "target", old["scenes"])
            metrics |= {"target": new, "superseded": [*metrics.get("superseded", []), old]}
            tmp = p / f".{METRICS}.tmp"
            tmp.write_text(json.dumps(metrics, indent=2) + "\n")
            tmp.replace(p / METRICS)
            log(f"{row} {p.name}: target mIoU {old['miou']:.1f} ({_inference(old)}) -> "
                f"{new['miou']:.1f} ({new['inference']})")
            done.append(p)
    return done


def markdown(summary: dict[str, Any]) -> str:
    """The README's table: target mIoU mean ± std over seeds, thin classes, per-class means."""
    short = ["road", "bldg", "pole", "light", "sign", "veg", "terr", "sky", "car", "truck"]
    head = "| row | seeds | target mIoU | worst | collapses | pole+light+sign | " + " | ".join(short) + " |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for row, s in summary.items():
        pm = lambda d: f"{d['mean']:.1f} ± {d['std']:.1f}" if d["std"] is not None else f"{d['mean']:.1f}"  # noqa: E731
        per_class = " | ".join("–" if v != v else f"{v:.1f}" for v in s["per_class_iou_mean"].values())  # NaN: absent
        lines.append(f"| `{row}` | {s['miou']['n']} | **{pm(s['miou'])}** | {s['miou']['worst']:.1f} | "
                     f"{s['miou']['collapses']} | {pm(s['thin_miou'])} | {per_class} |")
    return "\n".join(lines)


@torch.no_grad()
def evaluation_spread(run: str | Path, scenes: int = 500, resamples: int = 1000, seed: int = 0) -> dict[str, float]:
    """How much a run's target mIoU moves with the choice of test scenes: the std of the mIoU over
    ``resamples`` bootstrap resamples of its ``scenes`` test scenes (scene-level, as the table pools pixels).
    Compare it with the seed-to-seed std: the table's ordering means something only where seeds differ more."""
    import numpy as np

    from .checkpoint import load_model, load_run_config
    from .data import eval_set
    from .metrics import confusion, miou_of

    model, cfg = load_model(run), load_run_config(run)
    k = model.hparams.num_classes
    test = eval_set(cfg.data, "target", scenes)
    per_scene = np.stack([confusion(predicted_classes(model(image[None])[0])[0], labels, k)
                          for image, labels, _ in (test[i] for i in range(len(test)))])   # scenes×K×K
    rng = np.random.default_rng(seed)
    boot = [100 * miou_of(per_scene[rng.integers(0, scenes, scenes)].sum(0)) for _ in range(resamples)]
    return {"miou": 100 * miou_of(per_scene.sum(0)), "bootstrap_std": float(np.std(boot, ddof=1)), "scenes": scenes}


@torch.no_grad()
def translation_check(run: str | Path, scenes: int = 48) -> dict[str, Any]:
    """Does G carry source images toward the target domain, or does it paint by label?

    The simulator renders each held-out test scene in both domains, so G(source) can be compared with the
    target rendering of the very same scene: ``source_to_target`` and ``translated_to_target`` are mean
    absolute pixel differences (images in [-1, 1]; not 0 even for a perfect G, as the target domain draws
    its own object colours). ``miou_translated`` is T's mIoU on G(source) (source labels), ``miou_target``
    on the target rendering (part of the difference is the domain gap any G leaves).

    The control for painting by label: G is given scene i's image with scene i+1's label map, and T's
    prediction on that translation is scored against the labels G was given (``swapped_follows_labels``)
    and against the scene in the image (``swapped_follows_scene``); ``labels_overlap`` is the mIoU of one
    scene's labels against the other's (what agreeing with the wrong map earns by chance). A G that encodes
    the labels it is given in the image makes T follow them. G's noise is drawn with seed 0. Simulator only.
    """
    import numpy as np

    from .checkpoint import load_model, load_run_config
    from .data import eval_set
    from .evaluate import label_swap
    from .metrics import confusion, miou_of

    model, cfg = load_model(run), load_run_config(run)
    if not (cfg.data.source == cfg.data.target == "sim"):
        raise ValueError(f"{run} trained on datasets on disk: only the simulator renders the same scene in both "
                         "domains, which this check needs")
    k = model.hparams.num_classes
    source, target = eval_set(cfg.data, "source", scenes), eval_set(cfg.data, "target", scenes)
    n = len(source)
    gap, moved = [], []
    conf = {name: np.zeros((k, k), np.int64) for name in ("translated", "target", "given", "scene", "overlap")}
    for i in range(n):
        (x_s, y_s, d_s), (x_t, y_t, _), y_other = source[i], target[i], source[(i + 1) % n][1]
        translated = model.translate(x_s[None], y_s[None], d_s[None], seed=0)             # 1×3×H×W
        gap.append((x_s - x_t).abs().mean().item())
        moved.append((translated[0] - x_t).abs().mean().item())
        pred = predicted_classes(model(torch.cat([translated, x_t[None]]))[0])            # 2×H×W
        conf["translated"] += confusion(pred[0], y_s, k)
        conf["target"] += confusion(pred[1], y_t, k)
        given, scene = label_swap(model, x_s[None], y_s[None], y_other[None], d_s[None])  # scene i, labels i+1
        conf["given"] += given
        conf["scene"] += scene
        conf["overlap"] += confusion(y_other, y_s, k)
    miou = {name: 100 * miou_of(c) for name, c in conf.items()}
    return {"source_to_target": float(np.mean(gap)), "translated_to_target": float(np.mean(moved)),
            "miou_translated": miou["translated"], "miou_target": miou["target"],
            "swapped_follows_labels": miou["given"], "swapped_follows_scene": miou["scene"],
            "labels_overlap": miou["overlap"], "scenes": n}


def adapts_input(run: str | Path) -> bool:
    """Whether the run trained G (λ_in > 0): the rows :func:`translation_check` is about."""
    from .checkpoint import load_run_config
    return load_run_config(run).model.lam_input > 0


@torch.no_grad()
def translation_figure(out: str | Path, row: str, scene: int = 3) -> Any:
    """Held-out test scene ``scene``: its source rendering, G(source) of each finished seed of ``row``, and
    its target rendering, captioned and stacked (H'×W×3 uint8)."""
    import numpy as np

    from .checkpoint import load_model, load_run_config
    from .data import eval_set, tensor_to_image
    from .panels import captioned

    runs = _finished(out, row)
    if not runs:
        raise ValueError(f"no finished run of {row!r} in {out}")
    data = load_run_config(runs[0]).data
    x_s, y_s, d_s = eval_set(data, "source", scene + 1)[scene]
    x_t = eval_set(data, "target", scene + 1)[scene][0]
    panels = [captioned(tensor_to_image(x_s), f"test scene {scene}: source rendering")]
    for p in runs:
        translated = load_model(p).translate(x_s[None], y_s[None], d_s[None], seed=0)[0]
        panels.append(captioned(tensor_to_image(translated), f"G(source), {row} {p.name}"))
    panels.append(captioned(tensor_to_image(x_t), "target rendering of the same scene (what G should produce)"))
    return np.concatenate(panels, axis=0)


RECORDS = (CONFIG, METRICS, RUN_INFO, LOG)   # what is kept of each run (weights are not)


def write_translations(out: str | Path, docs: str | Path, scenes: int = 48) -> dict[str, Any]:
    """``DOCS/ablation/translations.json`` (:func:`translation_check` of every finished run that trained G)
    and ``translations.jpg`` (:func:`translation_figure` of ``gioada``). Needs the runs' weights."""
    from PIL import Image

    checks: dict[str, Any] = {}
    for row in ROWS:
        for p in _finished(out, row):
            if adapts_input(p):
                checks.setdefault(row, {})[p.name] = translation_check(p, scenes)
    dest = Path(docs, "ablation")
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "translations.json").write_text(json.dumps(checks, indent=1) + "\n")
    if _finished(out, "gioada"):
        Image.fromarray(translation_figure(out, "gioada")).save(dest / "translations.jpg", quality=90)
    return checks


def write_summary(out: str | Path, docs: str | Path, study: Study = ABLATION) -> dict[str, Any]:
    """``DOCS/NAME.json`` and ``.md`` (NAME: the study's, e.g. ``ablation``) from the finished runs, and each
    run's records (config, metrics, command and timing, training log) under ``DOCS/NAME/ROW/seedS/``, to be
    committed."""
    summary = summarise(out, tuple(study.rows))
    for row, s in summary.items():
        for seed in s["seeds"]:
            dest = Path(docs, study.name, row, seed)
            dest.mkdir(parents=True, exist_ok=True)
            for name in RECORDS:
                if Path(out, row, seed, name).is_file():
                    shutil.copyfile(Path(out, row, seed, name), dest / name)
    Path(docs).mkdir(parents=True, exist_ok=True)
    Path(docs, f"{study.name}.json").write_text(json.dumps(summary, indent=1) + "\n")
    Path(docs, f"{study.name}.md").write_text(markdown(summary) + "\n")
    return summary

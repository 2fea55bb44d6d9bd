"""The results of the shipped models: the ablation table, the comparison figure and the shift sweep.

``python -m gioada report`` re-creates every figure and number the README shows.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .checkpoint import RUN_INFO, load_model, load_run_config, read_json
from .classes import VKITTI10
from .data import eval_scene_seed, sample_to_tensors, sim_shift, tensor_to_image
from .evaluate import discriminator_confidence, evaluate, input_discriminator_by_component
from .inference import predicted_classes
from .module import GIOAda
from .pretrained import available, resolve_run
from .sim import render
from .viz import colorize_labels

# The paper's Virtual KITTI -> KITTI ablation (mIoU, 10 classes), for the table beside ours.
PAPER_MIOU = {"source-only": 37.5, "input-only": 45.9}


def evaluate_shipped(scenes: int = 200, names: list[str] | None = None, progress: bool = True) -> dict[str, Any]:
    """Every shipped model on ``scenes`` held-out scenes of both domains, plus discriminator confidence."""
    results: dict[str, Any] = {}
    for name in names or available():
        run = resolve_run(name)
        model, cfg = load_model(run), load_run_config(run)
        results[name] = {d: evaluate(model, cfg.data, d, scenes, progress=progress) for d in ("target", "source")}
        if model.adapts:
            results[name]["discriminators"] = discriminator_confidence(model, cfg.data)
        if model.hparams.lam_input > 0 and cfg.data.target == "sim":
            results[name]["d_in_real_without"] = input_discriminator_by_component(model, cfg.data)
        info = read_json(run, RUN_INFO)
        results[name]["train"] = {k: info.get(k) for k in ("command", "hardware", "steps_done", "train_seconds")}
    return results


def markdown_table(results: dict[str, Any]) -> str:
    """The README's results table: target mIoU, per-class IoU, source mIoU and depth metrics."""
    short = ["road", "bldg", "pole", "light", "sign", "veg", "terr", "sky", "car", "truck"]
    head = ("| model | target mIoU | source mIoU | paper (VKITTI→KITTI) | " + " | ".join(short)
            + " | abs rel | RMSE (m) | δ<1.25 |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for name, r in results.items():
        t, s = r["target"], r["source"]
        paper = PAPER_MIOU.get(name, "higher" if name == "gioada" else "")
        per_class = " | ".join(f"{v:.1f}" for v in t["per_class_iou"].values())
        d = t["depth"]
        lines.append(f"| `{name}` | **{t['miou']:.1f}** | {s['miou']:.1f} | {paper} | {per_class} | "
                     f"{d['abs_rel']:.3f} | {d['rmse']:.2f} | {d['delta1']:.3f} |")
    return "\n".join(lines)


@torch.no_grad()
def comparison_figure(models: dict[str, GIOAda], data_cfg, seeds: list[int], path: str | Path) -> Path:
    """Rows of held-out target scenes: image, ground truth, and each model's prediction."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    cols = ["target image", "ground truth", *models]
    fig, axes = plt.subplots(len(seeds), len(cols), figsize=(3.2 * len(cols), 1.25 * len(seeds) + 0.9),
                             squeeze=False)
    for row, i in enumerate(seeds):
        image, labels, _ = sample_to_tensors(render(eval_scene_seed(i), "target", data_cfg.height, data_cfg.width,
                                                    sim_shift(data_cfg)))
        panels = [tensor_to_image(image), colorize_labels(labels.numpy())]
        for model in models.values():
            panels.append(colorize_labels(predicted_classes(model(image[None])[0])[0].numpy()))
        for col, panel in enumerate(panels):
            ax = axes[row, col]
            ax.imshow(panel)
            ax.set_xticks([]), ax.set_yticks([])
            if row == 0:
                ax.set_title(cols[col], fontsize=11)
    handles = [Patch(color=np.array(c) / 255, label=n) for n, c in zip(VKITTI10.classes, VKITTI10.colors)]
    fig.legend(handles=handles, loc="lower center", ncol=10, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def shift_sweep(names: list[str], strengths: list[float], scenes: int, path: str | Path) -> dict[str, list[float]]:
    """Target mIoU against shift strength for each named model; plots it to ``path``."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves: dict[str, list[float]] = {}
    for name in names:
        run = resolve_run(name)
        model, cfg = load_model(run), load_run_config(run)
        curves[name] = [evaluate(model, dataclasses.replace(cfg.data, shift=s), "target", scenes)["miou"]
                        for s in strengths]
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for name, ys in curves.items():
        ax.plot(strengths, ys, marker="o", label=name)
    ax.axvline(1.0, color="grey", linestyle=":", label="trained at (default shift)")
    ax.set_xlabel("target-domain shift strength")
    ax.set_ylabel(f"target mIoU (%), {scenes} held-out scenes")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return curves


def write_report(out_dir: str | Path = "docs", scenes: int = 200, sweep_scenes: int = 64) -> dict[str, Any]:
    """Evaluate the shipped models and write ``results.json``, ``results.md`` and the two figures."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results = evaluate_shipped(scenes)
    swept = [n for n in ("source-only", "gioada", "gioada-content") if n in results]   # and in the comparison
    compared = swept + [n for n in ("oracle",) if n in results]
    if swept:
        models = {n: load_model(resolve_run(n)) for n in compared}
        comparison_figure(models, load_run_config(resolve_run(swept[0])).data, [0, 1, 2, 3], out / "comparison.png")
        strengths = [0.0, 0.5, 1.0, 1.5, 2.0]
        results["shift_sweep"] = {"strengths": strengths, "scenes": sweep_scenes,
                                  "miou": shift_sweep(swept, strengths, sweep_scenes, out / "shift_sweep.png")}
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "results.md").write_text(markdown_table({k: v for k, v in results.items() if k != "shift_sweep"}) + "\n")
    return results

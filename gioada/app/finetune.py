"""Fine-tuning from the app: validated parameters, one run at a time on the compute thread, live progress.

:class:`FinetuneParams` holds what the Fine-tune tab sets (with the ablation's :data:`PRESETS`);
:class:`FinetuneManager` runs :func:`gioada.train.train` on a :class:`~gioada.app.serving.ComputeThread` (other
work takes turns between its steps) with a Lightning callback that
records every logged loss and the discriminators' confidences, times the steps, refreshes a preview of a
fixed scene, and stops the run promptly when asked (``trainer.should_stop``). Its :class:`FinetuneJob`
is read as :class:`Snapshot` copies. Whatever happens the run ends with a message: finished, stopped
(what was trained is kept), diverged (NaN/inf: the last good weights are kept), out of memory (with
advice), or failed. Runs are saved atomically under ``runs_dir`` with names that cannot leave it; the
shipped models are never written to.
"""
from __future__ import annotations

import csv
import dataclasses
import functools
import logging
import os
import re
import shlex
import tempfile
import threading
import time
import unicodedata
from concurrent import futures
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, NamedTuple, Sequence

import numpy as np

from ..allocator import release_freed_memory
from ..checkpoint import clean_stale_temporaries, save_run
from ..classes import VKITTI10, LabelSpace, get_label_space
from ..cli import train_command
from ..config import DataConfig, ModelConfig, RunConfig, scheduled
from ..constants import COLLAPSE_MARGIN
from ..data import eval_set, tensor_to_image
from ..data.real import source_has_depth
from ..inference import pick_device, predicted_classes
from ..lazy import no_grad, torch
from ..panels import tile_row
from ..viz import overlay
from .registry import RUN_NAME, RUN_PREFIX, ModelRegistry
from .serving import ComputeThread
from .validation import LIMITS, check_int, check_number

if TYPE_CHECKING:   # training machinery (Lightning) is imported when a run starts: see _run
    import pytorch_lightning as pl
    from pytorch_lightning.callbacks import Callback

    from ..module import GIOAda

log = logging.getLogger(__name__)

_M = ModelConfig()
# (lam_input, lam_output, lam_depth) of the paper's ablation, as presets for the sliders.
PRESETS: dict[str, tuple[float, float, float]] = {
    "No adaptation": (0.0, 0.0, _M.lam_depth),
    "Input only": (_M.lam_input, 0.0, _M.lam_depth),
    "Output only": (0.0, _M.lam_output, _M.lam_depth),
    "Full GIO-Ada": (_M.lam_input, _M.lam_output, _M.lam_depth),
}


def preset_named(lam_input: float, lam_output: float, lam_depth: float) -> str | None:
    """The preset with exactly these lambdas, or None."""
    return next((n for n, v in PRESETS.items() if v == (lam_input, lam_output, lam_depth)), None)


def preset(name: str, depth: bool = True) -> tuple[float, float, float]:
    """(lam_input, lam_output, lam_depth) of a named preset; ``depth=False`` (a source without depth, such
    as GTA5) turns the depth loss off."""
    if not isinstance(name, str) or name not in PRESETS:
        raise ValueError(f"unknown preset {str(name)[:40]!r}: choose one of {', '.join(PRESETS)}")
    lam_input, lam_output, lam_depth = PRESETS[name]
    return lam_input, lam_output, lam_depth if depth else 0.0


MAX_RUN_NAME = 48
# The preview (G and T on a fixed scene at the native frame, on the compute thread) refreshes at most once
# per PREVIEW_SECONDS of training, and after the last step: one preview took 1.0 s at 128×384 on the 2-core
# CPU under load, so the former preview every few steps cost a watched run much of its speed.
PREVIEW_SECONDS = 15.0
# With each preview, T is measured on WATCH_SCENES held-out target scenes and the label-swap check runs on as
# many source scenes (together 0.6 s at 128×384 on one thread, 2-core EPYC, beside two training runs: about
# 4% of a run's time at one check per 15 s): a run whose mIoU there falls more than the ablation's collapse
# margin below the best it has reached (its start included) is flagged while it trains.
WATCH_SCENES = 4
# The label-swap check on the same number of source scenes (gioada.evaluate.label_swap): G is given each
# image with another scene's labels; T following those labels this many mIoU points more than the scene in
# the image means G paints by label. (Shipped `gioada`, 8 scenes: 33.8 against 32.5; `gioada-content`: 23.2
# against 46.8.)
LABEL_MARGIN = 5.0
LABEL_WARNING = (
    "Label-painting warning (step {step}): given another scene's label map, G's translation makes T predict "
    "those labels (mIoU {given:.1f} against them) more than the scene in the image ({scene:.1f}). G is "
    "encoding the labels it is given instead of translating the scene, and T learns from that. What helps: "
    "G's content constraint (the gioada-content row: python -m gioada train --lam-content 1), label dropout, "
    "or a smaller λ_in.")
COLLAPSE_WARNING = (
    "Collapse warning: target mIoU on {n} held-out scenes fell from {best:.1f} (step {best_step}) to {now:.1f} "
    "(step {step}), more than {margin:.0f} points. Adversarial training is unstable: the adversaries can "
    "overpower T's supervised loss, and G can start to encode the labels it is given instead of the scene. "
    "What helps: a smaller λ_in or learning rate, or another seed; Stop keeps what was trained so far.")


class RunInProgress(RuntimeError):
    """A second Start while a run trains."""


# ---------------------------------------------------------------------------------------------------
# Memory: refuse what cannot fit, before anything is built
# ---------------------------------------------------------------------------------------------------
# Peak memory of a training run grows with batch × crop pixels. Measured once on this machine's CPU
# (default widths 16/16/16, float32, torch 1 thread): a 2-step train() in a fresh process, peak RSS
# (ru_maxrss) minus RSS before, at batch 2 / 64×192 -> 173 MB, batch 8 / 64×192 -> 382 MB,
# batch 16 / 128×384 -> 2193 MB: 2.65-2.83 KB per training pixel, plus ~110 MB. We use 2.9 KB and
# 300 MB (evaluation at the native frame, the preview, Lightning), and keep 20% of free memory spare for
# Explore and the app. On a GPU the same activations live in device memory (free memory from the driver).
BYTES_PER_TRAIN_PIXEL = 2900
RUN_BASE_BYTES = 300 * 2**20
MEMORY_HEADROOM = 0.8


def available_memory(device: torch.device) -> int:
    """Bytes a new run may use: free GPU memory on a GPU, else the kernel's MemAvailable (else all RAM)."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def estimate_run_memory(batch_size: int, height: int, width: int) -> int:
    """Peak bytes of a run training ``batch_size`` crops of ``height × width`` (see the measurement above)."""
    return RUN_BASE_BYTES + BYTES_PER_TRAIN_PIXEL * batch_size * height * width


def check_memory(batch_size: int, height: int, width: int, device: torch.device) -> None:
    """ValueError naming the largest batch (and image height) that fits, if the run would not fit."""
    need, free = estimate_run_memory(batch_size, height, width), available_memory(device)
    budget = int(free * MEMORY_HEADROOM)
    if need <= budget:
        return
    where = "the GPU" if device.type == "cuda" else "this machine"
    largest = (budget - RUN_BASE_BYTES) // (BYTES_PER_TRAIN_PIXEL * height * width)
    advice = (f"the largest batch that fits at {height}×{width} is {largest}" if largest >= 1
              else f"not even batch 1 fits at {height}×{width}")
    heights = [x for x in range(min(height, int(LIMITS["height"][1])) - 16, int(LIMITS["height"][0]) - 1, -16)
               if estimate_run_memory(batch_size, x, 3 * x) <= budget]
    if heights:
        advice += f"; at batch {batch_size}, image height {heights[0]} (×{3 * heights[0]}) fits"
    raise ValueError(f"Not enough memory: batch {batch_size} at {height}×{width} needs about {need / 2**30:.1f} GB, "
                     f"but {where} has {free / 2**30:.1f} GB free. Nothing was started: {advice}.")


# ---------------------------------------------------------------------------------------------------
# Parameters
# ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FinetuneParams:
    """What the Fine-tune tab sets. Training crops are ``height × 3·height`` (KITTI's aspect) of the native frame."""

    lam_input: float = _M.lam_input
    lam_output: float = _M.lam_output
    lam_depth: float = _M.lam_depth
    lr: float = 1e-3
    steps: int = 150
    batch_size: int = 4
    height: int = 48
    seed: int = 0
    start_from: str = ""                  # "" = from scratch, else a ModelRegistry key
    run_name: str = ""                    # "" = named after the preset and the time

    @property
    def width(self) -> int:
        return 3 * self.height

    @classmethod
    def validated(cls, **values: Any) -> "FinetuneParams":
        """Check and convert raw values (from sliders or an API call); errors name the valid range."""
        unknown = set(values) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown fine-tuning parameter(s) {sorted(unknown)}")
        out: dict[str, Any] = {}
        for name in ("lam_input", "lam_output", "lam_depth", "lr"):
            if name in values:
                out[name] = check_number(name, values[name], *LIMITS[name])
        for name in ("steps", "batch_size", "height", "seed"):
            if name in values:
                out[name] = check_int(name, values[name], *LIMITS[name])
        if "height" in out and out["height"] % 16:
            raise ValueError(f"height={out['height']} is invalid: expected a multiple of 16 in "
                             f"[{LIMITS['height'][0]:g}, {LIMITS['height'][1]:g}] (the width is 3 × height)")
        for name in ("start_from", "run_name"):
            v = values.get(name)
            if v is None:
                continue
            if not isinstance(v, str) or len(v) > 200:
                raise ValueError(f"{name} must be a short text, got {str(v)[:40]!r}")
            out[name] = v.strip()
        return cls(**out)


def safe_run_name(text: str) -> str:
    """A user's run name -> a folder name that stays inside ``runs/``: lower-case letters, digits, '.', '-'
    and '_', starting with a letter or digit (no '..', no '/', no hidden names), at most 48 characters."""
    text = unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode().lower()
    name = re.sub(r"[^a-z0-9._-]+", "-", text)
    name = re.sub(r"[-.]*-[-.]*", "-", name)             # "/../" and friends -> one dash
    name = re.sub(r"\.{2,}", ".", name).strip("._-")[:MAX_RUN_NAME].strip("._-")
    if not name:
        raise ValueError(f"run name {str(text)[:40]!r} has no letters or digits: use e.g. 'full-gioada-1'")
    assert RUN_NAME.match(name), name
    return name


def _unique_dir(runs_dir: Path, name: str) -> Path:
    base, n = name, 2
    # Only finished runs take a name: a temporary folder a killed save left behind never does.
    while (runs_dir / name).exists():
        suffix = f"-{n}"
        name, n = base[:MAX_RUN_NAME - len(suffix)] + suffix, n + 1
    path = runs_dir / name
    # Belt and braces: the name is already restricted to [a-z0-9._-] without leading dots.
    if path.resolve().parent != runs_dir.resolve():
        raise ValueError(f"run name {name!r} would leave {runs_dir}")
    return path


def device_note(device: torch.device | None = None) -> str:
    """Which device fine-tuning uses, and what that means for speed (Markdown)."""
    device = device or pick_device()
    if device.type == "cuda":
        return (f"**Device: GPU** ({torch.cuda.get_device_name(device)}). Each step takes milliseconds: "
                "raise the steps, batch and image size freely.")
    n = torch.get_num_threads()
    return (f"**Device: CPU** ({n} thread{'s' if n > 1 else ''}; no GPU found). The defaults are sized to finish "
            "in a couple of minutes here; larger images and batches slow every step down proportionally, "
            "and a GPU would be one to two orders of magnitude faster.")


# ---------------------------------------------------------------------------------------------------
# A run's live state
# ---------------------------------------------------------------------------------------------------
FINISHED = ("done", "stopped", "diverged", "oom", "failed")


@dataclass
class Snapshot:
    """A consistent copy of a run's state for display."""

    version: int
    state: str                            # preparing, training, evaluating, saving, or one of FINISHED
    run_name: str
    step: int
    total: int
    elapsed: float
    steps_per_second: float | None
    eta_seconds: float | None
    history: list[dict[str, float]]       # one row per step: "step" and every logged "train/..." value
    preview: np.ndarray | None
    message: str
    before: dict[str, Any] | None         # evaluate() of the starting weights on held-out target scenes
    after: dict[str, Any] | None
    run_key: str | None                   # ModelRegistry key of the saved run
    params: FinetuneParams
    watch: list[tuple[int, float]] = dataclasses.field(default_factory=list)   # (step, mIoU on WATCH_SCENES)
    warning: str = ""                     # COLLAPSE_WARNING and/or LABEL_WARNING, once the watch has seen them

    @property
    def finished(self) -> bool:
        return self.state in FINISHED


class FinetuneJob:
    """One fine-tuning run on the compute thread. Read it with :meth:`snapshot` or :meth:`updates`."""

    def __init__(self, params: FinetuneParams, cfg: RunConfig, out_dir: Path) -> None:
        self.params, self.cfg, self.out_dir = params, cfg, out_dir
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._version = 0
        self._state, self._message = "preparing", "Preparing: building the model and measuring it before training…"
        self._step, self._history, self._preview = 0, [], None
        self._t0 = time.perf_counter()
        self._train_t0: float | None = None
        self._rate: float | None = None
        self._before = self._after = None
        self._run_key: str | None = None
        self._watch: list[tuple[int, float]] = []
        self._warnings: dict[str, str] = {}             # "collapse", "labels": each said once, in order seen
        self.future: Future | None = None             # the run on the compute thread; done when it ended

    # -- written by the run, on the compute thread -------------------------------------------------------
    def _update(self, **changes: Any) -> None:
        with self._cond:
            for k, v in changes.items():
                setattr(self, "_" + k, v)
            self._version += 1
            self._cond.notify_all()

    def _record(self, step: int, metrics: dict[str, float], preview: np.ndarray | None) -> None:
        now = time.perf_counter()
        with self._cond:
            if step == 1:
                self._train_t0 = now
            elif step > 1:
                # Steps/s over the steps after the first (the first includes Lightning's warm-up).
                self._rate = (step - 1) / max(now - self._train_t0, 1e-9)
            self._step = step
            if metrics:
                self._history.append({"step": step, **metrics})
            if preview is not None:
                self._preview = preview
            self._version += 1
            self._cond.notify_all()

    def _watched(self, step: int, miou: float, swap: tuple[float, float] | None = None) -> None:
        """The watch at ``step``: the target mIoU, and the label-swap check's (mIoU against the labels G was
        given, against the scene) where G runs. Flags, once each, a collapse (:data:`COLLAPSE_WARNING`: more
        than ``COLLAPSE_MARGIN`` below the best so far) and label painting (:data:`LABEL_WARNING`)."""
        with self._cond:
            self._watch.append((step, miou))
            best_step, best = max(self._watch, key=lambda w: w[1])
            if best - miou > COLLAPSE_MARGIN:
                self._warnings.setdefault("collapse", COLLAPSE_WARNING.format(
                    n=WATCH_SCENES, best=best, best_step=best_step, now=miou, step=step, margin=COLLAPSE_MARGIN))
            if swap is not None and swap[0] - swap[1] >= LABEL_MARGIN:
                self._warnings.setdefault("labels", LABEL_WARNING.format(step=step, given=swap[0], scene=swap[1]))
            self._version += 1
            self._cond.notify_all()

    # -- read by anyone ----------------------------------------------------------------------------------
    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def request_stop(self) -> None:
        self._stop.set()
        if not self.snapshot().finished:
            self._update(message="Stopping after the current step; what was trained so far will be kept…")

    def snapshot(self) -> Snapshot:
        with self._cond:
            total = self.cfg.steps
            eta = (total - self._step) / self._rate if self._rate and self._state == "training" else None
            return Snapshot(
                version=self._version, state=self._state, run_name=self.out_dir.name, step=self._step, total=total,
                elapsed=time.perf_counter() - self._t0, steps_per_second=self._rate, eta_seconds=eta,
                history=list(self._history), preview=self._preview, message=self._message, before=self._before,
                after=self._after, run_key=self._run_key, params=self.params, watch=list(self._watch),
                warning=" ".join(self._warnings.values()))

    def updates(self, min_interval: float = 0.75, timeout: float = 3600 * 24) -> Iterator[Snapshot]:
        """Snapshots as the run progresses, at most one per ``min_interval`` s, ending with the final one."""
        seen, deadline = -1, time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._cond:
                self._cond.wait_for(lambda: self._version != seen, timeout=min_interval * 4)
            snap = self.snapshot()
            if snap.version != seen:
                seen = snap.version
                yield snap
            if snap.finished:
                return
            time.sleep(min_interval)

    def wait(self, timeout: float | None = None) -> Snapshot:
        if self.future is not None:
            futures.wait([self.future], timeout)
        return self.snapshot()


class _Progress:
    """Streams a run's progress into its :class:`FinetuneJob`; keeps the last good weights; obeys Stop.

    Lightning's hooks; :func:`_progress` makes it a ``Callback`` once Lightning is imported."""

    def __init__(self, job: FinetuneJob, preview_scene: tuple[torch.Tensor, ...], space_name: str,
                 compute: ComputeThread, watch: Watch) -> None:
        self.job, self.scene, self.space, self.compute = job, preview_scene, get_label_space(space_name), compute
        self.watch = watch                            # the held-out scenes the run is watched on
        self.module: GIOAda | None = None
        self.good_state: dict[str, torch.Tensor] | None = None   # the weights before the current step
        self._live: list[torch.Tensor] = []                       # the module's state tensors, in the same order
        self.good_step = 0
        self.steps = 0
        self.previewed = 0.0                          # time.monotonic() of the last preview

    def on_train_start(self, trainer: pl.Trainer, pl_module: GIOAda) -> None:
        self.module = pl_module
        if self.job.stop_requested:
            trainer.should_stop = True                # Stop pressed while preparing: not a single step
            return
        self.job._update(state="training", message="Training…")
        self.previewed = time.monotonic()             # the starting weights' preview was drawn while preparing
        state = pl_module.state_dict()
        self._live = [v.detach() for v in state.values()]
        self.good_state = {k: v.detach().clone() for k, v in state.items()}

    @no_grad
    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: GIOAda, batch: Any, batch_idx: int) -> None:
        # A copy of the weights before each step: if the step diverges, these are the last good ones. Copied
        # into buffers allocated once (a fresh clone of every tensor per step cost 3-10% of a small step).
        for good, live in zip(self.good_state.values(), self._live):
            good.copy_(live)
        self.good_step = self.steps
        self.compute.begin_step()

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: GIOAda, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        self.compute.end_step()
        self._record(trainer, pl_module)

    def _record(self, trainer: pl.Trainer, pl_module: GIOAda) -> None:
        self.steps += 1
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()
                   if k.startswith("train/") and torch.as_tensor(v).numel() == 1}
        image = None
        if time.monotonic() - self.previewed >= PREVIEW_SECONDS and self.steps < self.job.cfg.steps:
            image = preview(pl_module, *self.scene, space=self.space)
            self.job._watched(self.steps, *watch(pl_module, self.watch))
            self.previewed = time.monotonic()
        self.job._record(self.steps, metrics, image)
        if self.job.stop_requested:
            trainer.should_stop = True

    def on_train_end(self, trainer: pl.Trainer, pl_module: GIOAda) -> None:
        # The trained weights' preview, after the training loop (train's timer has stopped), as evaluation.
        if self.steps:
            self.job._record(self.steps, {}, preview(pl_module, *self.scene, space=self.space))
            self.job._watched(self.steps, *watch(pl_module, self.watch))
        self.job._update(state="evaluating", message="Evaluating on held-out target scenes…")


def _progress(job: FinetuneJob, preview_scene: tuple[torch.Tensor, ...], space_name: str,
              compute: ComputeThread, watch: Watch) -> _Progress:
    return _progress_class()(job, preview_scene, space_name, compute, watch)


@functools.cache
def _progress_class() -> type[_Progress]:
    from pytorch_lightning.callbacks import Callback
    return type("ProgressCallback", (_Progress, Callback), {})


class Watch(NamedTuple):
    """The held-out scenes a run is watched on: target images N×3×H×W and labels N×H×W; source images,
    labels and depth N×1×H×W for the label-swap check."""

    target: torch.Tensor
    target_labels: torch.Tensor
    source: torch.Tensor
    source_labels: torch.Tensor
    source_depth: torch.Tensor


@no_grad
def watch(model: GIOAda, scenes: Watch) -> tuple[float, tuple[float, float] | None]:
    """(target mIoU %, the label-swap check's (mIoU against the labels G was given, against the scene) or
    None when G is bypassed) of ``model`` on ``scenes``, each pooled over the scenes."""
    from ..evaluate import label_swap  # loaded with the training machinery already
    from ..metrics import confusion, miou_of
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        s = Watch(*(t.to(device) for t in scenes))
        pred = predicted_classes(model(s.target)[0])
        miou = 100 * miou_of(confusion(pred, s.target_labels, model.hparams.num_classes))
        swap = None
        if model.transforms:
            given, scene = label_swap(model, s.source, s.source_labels, s.source_labels.roll(1, 0), s.source_depth)
            swap = (100 * miou_of(given), 100 * miou_of(scene))
    finally:
        model.train(was_training)
    return miou, swap


@no_grad
def preview(model: GIOAda, image: torch.Tensor, labels: torch.Tensor, depth: torch.Tensor, target: torch.Tensor,
            space: LabelSpace = VKITTI10) -> np.ndarray:
    """The preview strip: source | G(source) | T's segmentation of the target image (a fixed scene)."""
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        x_s, y, d, x_t = (t[None].to(device) for t in (image, labels, depth, target))
        translated = model.translate(x_s, y, d)
        pred = predicted_classes(model(x_t)[0])[0].cpu().numpy()
    finally:
        model.train(was_training)
    prediction = overlay(tensor_to_image(target), pred, 0.7, space)
    return tile_row([(tensor_to_image(image), "source"), (tensor_to_image(translated[0]), "G(source)"),
                     (prediction, "prediction on target")], scale=2 if image.shape[-1] <= 256 else 1)


# ---------------------------------------------------------------------------------------------------
# The manager: one run at a time
# ---------------------------------------------------------------------------------------------------
class FinetuneManager:
    """Starts, stops and reports fine-tuning runs, one at a time, saving them under ``registry.runs_dir``.

    Args:
        registry: where starting models come from and where runs are saved.
        data: the data to train on (the simulator by default, or datasets on disk).
        eval_scenes: held-out target scenes for the before/after evaluation.
        accelerator: "auto" (GPU when present), "cpu" or "gpu".
        compute: the thread that runs every torch computation (runs hold it, their steps take turns).
    """

    def __init__(self, registry: ModelRegistry, *, data: DataConfig | None = None, eval_scenes: int = 24,
                 accelerator: str = "auto", compute: ComputeThread | None = None) -> None:
        self.registry, self.data = registry, data or DataConfig()
        self.compute = compute or ComputeThread()
        self.eval_scenes, self.accelerator = eval_scenes, accelerator
        self.has_depth = source_has_depth(self.data.source)   # False (e.g. GTA5): the depth loss is off
        # No run of ours is in progress yet: clear what a killed save left behind (save_run's marked folders).
        for name in clean_stale_temporaries(registry.runs_dir):
            log.info("removed %s, left in %s by a save that was killed", name, registry.runs_dir)
        self._lock = threading.Lock()
        self._job: FinetuneJob | None = None

    @property
    def device(self) -> torch.device:
        """Where runs train."""
        return pick_device("cpu" if self.accelerator == "cpu" else "auto")

    @property
    def current(self) -> FinetuneJob | None:
        return self._job

    def busy(self) -> bool:
        job = self._job
        return job is not None and job.future is not None and not job.future.done()

    def status(self) -> dict[str, Any]:
        """The current run's state, for API callers that poll: ``{"state": "idle", "busy": False}`` if none."""
        job = self._job
        if job is None:
            return {"state": "idle", "busy": False}
        s = job.snapshot()
        return {"state": s.state, "busy": self.busy(), "run": s.run_name, "step": s.step, "total": s.total,
                "message": s.message, "run_key": s.run_key}

    def starting_params(self, defaults: FinetuneParams) -> FinetuneParams:
        """``defaults`` starting from the best adapted shipped model (:meth:`ModelRegistry.best_adapted`) at the
        lambdas of its row; ``defaults`` as they are when none is installed."""
        start = self.registry.best_adapted()
        if not start:
            return defaults
        m = self.registry.config(start).model
        return dataclasses.replace(defaults, start_from=start, lam_input=m.lam_input, lam_output=m.lam_output,
                                   lam_depth=m.lam_depth)

    def config(self, params: FinetuneParams) -> RunConfig:
        """The RunConfig for ``params``: the starting model's architecture, the sliders' settings."""
        base, folder = self.registry.start_point(params.start_from, self.data)
        init_from = str(folder) if folder is not None else None
        # The sliders' settings on the starting model's architecture, trained on crops of the size chosen;
        # evaluated and previewed on the starting model's native frame.
        try:
            model = dataclasses.replace(scheduled(base.model, params.steps, params.seed), lam_input=params.lam_input,
                                        lam_output=params.lam_output, lam_depth=params.lam_depth, init_lr=params.lr,
                                        pretrained_backbone=False)
            if not self.has_depth:  # a source without depth (GTA5): geometry's three uses off, as the sliders say
                model = dataclasses.replace(model, lam_depth=0.0, transform_depth=False, output_disc_depth=False)
            data = dataclasses.replace(self.data, height=base.data.height, width=base.data.width,
                                       crop_height=params.height, crop_width=params.width,
                                       batch_size=params.batch_size, val_scenes=min(8, self.eval_scenes),
                                       num_workers=0)
            return RunConfig(model=model, data=data, steps=params.steps, seed=params.seed, val_every=params.steps,
                             accelerator=self.accelerator, init_from=init_from)
        except (TypeError, ValueError) as e:
            raise ValueError(f"invalid settings: {e}") from e

    def start(self, params: FinetuneParams, *, callbacks: Sequence[Callback] = ()) -> FinetuneJob:
        """Start a run in the background; RunInProgress if one is already training."""
        cfg = self.config(params)
        check_memory(params.batch_size, *cfg.data.crop, self.device)
        if params.start_from:
            self.compute.call(self.registry.load, params.start_from)  # refuse unloadable weights now, not mid-run
        name = safe_run_name(params.run_name) if params.run_name else _default_name(params)
        with self._lock:
            if self.busy():
                snap = self._job.snapshot()
                raise RunInProgress(
                    f"A fine-tuning run ('{snap.run_name}', step {snap.step}/{snap.total}) is already in progress. "
                    "Only one run trains at a time: please wait for it to finish (you can keep exploring meanwhile).")
            self.registry.runs_dir.mkdir(parents=True, exist_ok=True)
            out_dir = _unique_dir(self.registry.runs_dir, name)
            job = FinetuneJob(params, cfg, out_dir)
            self._job = job
            job.future = self.compute.submit(self._run_then_release, job, tuple(callbacks))
        return job

    def stop(self) -> str:
        """Ask the current run to stop after its current step (what was trained is kept)."""
        job = self._job
        if job is None or job.snapshot().finished:
            return "No run is in progress."
        job.request_stop()
        return f"Stopping '{job.out_dir.name}' after the current step…"

    # -- the run, on the compute thread ----------------------------------------------------------------------
    def _run_then_release(self, job: FinetuneJob, extra: tuple[Callback, ...]) -> None:
        """The run, then the memory its steps freed handed back to the system (training keeps it between
        steps: :mod:`gioada.allocator`), so the app does not hold a run's peak while it only explores."""
        self._run(job, extra)
        release_freed_memory()

    def _run(self, job: FinetuneJob, extra: tuple[Callback, ...]) -> None:
        # The training machinery is imported here, when a run starts, not when the app starts.
        from ..checkpoint import load_run_config
        from ..evaluate import evaluate
        from ..train import make_model, train
        cfg, params = job.cfg, job.params
        progress: _Progress | None = None
        try:
            # 1. The starting weights, measured on held-out target scenes (same seed as train(): same init).
            start = make_model(cfg)
            if cfg.init_from:      # the starting model predicts as it always did: at its own training crop
                start.window = load_run_config(cfg.init_from).data.window
            before = evaluate(start, cfg.data, "target", self.eval_scenes, between=self.compute.serve_waiting)
            scene, scenes = _preview_scene(cfg), _watch_scenes(cfg)
            job._record(0, {}, preview(start, *scene, space=get_label_space(cfg.data.label_space)))
            job._watched(0, *watch(start, scenes))
            del start
            if job.stop_requested:
                job._update(before=before, state="stopped", message=_STOPPED_EARLY)
                return
            job._update(before=before, message="Training…")
            # 2. Train, streaming progress.
            progress = _progress(job, scene, cfg.data.label_space, self.compute, scenes)
            result = train(cfg, None, callbacks=[progress, *extra], progress=False, eval_scenes=self.eval_scenes,
                           command=_command(cfg, job.out_dir, self.eval_scenes), between=self.compute.serve_waiting)
            stopped = job.stop_requested and result.info.get("interrupted", False)
            if stopped and progress.steps == 0:
                job._update(state="stopped", message=_STOPPED_EARLY)
                return
            self._save(job, result.model, result.metrics, result.info, progress,
                       "stopped" if stopped else "done",
                       (f"Stopped at step {progress.steps}/{cfg.steps}; the model trained so far"
                        if stopped else f"Finished {progress.steps} steps; the model") + " was saved as ")
        except FloatingPointError as e:
            # 3. Divergence: GIOAda raises on a non-finite loss. Keep the weights from before that step.
            self._diverged(job, progress, e)
        except torch.OutOfMemoryError:
            job._update(state="oom", message=_oom_advice(params, "the GPU"))
        except MemoryError:
            job._update(state="oom", message=_oom_advice(params, "the machine"))
        except RuntimeError as e:
            if "allocate" in str(e) or "out of memory" in str(e).lower():
                job._update(state="oom", message=_oom_advice(params, "the machine"))
            else:
                self._failed(job, e)
        except Exception as e:  # noqa: BLE001 - a run must always end with a message; logged in full
            self._failed(job, e)
        finally:
            self.compute.end_step()                   # a step that raised must not keep the CPU's turn

    def _failed(self, job: FinetuneJob, e: BaseException) -> None:
        log.exception("fine-tuning run %s failed", job.out_dir.name)
        job._update(state="failed", message=f"Training failed: {type(e).__name__}: {str(e)[:300]}. Nothing was saved.")

    def _diverged(self, job: FinetuneJob, progress: _Progress | None, e: FloatingPointError) -> None:
        if progress is None or progress.module is None or progress.good_state is None:
            job._update(state="diverged", message=f"The loss became NaN/inf before the first step finished ({e}). "
                        "Nothing was saved: try a smaller learning rate or smaller lambdas.")
            return
        model = progress.module.to("cpu")
        model.load_state_dict({k: v.cpu() for k, v in progress.good_state.items()})
        job._update(state="evaluating", message="The loss diverged; evaluating the last good weights…")
        from ..evaluate import evaluate
        after = evaluate(model, job.cfg.data, "target", self.eval_scenes, between=self.compute.serve_waiting)
        info = {"steps_done": progress.good_step, "interrupted": True, "diverged": str(e)[:500],
                "command": _command(job.cfg, job.out_dir, self.eval_scenes)}
        self._save(job, model, after, info, progress, "diverged",
                   f"The loss became NaN/inf at step {progress.good_step + 1} (try a smaller learning rate or "
                   f"smaller lambdas). Training stopped; the last good weights (step {progress.good_step}) "
                   "were saved as ")

    def _save(self, job: FinetuneJob, model: GIOAda, after: dict[str, Any], info: dict[str, Any],
              progress: _Progress, state: str, message: str) -> None:
        job._update(state="saving", after=after, message="Saving the run…")
        snap = job.snapshot()
        with tempfile.TemporaryDirectory(prefix="gioada-app-log-") as tmp:
            log_csv = Path(tmp) / "log.csv"
            _write_csv(snap.history, log_csv)
            with self._lock:
                out = _unique_dir(self.registry.runs_dir, job.out_dir.name)
                save_run(out, model.to("cpu"), job.cfg, log_csv=log_csv, info={**info, "source": "app"},
                         metrics={"target": after, "target_before": snap.before})
        job.out_dir = out
        key = RUN_PREFIX + out.name
        job._update(state=state, run_key=key, message=message + f"'{out.name}' (pick it in Explore).")


_STOPPED_EARLY = "Stopped before the first training step: nothing was trained, so nothing was saved."


def _default_name(params: FinetuneParams) -> str:
    preset = next((k for k, v in PRESETS.items()
                   if v == (params.lam_input, params.lam_output, params.lam_depth)), "custom")
    return safe_run_name(f"{preset}-{time.strftime('%Y%m%d-%H%M%S')}")


def _oom_advice(params: FinetuneParams, where: str) -> str:
    return (f"Out of memory on {where} at batch size {params.batch_size} and {params.height}×{params.width} "
            "images. Try a smaller batch size or image size (memory grows with batch × height × width). "
            "Nothing was saved.")


def _preview_scene(cfg: RunConfig) -> tuple[torch.Tensor, ...]:
    """A fixed held-out scene at the run's size: (source image, labels, depth, target image). With the
    simulator, both are held-out scene 0 (one layout, two domains); with datasets, each one's first image."""
    image, labels, depth = eval_set(cfg.data, "source", 1)[0]
    return image, labels, depth, eval_set(cfg.data, "target", 1)[0][0]


def _watch_scenes(cfg: RunConfig) -> Watch:
    """The first ``WATCH_SCENES`` held-out target and source scenes at the run's size."""
    target, source = (eval_set(cfg.data, domain, WATCH_SCENES) for domain in ("target", "source"))
    stack = lambda ds, j: torch.stack([ds[i][j] for i in range(len(ds))])  # noqa: E731
    return Watch(stack(target, 0), stack(target, 1), stack(source, 0), stack(source, 1), stack(source, 2))


def _write_csv(history: list[dict[str, float]], path: Path) -> None:
    keys = ["step"] + sorted({k for row in history for k in row} - {"step"})
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows(history)


def _command(cfg: RunConfig, out_dir: Path, eval_scenes: int) -> str:
    """The CLI command that reproduces this run."""
    return shlex.join(train_command(cfg, out_dir, eval_scenes))


def per_class_rows(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[list[Any]]:
    """[class, IoU before, IoU after, change] in percent."""
    if not before or not after:
        return []
    return [[name, round(before["per_class_iou"].get(name, float("nan")), 1), round(iou, 1),
             round(iou - before["per_class_iou"].get(name, float("nan")), 1)]
            for name, iou in after["per_class_iou"].items()]

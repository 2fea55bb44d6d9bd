"""The live lab (Learn tab): adversarial training on a small fixed problem that you can play, pause and step.

A :class:`Lab` is one GIOAda with its two optimizers, training on a fixed pool of small crops
(``LAB_BATCH`` crops of ``LAB_CROP`` pixels per step). Its steps are the library's own:
:meth:`GIOAda.forward_pass`, :meth:`GIOAda.discriminator_step` and :meth:`GIOAda.generator_step`,
exactly as :meth:`GIOAda.training_step` calls them, so what the lab shows is what training does:

=============  =======================================================================================
``step("d")``  one discriminator step (D_in and D_out change; G and T do not)
``step("g")``  one generator step (G and T change; the discriminators do not)
``step("both")``  one training step: G and T run once, then the D step, then the G step
=============  =======================================================================================

Randomness comes from the lab's own ``torch.Generator`` objects (which crops form a batch, G's noise),
never from torch's global RNG: a lab's steps interleave with other labs', Explore's and a fine-tuning run's.

:meth:`Lab.view` measures the lab on a fixed held-out scene (the ``LAB_VIEW`` centre of the start model's
native frame, at the scale it trained at): G's translation of its source rendering,
T's segmentation and depth of its target rendering, D_in's per-location P(real) map on both, the
discriminators' P(real), the loss history and a plain-language status (:class:`LabView`).

The app keeps labs in a :class:`LabPool`: at most a few, one per browser session, dropped after idle
minutes; every lab starts from shared, read-only starting weights. One lab trains at a time
(:class:`~gioada.app.serving.TrainingSlot`), and a lab gives way to Explore clicks and slows down while a
fine-tuning run trains (:data:`~gioada.app.serving.FOREGROUND`).
"""
from __future__ import annotations

import copy
import dataclasses
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterator

import numpy as np

from ..checkpoint import build_model
from ..classes import get_label_space
from ..config import DataConfig, ModelConfig
from ..data import eval_set, tensor_to_image, train_set
from ..inference import predicted_classes
from ..lazy import no_grad, torch
from ..panels import captioned, confidence_panel, depth_with_scale, upscale
from ..viz import overlay
from .registry import ModelRegistry
from .serving import FOREGROUND, SLOT, Compute, ComputeThread, Foreground, TrainingSlot, direct
from .validation import LIMITS, check_number

if TYPE_CHECKING:   # GIOAda imports Lightning: loaded where a model is built
    from ..module import GIOAda

_M = ModelConfig()
LAB_CROP = (32, 96)           # H×W of the training crops: several steps/s on 2 CPU cores
LAB_VIEW = (64, 192)          # H×W of the held-out view: the centre of the start's native frame (one window of a shipped T)
LAB_BATCH = 2                 # crops per step
POOL_SIZE = 24                # training pairs rendered once per start point, shared by every lab
MAX_PARAMETERS = 30_000_000   # a start model larger than this would not fit beside everything else
DEFAULT_START = "source-only"  # T already segments; G and the discriminators are fresh


# ---------------------------------------------------------------------------------------------------
# Settings and presets
# ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LabSettings:
    """What the learner can change while the lab runs; a change takes effect on the next step."""

    lam_input: float = _M.lam_input
    lam_output: float = _M.lam_output
    lam_depth: float = _M.lam_depth
    lr: float = 2e-3             # G's and T's learning rate (constant: no schedule in the lab)
    d_ratio: float = 1.0         # the discriminators' learning rate is d_ratio × lr

    @property
    def lr_d(self) -> float:
        return self.lr * self.d_ratio

    @classmethod
    def validated(cls, lam_input: Any, lam_output: Any, lam_depth: Any, lr: Any, d_ratio: Any) -> "LabSettings":
        return cls(check_number("λ_in", lam_input, *LIMITS["lam_input"]),
                   check_number("λ_out", lam_output, *LIMITS["lam_output"]),
                   check_number("λ_depth", lam_depth, *LIMITS["lam_depth"]),
                   check_number("learning rate", lr, *LIMITS["lr"]),
                   check_number("D:G learning-rate ratio", d_ratio, *LIMITS["d_ratio"]))


@dataclass(frozen=True)
class LabPreset:
    settings: LabSettings
    watch: str                   # one sentence: what to watch for


LAB_PRESETS: dict[str, LabPreset] = {
    "Full GIO-Ada (the paper)": LabPreset(
        LabSettings(0.1, 0.02, 0.5),
        "Watch D_in's map: it colours up as D_in learns to tell G's translations from target images, then "
        "greys out again as G catches up — the bars should end up hovering around the 50% line."),
    "No adaptation": LabPreset(
        LabSettings(0.0, 0.0, 0.5),
        "Only T learns, from source labels: G is bypassed (its 'translation' is the source itself) and the "
        "discriminators are off, so their maps and bars mean nothing."),
    "λ_in far too large": LabPreset(
        LabSettings(5.0, 0.02, 0.5),
        "Fooling D_in now outweighs everything else: G repaints the scene away from its layout, and T, trained "
        "on those repaintings with the source labels, segments the target worse."),
    "Discriminator far stronger": LabPreset(
        LabSettings(0.1, 0.02, 0.5, d_ratio=20.0),
        "D learns 20× faster than G: its bars race apart (target → 100%, translation → 0%) and its map turns "
        "solid red and blue; G's gradients fade and it cannot catch up."),
    "Depth off": LabPreset(
        LabSettings(0.1, 0.02, 0.0),
        "λ_depth = 0: T's depth head gets no loss any more, so watch its depth map drift while segmentation "
        "carries on (G and D_out still see depth as an input)."),
}


def lab_preset(name: str, has_depth: bool = True) -> LabPreset:
    if name not in LAB_PRESETS:
        raise ValueError(f"unknown lab preset {str(name)[:40]!r}: choose one of {', '.join(LAB_PRESETS)}")
    p = LAB_PRESETS[name]
    if not has_depth:
        p = dataclasses.replace(p, settings=dataclasses.replace(p.settings, lam_depth=0.0))
    return p


# ---------------------------------------------------------------------------------------------------
# Start points: shared, read-only weights, scenes and training crops
# ---------------------------------------------------------------------------------------------------
@dataclass
class LabStart:
    """What every lab with this start point shares (read-only)."""

    key: str                                  # registry key, or "" for random weights
    model: GIOAda                             # the starting weights: copied, never trained
    pool: tuple[torch.Tensor, ...]            # POOL_SIZE training items: real, fake N×3×h×w, labels N×h×w, depth
    scene: tuple[torch.Tensor, ...]           # held-out scene 0's centre (LAB_VIEW): source 3×H×W, labels H×W,
                                              # depth 1×H×W, target
    space_name: str


_STARTS: OrderedDict[tuple, LabStart] = OrderedDict()
_STARTS_LOCK = threading.Lock()
_MAX_STARTS = 3


def lab_start(registry: ModelRegistry, data: DataConfig, key: str = "") -> LabStart:
    """The shared start point for ``key`` (a registry key, or "" for random weights), built once."""
    # From random weights it trains on LAB_CROP crops only, so its views go window by window at that size.
    cfg, path = registry.start_point(key, dataclasses.replace(data, crop_height=LAB_CROP[0], crop_width=LAB_CROP[1]))
    stamp = (key, path.stat().st_mtime_ns if path else 0, data)
    with _STARTS_LOCK:
        if stamp in _STARTS:
            _STARTS.move_to_end(stamp)
            return _STARTS[stamp]
        # the registry's cached copy (read, never trained), or random weights drawn once per process
        template = registry.load(key) if key else build_model(cfg).eval()
        n = sum(p.numel() for p in template.parameters())
        if n > MAX_PARAMETERS:
            raise ValueError(f"the model {key!r} has {n / 1e6:.0f} M parameters: too large for the lab "
                             f"(at most {MAX_PARAMETERS / 1e6:.0f} M). Start from a smaller model or from scratch")
        if cfg.model.num_classes != get_label_space(data.label_space).num_classes:
            raise ValueError(f"the model {key!r} predicts {cfg.model.num_classes} classes, but the lab's scenes are "
                             f"labelled in {data.label_space}: pick a model trained on that label space")
        native = dataclasses.replace(data, height=cfg.data.height, width=cfg.data.width,
                                     crop_height=LAB_CROP[0], crop_width=LAB_CROP[1], val_scenes=1)
        items = [train_set(native, POOL_SIZE, seed=0)[i] for i in range(POOL_SIZE)]
        pool = tuple(torch.stack([it[j] for it in items]) for j in range(4))
        source = eval_set(native, "source", 1)[0]
        scene = tuple(_centre(t, LAB_VIEW) for t in (*source, eval_set(native, "target", 1)[0][0]))
        start = LabStart(key, template, pool, scene, data.label_space)
        _STARTS[stamp] = start
        while len(_STARTS) > _MAX_STARTS:
            _STARTS.popitem(last=False)
        return start


def _centre(t: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The centre ``size`` (H×W, at most the tensor's) of ``t`` …×H'×W': views cost one window, at the
    native scale."""
    h, w = min(size[0], t.shape[-2]), min(size[1], t.shape[-1])
    top, left = (t.shape[-2] - h) // 2, (t.shape[-1] - w) // 2
    return t[..., top:top + h, left:left + w].contiguous()


# ---------------------------------------------------------------------------------------------------
# One lab
# ---------------------------------------------------------------------------------------------------
@dataclass
class LabView:
    """What the lab looks like now, measured on the fixed held-out scene. Images are H×W×3 uint8."""

    steps: int                                # training actions so far (D, G or both)
    d_steps: int
    g_steps: int
    translation: np.ndarray                   # G(source scene), upscaled, uncaptioned (compared across steps)
    source: np.ndarray                        # the source scene, upscaled (for a before/after slider)
    maps: np.ndarray                          # D_in's P(real) maps on G(source) and on the target, with a key
    outputs: np.ndarray                       # T's segmentation and depth of the target scene
    p_real: dict[str, float]                  # "D_in · target", "D_in · G(source)", "D_out · T(target)", ...
    status: str                               # plain language: who is winning
    last: str                                 # what the last action did
    translation_change: float                 # mean |Δ| of the translation since the previous view (grey levels)
    history: list[dict[str, float]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class Lab:
    """One model, its optimizers and its private random streams, stepping on the shared pool of crops.

    ``compute`` runs its steps and views (the app: on its :class:`~gioada.app.serving.ComputeThread`)."""

    def __init__(self, start: LabStart, settings: LabSettings, seed: int = 0, owner: str = "lab",
                 compute: Compute = direct) -> None:
        self.start, self.owner, self.seed, self.compute = start, owner, seed, compute
        self.model: GIOAda = copy.deepcopy(start.model).train()
        for p in self.model.parameters():
            p.requires_grad_(True)
        hp = self.model.hparams
        gen_params, disc_params = self.model.parameter_groups()
        self.opt_g = torch.optim.Adam(gen_params, lr=settings.lr, betas=tuple(hp.betas))
        self.opt_d = torch.optim.Adam(disc_params, lr=settings.lr_d, betas=tuple(hp.betas))
        self._batches = torch.Generator().manual_seed(seed)          # which crops form each batch
        self._noise = torch.Generator().manual_seed(seed + 1)        # G's noise in training steps
        self._view_seed = seed + 2                                    # G's noise in views: the same in every view
        self.settings = settings
        self._pending: LabSettings | None = None
        self._apply(settings)
        self.steps = self.d_steps = self.g_steps = 0
        self.history: list[dict[str, float]] = []
        self.last = "A fresh lab: the start point's weights and a fixed held-out scene. Press Play or a Step button."
        self._previous: tuple[int, np.ndarray] | None = None   # (steps, translation) of the last view
        self._change = 0.0
        self._lock = threading.Lock()                # one action at a time on this lab
        self.playing = False
        self.speed = 1                               # steps per view while playing (0: slow motion)
        self._pause = threading.Event()
        self.closed = False
        self.touched = time.monotonic()

    # -- settings ----------------------------------------------------------------------------------------
    def update(self, settings: LabSettings) -> None:
        """New λ / learning rates: they take effect on the next step (also while playing)."""
        self._pending = settings
        self.touched = time.monotonic()

    def _apply(self, s: LabSettings) -> None:
        hp = self.model.hparams
        hp.lam_input, hp.lam_output, hp.lam_depth = s.lam_input, s.lam_output, s.lam_depth
        for opt, lr in ((self.opt_g, s.lr), (self.opt_d, s.lr_d)):
            for group in opt.param_groups:
                group["lr"] = lr
        self.settings = s

    # -- stepping ----------------------------------------------------------------------------------------
    def _batch(self) -> tuple[torch.Tensor, ...]:
        idx = torch.randperm(self.start.pool[0].shape[0], generator=self._batches)[:LAB_BATCH]
        device = next(self.model.parameters()).device
        return tuple(t[idx].to(device) for t in self.start.pool)

    def step(self, kind: str = "both") -> dict[str, float]:
        """One D step (``"d"``), one G step (``"g"``) or one training step (``"both"``); returns logged numbers."""
        return self.compute(self._step, kind)

    def step_in_turn(self, kind: str = "both", slot: TrainingSlot = SLOT, foreground: Foreground = FOREGROUND,
                     wait: float = 3.0) -> dict[str, float]:
        """:meth:`step` as a learner's button press: holding the machine's one lab slot (waiting up to ``wait``
        s for another learner's lab to give it up) and after any Explore click in progress."""
        if not slot.acquire(self.owner, timeout=wait):
            raise ValueError("another learner's lab is training right now (one lab trains at a time on this "
                             "machine): press the step button again in a moment")
        try:
            foreground.wait_idle()
            return self.step(kind)
        finally:
            if not self.playing:
                slot.release(self.owner)

    def _step(self, kind: str) -> dict[str, float]:
        from ..module import train_logs  # loaded with the model already
        if kind not in ("d", "g", "both"):
            raise ValueError(f"unknown step {kind!r}: expected 'd', 'g' or 'both'")
        with self._lock:
            if self.closed:
                raise ValueError("this lab was closed (too many labs, or idle too long): press Reset")
            if self._pending is not None:
                self._apply(self._pending)
                self._pending = None
            model, batch = self.model, self._batch()
            if kind == "d" and not model.adapts:
                raise ValueError("there is no discriminator to step: λ_in = λ_out = 0. Raise λ_in or λ_out first")
            model.train()
            try:
                if kind == "d":
                    with torch.no_grad():
                        outputs = model.forward_pass(*batch, generator=self._noise)
                    d_terms, g_terms = model.discriminator_step(batch, self.opt_d, outputs), {}
                else:
                    # As in GIOAda.training_step: G and T run once; the D step reads their outputs detached.
                    outputs = model.forward_pass(*batch, generator=self._noise)
                    d_terms = (model.discriminator_step(batch, self.opt_d, outputs)
                               if kind == "both" and model.adapts else {})
                    g_terms = model.generator_step(batch, self.opt_g, outputs)
            except FloatingPointError:
                raise ValueError("the loss became NaN/inf, so the step was stopped before any weight changed. "
                                 "Press Reset and use a smaller learning rate or smaller λ") from None
            self.steps += 1
            self.d_steps += bool(d_terms)
            self.g_steps += bool(g_terms)
            # The names training logs (GIOAda.training_step), so the same curves draw both.
            row = {"step": float(self.steps)} | {k: float(v) for k, v in train_logs(g_terms, d_terms).items()}
            self.history.append(row)
            del self.history[:-2000]                 # bounded: the curves show the last 2,000 steps
            self.last = {"d": "Step D: only D_in and D_out learned (G and T did not change).",
                         "g": "Step G: only G and T learned (the discriminators did not change).",
                         "both": "A training step: a D step, then a G step, on the same batch."}[kind]
            if kind == "both" and not model.adapts:
                self.last = "A training step: with λ_in = λ_out = 0 there is no D step, only T learns."
            self.touched = time.monotonic()
            return row

    # -- playing -----------------------------------------------------------------------------------------
    def pause(self) -> None:
        self._pause.set()

    def play(self, steps_per_view: Callable[[], int], busy: Callable[[], bool] = lambda: False,
             max_seconds: float = 300.0, slot: TrainingSlot = SLOT,
             foreground: Foreground = FOREGROUND) -> Iterator[LabView]:
        """Train until paused (or ``max_seconds``), yielding a view every ``steps_per_view()`` steps.

        ``steps_per_view() == 0`` means slow motion: one step, then a pause, about one step per second.
        While another lab holds ``slot`` this one waits and says so; while ``busy()`` (a fine-tuning run) it
        trains at most a third of the time; it waits for Explore clicks (``foreground``) before each step.
        """
        self._pause.clear()
        self.playing = True
        try:
            while not slot.acquire(self.owner, timeout=1.0):
                if self._pause.is_set() or self.closed:
                    return
                yield self.view(waiting="Another learner's lab is training right now: only one lab trains at a "
                                        "time on this machine. Yours starts as soon as that one pauses…")
            t_end = time.monotonic() + max_seconds
            try:
                while not self._pause.is_set() and not self.closed:
                    if time.monotonic() > t_end:
                        self.last = (f"Paused by itself after {max_seconds / 60:.0f} minutes of play, to leave the "
                                     "machine to others. Press Play to go on.")
                        break
                    n = steps_per_view()
                    note = ""
                    for _ in range(max(1, n)):
                        foreground.wait_idle()
                        t = time.perf_counter()
                        self.step("both")
                        spent = time.perf_counter() - t
                        if busy():
                            note = "A fine-tuning run is training: the lab runs at a third of its speed meanwhile."
                            time.sleep(2 * spent)
                        if self._pause.is_set():
                            break
                    if n == 0:
                        time.sleep(max(0.0, 1.0 - spent))
                    yield self.view(waiting=note)
            finally:
                slot.release(self.owner)
        finally:
            self.playing = False
            self._pause.clear()
        yield self.view()

    # -- measuring ---------------------------------------------------------------------------------------
    def view(self, waiting: str = "") -> LabView:
        """The lab on its fixed held-out scene (forward passes only: no weight changes)."""
        return self.compute(self._view, waiting)

    @no_grad
    def _view(self, waiting: str) -> LabView:
        with self._lock:
            model = self.model
            was_training = model.training
            model.eval()
            try:
                v = self._measure(model)
            finally:
                model.train(was_training)
        if waiting:
            v.notes.append(waiting)
        self.touched = time.monotonic()
        return v

    def _measure(self, model: GIOAda) -> LabView:
        hp = model.hparams
        device = next(model.parameters()).device
        x_s, y_s, d_s, x_t = (t[None].to(device) for t in self.start.scene)     # 1×3×H×W, 1×H×W, 1×1×H×W, 1×3×H×W
        translated = model.translate(x_s, y_s, d_s, seed=self._view_seed)       # x_s itself when G is off
        judged = model.judge(torch.cat([translated, x_t]))                       # of 2×3×H×W
        logits, depth, p_in, p_out = judged.logits, judged.depth, judged.p_in, judged.p_out
        maps = judged.map_in.cpu().numpy()                                        # 2×H×W
        space = get_label_space(self.start.space_name)
        target = tensor_to_image(x_t[0])
        trans = tensor_to_image(translated[0])
        # How far the translation moved since the view before the last action (0 after a D step).
        if self._previous is None or self._previous[0] != self.steps:
            base = trans if self._previous is None else self._previous[1]
            self._change = float(np.abs(trans.astype(np.int16) - base.astype(np.int16)).mean())
            self._previous = (self.steps, trans)
        change = self._change
        p = {"D_in · target": p_in[1], "D_in · G(source)": p_in[0],
             "D_out · T(target)": p_out[1], "D_out · T(G(source))": p_out[0]}
        seg = captioned(upscale(overlay(target, predicted_classes(logits[1], 0).cpu().numpy(), 0.7, space)),
                        "T's segmentation of the target scene")
        dep = captioned(depth_with_scale(depth[1, 0].cpu().numpy(), hp.max_depth), "T's depth of the target scene")
        pad = np.full((dep.shape[0] - seg.shape[0], seg.shape[1], 3), 255, np.uint8)
        outputs = np.concatenate([np.concatenate([seg, pad]), np.full((dep.shape[0], 6, 3), 255, np.uint8), dep],
                                 axis=1)
        d_maps = confidence_panel([(maps[0], translated[0], f"D_in on G(source): {p_in[0]:.0%} real"),
                                   (maps[1], x_t[0], f"D_in on target: {p_in[1]:.0%} real")])
        notes = model.switch_notes()
        return LabView(self.steps, self.d_steps, self.g_steps, upscale(trans), upscale(tensor_to_image(x_s[0])),
                       d_maps, outputs, p, lab_status(p, hp.lam_input > 0, hp.lam_output > 0), self.last, change,
                       list(self.history), notes)


def lab_status(p: dict[str, float], d_in: bool, d_out: bool) -> str:
    """Who is winning, in plain language, from the discriminators' P(real) on target vs translated inputs."""
    def one(name: str, real: float, fake: float, fooler: str) -> tuple[str, bool]:
        gap = real - fake
        if abs(real - 0.5) < 0.08 and abs(fake - 0.5) < 0.08:
            return f"{name} is near chance: it cannot tell them apart yet, or any more", True
        if gap > 0.25:
            return f"{name} is winning: it tells target from translated apart ({real:.0%} vs {fake:.0%})", False
        if gap < -0.1:
            return f"{fooler} is fooling {name}: it rates the translated as more real than the target", False
        return f"{name} and {fooler} are in a tug of war ({real:.0%} vs {fake:.0%})", False

    parts = []
    if d_in:
        parts.append(one("D_in", p["D_in · target"], p["D_in · G(source)"], "G"))
    if d_out:
        parts.append(one("D_out", p["D_out · T(target)"], p["D_out · T(G(source))"], "T"))
    if not parts:
        return "No adversaries (λ_in = λ_out = 0): only T learns, from the source labels."
    if len(parts) == 2 and all(chance for _, chance in parts):
        return "Both discriminators are near chance (50%): neither can tell the domains apart."
    return "; ".join(text for text, _ in parts) + "."


# ---------------------------------------------------------------------------------------------------
# The app's labs: a few, one per session, short-lived
# ---------------------------------------------------------------------------------------------------
class LabPool:
    """At most ``max_labs`` labs, one per session key; the least recently used goes first, and a lab idle
    for ``ttl`` seconds is dropped. Each lab costs a copy of the model and its optimizer state (~20 MB)."""

    def __init__(self, registry: ModelRegistry, data: DataConfig | None = None, *, max_labs: int = 4,
                 ttl: float = 900.0, busy: Callable[[], bool] = lambda: False,
                 compute: ComputeThread | None = None) -> None:
        self.registry, self.data = registry, data or DataConfig()
        self.max_labs, self.ttl, self.busy = max_labs, ttl, busy
        self.compute: Compute = compute.call if compute is not None else direct
        self._labs: OrderedDict[str, Lab] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._labs)

    def reset(self, session: str, start_from: str, settings: LabSettings, seed: int = 0) -> Lab:
        """A fresh lab for ``session`` (replacing its previous one) at the start point ``start_from``."""
        start = self.compute(lab_start, self.registry, self.data, start_from or "")
        lab = self.compute(Lab, start, settings, seed, owner=session, compute=self.compute)
        with self._lock:
            old = self._labs.pop(session, None)
            self._labs[session] = lab
            self._expire()
        if old is not None:
            _close(old)
        return lab

    def get(self, session: str) -> Lab:
        with self._lock:
            self._expire()
            lab = self._labs.get(session)
            if lab is None:
                raise ValueError("no lab yet (or it was closed after idle minutes): press Reset to build one")
            self._labs.move_to_end(session)
            lab.touched = time.monotonic()
            return lab

    def _expire(self) -> None:
        now = time.monotonic()
        for key in [k for k, lab in self._labs.items() if now - lab.touched > self.ttl and not lab.playing]:
            _close(self._labs.pop(key))
        while len(self._labs) > self.max_labs:
            _close(self._labs.popitem(last=False)[1])


def _close(lab: Lab) -> None:
    lab.closed = True
    lab.pause()


def translation_pair(view: LabView) -> np.ndarray:
    """The source scene and G's translation of it, side by side and captioned."""
    gap = np.full((view.source.shape[0] + 26, 6, 3), 255, np.uint8)
    return np.concatenate([captioned(view.source, "source scene (synthetic)"), gap,
                           captioned(view.translation, "G(source): G's translation")], axis=1)

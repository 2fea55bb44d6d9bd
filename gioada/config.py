"""The one typed configuration that flows through training, evaluation and the app.

``ModelConfig``'s fields are exactly :class:`gioada.GIOAda`'s keyword arguments, so
``GIOAda(**asdict(cfg.model))`` builds the model and ``save_hyperparameters()`` round-trips it.
Override with :func:`dataclasses.replace` or :func:`with_overrides`; unknown keys and wrong types raise.
"""
from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .classes import get_label_space
from .constants import ENCODERS, FAR_DEPTH


@dataclass(frozen=True)
class ModelConfig:
    """GIOAda's hyper-parameters (constructor arguments)."""

    num_classes: int = 10
    pretrained_backbone: bool = False
    init_lr: float = 1e-3
    betas: tuple[float, float] = (0.5, 0.999)
    num_epochs: int = 1
    num_steps_per_epoch: int = 1000
    lam_input: float = 0.1
    lam_output: float = 0.02
    lam_depth: float = 0.5
    # Extras beyond the reference design (all with defaults).
    task_width: int = 16             # channels of the task backbone's first stage
    transform_width: int = 16        # channels of G's first stage
    disc_width: int = 16             # channels of each discriminator's first stage
    output_stride: int = 16          # task backbone's output stride: 8 or 16
    backbone_weights: str | None = None  # local .safetensors file for pretrained_backbone=True (None: shipped)
    encoder: str = "resnet"          # T's encoder: "resnet" (from scratch) or "efficientnet-lite0" (trains only
                                     # from ImageNet's weights, pretrained_backbone=True: its norms are frozen)
    max_depth: float = FAR_DEPTH     # metres; depth is predicted and compared in [0, max_depth]
    # Geometry's other two uses (the first is lam_depth, T's depth loss); each can be switched off alone.
    transform_depth: bool = True     # G gets the source's depth map as an input
    output_disc_depth: bool = True   # D_out judges T's depth as well as its class probabilities
    lam_content: float = 0.0         # G's content constraint, mean |G(x_s) - x_s| (not in the paper; 0 = off)
    # Stabilisers of the adversarial game (issue 26's screen), each off by default. The first five change
    # only how the same objective is optimised; label_dropout changes the objective (G's inputs).
    d_lr_scale: float = 1.0          # two time scales: the discriminators' peak learning rate is init_lr × this
    spectral_norm: bool = False      # spectral normalisation of every discriminator convolution
    gan_loss: str = "bce"            # "bce" (the paper's) or "lsgan" (least squares on D's raw outputs)
    d_label_smoothing: float = 0.0   # one-sided: the discriminators learn "real" as 1 - this
    warmup_steps: int = 0            # T trains on source labels alone (no G, no adversaries) for this many steps
    ema_decay: float = 0.0           # EMA of G's and T's weights, used for validation, evaluation and saving (0 = off)
    label_dropout: float = 0.0       # probability that G gets no label map for a training image (0 = off)
    seed: int | None = None          # draws the initial weights and G's training noise (a run sets its own)

    def __post_init__(self) -> None:
        _check_types(self)
        _require(self.num_classes >= 2, "num_classes", self.num_classes, "an integer >= 2")
        _require(0 < self.init_lr <= 1, "init_lr", self.init_lr, "a learning rate in (0, 1]")
        _require(len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas), "betas", self.betas,
                 "two numbers in [0, 1), e.g. (0.5, 0.999)")
        _require(self.num_epochs >= 1, "num_epochs", self.num_epochs, "an integer >= 1")
        _require(self.num_steps_per_epoch >= 1, "num_steps_per_epoch", self.num_steps_per_epoch, "an integer >= 1")
        for name in ("lam_input", "lam_output", "lam_depth", "lam_content"):
            _require(0 <= getattr(self, name) <= 100, name, getattr(self, name), "a number in [0, 100]")
        for name in ("task_width", "transform_width", "disc_width"):
            _require(4 <= getattr(self, name) <= 512, name, getattr(self, name), "an integer in [4, 512]")
        _require(self.output_stride in (8, 16), "output_stride", self.output_stride, "8 or 16")
        _require(self.encoder in ENCODERS, "encoder", self.encoder, " or ".join(map(repr, ENCODERS)))
        _require(self.max_depth > 0, "max_depth", self.max_depth, "a positive number of metres")
        _require(0.01 <= self.d_lr_scale <= 100, "d_lr_scale", self.d_lr_scale, "a number in [0.01, 100]")
        _require(self.gan_loss in ("bce", "lsgan"), "gan_loss", self.gan_loss, "'bce' or 'lsgan'")
        _require(0 <= self.d_label_smoothing < 0.5, "d_label_smoothing", self.d_label_smoothing, "a number in [0, 0.5)")
        _require(0 <= self.warmup_steps <= 10_000_000, "warmup_steps", self.warmup_steps, "an integer >= 0")
        _require(self.ema_decay == 0 or 0.5 <= self.ema_decay < 1, "ema_decay", self.ema_decay,
                 "0 (off) or a number in [0.5, 1), e.g. 0.999")
        _require(0 <= self.label_dropout <= 1, "label_dropout", self.label_dropout, "a probability in [0, 1]")


@dataclass(frozen=True)
class DataConfig:
    """Where batches come from and how big they are."""

    source: str = "sim"              # "sim", or "KIND:PATH" for a dataset on disk (see gioada.data)
    target: str = "sim"
    label_space: str = "vkitti10"
    height: int = 128                # the native frame: what the simulator renders and evaluation sees
    width: int = 384
    crop_height: int = 64            # training crops (of the native frame; the whole frame if it is smaller)
    crop_width: int = 192
    batch_size: int = 8
    shift: float = 1.0               # the simulator's target-domain shift strength, 0..2
    shift_off: tuple[str, ...] = ()  # simulator shift components switched off, e.g. ("haze",)
    oracle: bool = False             # train on *target* labels: the upper bound, never an adaptation run
    val_scenes: int = 64             # held-out target scenes used for validation
    num_workers: int = 0

    @property
    def crop(self) -> tuple[int, int]:
        """(H, W) of a training crop: at most the native frame."""
        return min(self.crop_height, self.height), min(self.crop_width, self.width)

    @property
    def window(self) -> tuple[int, int] | None:
        """What a model trained on this data predicts whole frames window by window at: the training crop
        when it is smaller than the native frame, else None (whole frames)."""
        return None if self.crop == (self.height, self.width) else self.crop

    def __post_init__(self) -> None:
        _check_types(self)
        for name in ("height", "width", "crop_height", "crop_width"):
            v = getattr(self, name)
            _require(32 <= v <= 2048 and v % 16 == 0, name, v, "a multiple of 16 in [32, 2048]")
        _require(1 <= self.batch_size <= 512, "batch_size", self.batch_size, "an integer in [1, 512]")
        _require(0 <= self.shift <= 2, "shift", self.shift, "a number in [0, 2]")
        if "sim" in (self.source, self.target):
            _require(self.label_space == "vkitti10", "label_space", self.label_space,
                     "'vkitti10' with the simulator (it renders the 10 VKITTI classes)")
        _require(1 <= self.val_scenes <= 100_000, "val_scenes", self.val_scenes, "an integer in [1, 100000]")
        _require(0 <= self.num_workers <= 64, "num_workers", self.num_workers, "an integer in [0, 64]")


@dataclass(frozen=True)
class RunConfig:
    """A whole training run: model, data, and how long / where to train.

    ``model``'s OneCycle length follows ``steps`` (``num_epochs=1``, ``num_steps_per_epoch=steps``) and its
    seed follows ``seed``, so the saved config states the schedule and the initial draw really used.
    """

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    steps: int = 1000
    seed: int = 0
    val_every: int = 250             # validate every N training steps (and at the end)
    accelerator: str = "auto"        # "auto" picks a GPU when present
    devices: int = 1
    num_nodes: int = 1
    precision: str = "32-true"       # or "bf16-mixed" on a GPU
    init_from: str | None = None     # checkpoint folder to start from (weights only)

    def __post_init__(self) -> None:
        _check_types(self)
        _require(1 <= self.steps <= 10_000_000, "steps", self.steps, "an integer in [1, 10000000]")
        _require(0 <= self.seed < 2**31, "seed", self.seed, "an integer in [0, 2^31)")
        _require(self.val_every >= 1, "val_every", self.val_every, "an integer >= 1")
        _require(self.accelerator in ("auto", "cpu", "gpu", "cuda", "mps"), "accelerator", self.accelerator,
                 "one of auto, cpu, gpu")
        _require(self.devices >= 1 and self.num_nodes >= 1, "devices", self.devices, "an integer >= 1")
        # Left at ModelConfig's defaults they are filled in; set to anything else they are refused, not rewritten.
        follows = scheduled(self.model, self.steps, self.seed)
        for name, unset in _UNSCHEDULED.items():
            given, value = getattr(self.model, name), getattr(follows, name)
            _require(given in (value, unset), f"model.{name}", given,
                     f"{value} or left out: the model's schedule and seed follow the run's steps ({self.steps}) "
                     f"and seed ({self.seed}), so set those instead")
        object.__setattr__(self, "model", follows)
        k = get_label_space(self.data.label_space).num_classes
        _require(self.model.num_classes == k, "model.num_classes", self.model.num_classes,
                 f"{k}, the class count of label_space={self.data.label_space!r}")
        _require(self.precision in ("32-true", "bf16-mixed", "16-mixed"), "precision", self.precision,
                 "32-true, bf16-mixed or 16-mixed")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunConfig":
        return _from_dict(cls, d)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "RunConfig":
        return cls.from_dict(json.loads(Path(path).read_text()))


_UNSCHEDULED = {f: getattr(ModelConfig, f) for f in ("num_epochs", "num_steps_per_epoch", "seed")}


def scheduled(model: ModelConfig, steps: int, seed: int) -> ModelConfig:
    """``model`` with its OneCycle length and seed those of a run of ``steps`` steps with ``seed``."""
    return dataclasses.replace(model, num_epochs=1, num_steps_per_epoch=steps, seed=seed)


def with_overrides(cfg: RunConfig, **overrides: Any) -> RunConfig:
    """``cfg`` with dotted-key overrides, e.g. ``with_overrides(cfg, **{"model.lam_input": 0.0})``. A new
    ``steps`` or ``seed`` carries the model's schedule and seed with it (:func:`scheduled`)."""
    d = cfg.to_dict()
    if "steps" in overrides or "seed" in overrides:
        follows = scheduled(cfg.model, overrides.get("steps", cfg.steps), overrides.get("seed", cfg.seed))
        d["model"] |= {f: getattr(follows, f) for f in _UNSCHEDULED}
    for key, value in overrides.items():
        *parents, leaf = key.split(".")
        node = d
        for p in parents:
            if not isinstance(node.get(p), dict):
                raise ValueError(f"unknown config key {key!r}")
            node = node[p]
        if leaf not in node:
            raise ValueError(f"unknown config key {key!r}; valid keys here: {sorted(node)}")
        node[leaf] = value
    return RunConfig.from_dict(d)


# ---------------------------------------------------------------------------------------------------
def _require(ok: bool, name: str, value: Any, valid: str) -> None:
    if not ok:
        raise ValueError(f"{name}={value!r} is invalid: expected {valid}")


def _check_types(obj: Any) -> None:
    """Coerce exact JSON-ish values (lists -> tuples, ints -> floats) and reject wrong types."""
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        coerced = _coerce(value, hints[f.name], f.name)
        if coerced is not value:
            object.__setattr__(obj, f.name, coerced)


def _coerce(value: Any, tp: Any, name: str) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _coerce(value, inner, name)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"{name}={value!r} should be a list")
        inner = args[:1] * len(value) if (len(args) == 2 and args[1] is Ellipsis) else args
        if len(inner) != len(value):
            raise ValueError(f"{name}={value!r} should have {len(inner)} items")
        return tuple(_coerce(v, t, name) for v, t in zip(value, inner))
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"{name}={value!r} should be a number")
        if not math.isfinite(value):
            raise ValueError(f"{name}={value!r} should be a finite number")
        return float(value)
    if tp is int:
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name}={value!r} should be an integer")
        return value
    if tp in (bool, str):
        if not isinstance(value, tp):
            raise TypeError(f"{name}={value!r} should be a {tp.__name__}")
        return value
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if isinstance(value, dict):
            return _from_dict(tp, value)
        raise TypeError(f"{name} should be a {tp.__name__} or a dict")
    return value


def _from_dict(cls: type, d: dict[str, Any]) -> Any:
    if not isinstance(d, dict):
        raise TypeError(f"{cls.__name__} expects a dict, got {type(d).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(d) - names
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys {sorted(unknown)}; valid keys: {sorted(names)}")
    hints = typing.get_type_hints(cls)
    return cls(**{k: (_from_dict(hints[k], v) if dataclasses.is_dataclass(hints[k]) else v) for k, v in d.items()})

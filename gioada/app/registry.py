"""The models on offer: the shipped ones in ``assets/`` and the runs saved in ``runs/``, by registry key.

:class:`ModelRegistry` maps a key (a shipped model's name, or ``"runs/<name>"``) to its folder and loads
it lazily; nothing that is not on offer resolves, so no caller can make the app open an arbitrary path.
"""
from __future__ import annotations

import functools
import re
import threading
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING

from ..checkpoint import CONFIG, METRICS, WEIGHTS, is_run_dir, load_model, load_run_config, read_json
from ..classes import get_label_space
from ..config import DataConfig, ModelConfig, RunConfig
from ..inference import check_device, pick_device
from ..pretrained import ASSETS, SHIPPED

if TYPE_CHECKING:   # GIOAda imports Lightning: loaded where a model is built
    import torch

    from ..module import GIOAda

RUN_PREFIX = "runs/"                     # registry key of a saved run: "runs/<name>"
RUN_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


class ModelRegistry:
    """The models the app offers: shipped ones in ``assets_dir`` and runs saved in ``runs_dir``.

    Keys are a shipped model's name (``"gioada"``) or ``"runs/<name>"``; nothing else resolves, so a
    caller can never make the app open an arbitrary path. Models load lazily (safetensors only) and
    the last few stay cached.
    """

    def __init__(self, assets_dir: str | Path = ASSETS, runs_dir: str | Path = "runs", *,
                 device: str | torch.device = "auto", cache_size: int = 6) -> None:
        self.assets_dir, self.runs_dir = Path(assets_dir), Path(runs_dir)
        if self.runs_dir.resolve() == self.assets_dir.resolve() or \
                self.assets_dir.resolve() in self.runs_dir.resolve().parents:
            raise ValueError(f"runs_dir={self.runs_dir} lies inside the shipped models' folder {self.assets_dir}: "
                             "choose another folder, so that shipped models can never be overwritten")
        self._device = check_device(device) if isinstance(device, str) else device
        self._cache: OrderedDict[tuple[str, int], GIOAda] = OrderedDict()
        self._cache_size = cache_size
        self._configs: dict[tuple[str, int], RunConfig] = {}    # (config.json path, mtime) -> its config
        self._lock = threading.Lock()

    @functools.cached_property
    def device(self) -> torch.device:
        """Where models run, decided on first use (asking for a GPU imports torch)."""
        return pick_device(self._device) if isinstance(self._device, str) else self._device

    def shipped(self) -> list[str]:
        """Shipped models present on disk, in the ablation's order."""
        return [n for n in SHIPPED if is_run_dir(self.assets_dir / n)]

    def _saved(self) -> list[str]:
        """Run folders under ``runs_dir`` (weights and config present), newest first."""
        if not self.runs_dir.is_dir():
            return []
        found = [p for p in self.runs_dir.iterdir() if RUN_NAME.match(p.name) and is_run_dir(p)]
        return [p.name for p in sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)]

    def _problem(self, key: str) -> str | None:
        """Why ``key``'s config.json cannot be read, or None when it can."""
        try:
            self.config(key)
        except ValueError as e:
            return str(e)
        return None

    def runs(self) -> list[str]:
        """Saved runs on offer (folder names under ``runs_dir``), newest first; those whose config.json
        cannot be read are not offered (see :meth:`broken`)."""
        return [n for n in self._saved() if self._problem(RUN_PREFIX + n) is None]

    def broken(self) -> list[tuple[str, str]]:
        """(key, reason) of each saved run whose config.json cannot be read: named to the user, never offered."""
        return [(key, reason) for key in (RUN_PREFIX + n for n in self._saved())
                if (reason := self._problem(key)) is not None]

    def keys(self) -> list[str]:
        return self.shipped() + [RUN_PREFIX + n for n in self.runs()]

    def choices(self) -> list[tuple[str, str]]:
        """(label, key) pairs for a dropdown."""
        return ([(f"{n}  ·  shipped", n) for n in self.shipped()]
                + [(f"{n}  ·  your run", RUN_PREFIX + n) for n in self.runs()])

    def resolve(self, key: str) -> Path:
        """A registry key -> its run folder; anything that is not on offer is a ValueError."""
        if not isinstance(key, str) or not key:
            raise ValueError("no model chosen: pick one from the list")
        if key in SHIPPED:
            path = self.assets_dir / key
            if not is_run_dir(path):
                raise ValueError(f"the shipped model {key!r} is not installed (no {self.assets_dir.name}/{key}/"
                                 f"{WEIGHTS}); available: {', '.join(self.keys()) or 'none yet'}")
            return path
        name = key[len(RUN_PREFIX):] if key.startswith(RUN_PREFIX) else None
        if name is None or not RUN_NAME.match(name) or not is_run_dir(self.runs_dir / name):
            raise ValueError(f"unknown model {key[:80]!r}: choose one of {', '.join(self.keys()) or '(none yet)'}")
        return self.runs_dir / name

    def load(self, key: str) -> GIOAda:
        """The model for ``key`` in eval mode on the registry's device (cached)."""
        path = self.resolve(key)
        stamp = (str(path.resolve()), (path / WEIGHTS).stat().st_mtime_ns)
        with self._lock:
            if stamp in self._cache:
                self._cache.move_to_end(stamp)
                return self._cache[stamp]
            try:
                model = load_model(path, self.device)
            except (ValueError, FileNotFoundError, TypeError, KeyError, RecursionError) as e:
                raise ValueError(f"model {key!r} could not be loaded: {_reason(e, path, key)}") from e
            self._cache[stamp] = model
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
            return model

    def config(self, key: str) -> RunConfig:
        """The model's RunConfig, parsed once per version of its config.json (an Explore click asks for it
        five times; parsing took 4 ms each). Treat it as read-only."""
        path = self.resolve(key)
        try:
            file = path / CONFIG
            stamp = (str(file.resolve()), file.stat().st_mtime_ns)
            if stamp not in self._configs:
                if len(self._configs) > 64:
                    self._configs.clear()
                self._configs[stamp] = load_run_config(path)
            return self._configs[stamp]
        except (TypeError, ValueError, KeyError, OSError, RecursionError) as e:
            raise ValueError(f"model {key!r} has an invalid config.json: {_reason(e, path, key)}") from e

    def start_point(self, key: str, data: DataConfig) -> tuple[RunConfig, Path | None]:
        """Where a run (a fine-tune, a lab) starts: ``key``'s config and folder, or for ``""`` (random
        weights) a fresh config on ``data`` with the default architecture for its label space, and no folder."""
        if key:
            return self.config(key), self.resolve(key)
        k = get_label_space(data.label_space).num_classes
        return RunConfig(model=ModelConfig(num_classes=k), data=data), None

    def best_adapted(self) -> str | None:
        """The installed shipped model that adapts (not the oracle) with the highest stored held-out target
        mIoU: where a fine-tune starts by default. None when none is installed."""
        scored = []
        for key in self.shipped():
            try:
                cfg = self.config(key)
                miou = read_json(self.resolve(key), METRICS).get("target", {}).get("miou")
            except (ValueError, OSError, RecursionError, AttributeError):
                continue
            if (cfg.model.lam_input > 0 or cfg.model.lam_output > 0) and not cfg.data.oracle \
                    and isinstance(miou, (int, float)):
                scored.append((miou, key))
        return max(scored)[1] if scored else None

    def describe(self, key: str) -> str:
        """One line of Markdown: what the model is (lambdas, size, steps) and its stored target mIoU."""
        cfg = self.config(key)
        m = cfg.model
        try:
            target = read_json(self.resolve(key), METRICS).get("target", {})
            miou, scenes = target.get("miou"), target.get("scenes")
        except (ValueError, OSError, RecursionError, AttributeError):
            miou = scenes = None                 # an unreadable metrics.json only loses the figure
        parts = [f"λ_in {m.lam_input:g}", f"λ_out {m.lam_output:g}", f"λ_depth {m.lam_depth:g}"]
        parts += [text for on, text in ((m.lam_content > 0, f"λ_content {m.lam_content:g}"),
                                        (not m.transform_depth, "G without depth"),
                                        (not m.output_disc_depth, "D_out without depth"),
                                        (m.d_lr_scale != 1, f"D's learning rate ×{m.d_lr_scale:g}"),
                                        (m.spectral_norm, "spectral norm in D"),
                                        (m.gan_loss != "bce", f"{m.gan_loss.upper()} losses"),
                                        (m.d_label_smoothing > 0, f"D's real label {1 - m.d_label_smoothing:g}"),
                                        (m.warmup_steps > 0, f"{m.warmup_steps} warm-up steps of T alone"),
                                        (m.ema_decay > 0, f"EMA weights (decay {m.ema_decay:g})"),
                                        (m.label_dropout > 0, f"G's labels dropped {m.label_dropout:.0%}"),
                                        (m.encoder != "resnet", f"T's encoder {m.encoder}"
                                         + (" from ImageNet" if m.pretrained_backbone else ""))) if on]
        size = f"{cfg.data.height}×{cfg.data.width}"
        window = cfg.data.window
        parts.append(f"{cfg.steps} steps on {window[0]}×{window[1]} crops of {size} frames" if window
                     else f"{cfg.steps} steps at {size}")
        parts.append(f"seed {cfg.seed}")
        if cfg.data.oracle:
            parts.insert(0, "oracle (trained on target labels)")
        if isinstance(miou, (int, float)):
            held_out = f"{scenes} held-out scenes" if isinstance(scenes, int) else "held-out scenes"
            parts.append(f"target mIoU {miou:.1f}% on {held_out}")
        return " · ".join(parts)


def _reason(e: BaseException, path: Path, key: str) -> str:
    """Why loading failed, naming the model rather than the server's folders."""
    if isinstance(e, RecursionError):
        return "it is nested too deeply to be a gioada file"
    reason = str(e).replace(str(path / WEIGHTS), WEIGHTS).replace(str(path.resolve()), key).replace(str(path), key)
    return reason[:300]

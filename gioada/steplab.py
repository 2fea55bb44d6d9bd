"""Step once (the Learn tab): one discriminator step, then one generator step, on a fixed batch.

:class:`StepLab` holds one GIOAda, its two optimizers and one fixed batch (images B×3×H×W, labels
B×H×W, depth B×1×H×W); each :meth:`StepLab.step` returns a :class:`StepReport` of what the D step and
the G step changed: named losses and P(real), the translation of one source image before and after,
and a Markdown summary.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch

from .config import DataConfig, ModelConfig
from .data import tensor_to_image, train_set
from .finetune import FinetuneManager, FinetuneParams
from .inference import pick_device
from .module import GIOAda, check_finite
from .panels import tile_row
from .registry import ModelRegistry
from .train import make_model

_M = ModelConfig()


@dataclass
class StepReport:
    """What one discriminator step and one generator step changed, on a fixed batch."""

    steps: int
    measures: dict[str, dict[str, float]]      # "before", "after D step", "after G step" -> named numbers
    image: np.ndarray                          # G(source) before | after | amplified change
    summary: str                               # Markdown
    rows: list[list[Any]] = field(default_factory=list)  # a table: quantity, before, after D, after G


class StepLab:
    """One GIOAda and one fixed batch for the "step once" mode: :meth:`reset`, then :meth:`step` repeatedly."""

    def __init__(self, registry: ModelRegistry, data: DataConfig | None = None) -> None:
        self.registry, self.data = registry, data or DataConfig()
        self.model: GIOAda | None = None
        self.steps = 0
        self._lock = threading.Lock()

    def reset(self, start_from: str = "", lam_input: Any = _M.lam_input, lam_output: Any = _M.lam_output,
              lam_depth: Any = _M.lam_depth, lr: Any = 1e-3, seed: Any = 0, batch_size: int = 4,
              height: int = 48) -> StepReport:
        p = FinetuneParams.validated(lam_input=lam_input, lam_output=lam_output, lam_depth=lam_depth, lr=lr,
                                     seed=seed, start_from=start_from or "", batch_size=batch_size, height=height,
                                     steps=1)
        cfg = FinetuneManager(self.registry, data=self.data, accelerator="cpu").config(p)
        with self._lock, torch.random.fork_rng(devices=[]):
            # A private RNG stream: a lab reset must not reseed a fine-tuning run training meanwhile.
            torch.manual_seed(p.seed)
            model = make_model(cfg).to(pick_device()).train()
            (opt_g, opt_d), _ = model.configure_optimizers()
            for opt in (opt_g, opt_d):       # a constant learning rate: no OneCycle warm-up for single steps
                for group in opt.param_groups:
                    group["lr"], group["betas"] = p.lr, tuple(model.hparams.betas)
            device = next(model.parameters()).device
            batch = next(iter(torch.utils.data.DataLoader(train_set(cfg.data, p.batch_size, p.seed),
                                                          batch_size=p.batch_size)))
            self.model, self.opt_g, self.opt_d = model, opt_g, opt_d
            self.batch = tuple(t.to(device) for t in batch)
            self.steps, self.seed = 0, p.seed
            m = self._measure()
            return StepReport(0, {"before": m}, self._image(self._translation(), self._translation()),
                              "A fresh model and a fixed batch are ready. Press **Step once**.",
                              [[k, round(v, 4), None, None] for k, v in m.items()])

    @torch.no_grad()
    def _measure(self) -> dict[str, float]:
        model, (real, fake, labels, depths) = self.model, self.batch
        with torch.random.fork_rng(devices=[]):
            # G's noise input: every measurement sees the same draw, so before/after compare like with like.
            torch.manual_seed(self.seed)
            g = model.generator_loss(real, fake, labels, depths)
            d = model.discriminator_loss(real, fake, labels, depths)
            torch.manual_seed(self.seed)
            translated = model.translate(fake, labels, depths)
            out_real = model.task_outputs(*model.task_network(real))
            out_fake = model.task_outputs(*model.task_network(translated))
            measures = {"G+T loss (total)": g["total"], "seg loss": g["seg"]}
            for k in ("depth", "adv_in", "adv_out"):
                if k in g:
                    measures[f"{k} loss"] = g[k]
            measures["D loss (total)"] = d["total"]
            measures["D_in P(real | target)"] = model.input_discriminator(real).mean()
            measures["D_in P(real | G(source))"] = model.input_discriminator(translated).mean()
            measures["D_out P(real | T(target))"] = model.output_discriminator(out_real).mean()
            measures["D_out P(real | T(G(source)))"] = model.output_discriminator(out_fake).mean()
        return {k: float(v) for k, v in measures.items()}

    @torch.no_grad()
    def _translation(self) -> torch.Tensor:
        _, fake, labels, depths = self.batch
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)  # the same noise draw as _measure: only the weights differ
            return self.model.translate(fake[:1], labels[:1], depths[:1])[0].detach().clone()

    @staticmethod
    def _set_trainable(modules: Sequence[torch.nn.Module], on: bool) -> None:
        for module in modules:
            for p in module.parameters():
                p.requires_grad_(on)

    def step(self) -> StepReport:
        """One discriminator step, then one generator step (as in GIOAda.training_step), with measurements."""
        with self._lock, torch.random.fork_rng(devices=[]):
            if self.model is None:
                raise ValueError("press Reset first: there is no model to step yet")
            torch.manual_seed(self.seed * 100_003 + self.steps)  # reproducible, and private (see reset)
            model, (real, fake, labels, depths) = self.model, self.batch
            discs = [model.input_discriminator, model.output_discriminator]
            before, t_before = self._measure(), self._translation()

            try:
                # 1. Discriminator step: only D_in and D_out change.
                if model.adapts:
                    d_terms = model.discriminator_loss(real, fake, labels, depths)
                    check_finite("discriminator", d_terms, self.steps)
                    self.opt_d.zero_grad(set_to_none=True)
                    d_terms["total"].backward()
                    self.opt_d.step()
                after_d = self._measure()

                # 2. Generator step: only G and T change.
                self._set_trainable(discs, False)
                g_terms = model.generator_loss(real, fake, labels, depths)
                check_finite("generator", g_terms, self.steps)
                self.opt_g.zero_grad(set_to_none=True)
                g_terms["total"].backward()
                self.opt_g.step()
            except FloatingPointError as e:
                raise ValueError(f"{e}; it was stopped before any weight became NaN. Press Reset and use a "
                                 "smaller learning rate") from None
            finally:
                self._set_trainable(discs, True)
            after_g, t_after = self._measure(), self._translation()
            self.steps += 1
            measures = {"before": before, "after D step": after_d, "after G step": after_g}
            rows = [[k, round(before[k], 4), round(after_d[k], 4), round(after_g[k], 4)] for k in before]
            return StepReport(self.steps, measures, self._image(t_before, t_after),
                              _step_summary(model, before, after_d, after_g, t_before, t_after), rows)

    @staticmethod
    def _image(before: torch.Tensor, after: torch.Tensor) -> np.ndarray:
        a, b = tensor_to_image(before), tensor_to_image(after)
        change = np.abs(b.astype(np.int16) - a.astype(np.int16)).max(axis=2)
        gain = 255.0 / max(float(change.max()), 1.0)
        heat = np.stack([np.clip(change * gain, 0, 255)] * 3, axis=2).astype(np.uint8)
        heat[..., 2] = 255 - heat[..., 2] // 2
        return tile_row([(a, "G(source) before"), (b, "G(source) after"),
                         (heat, f"change (x{gain:.0f}; max {int(change.max())}/255)")],
                        scale=2 if a.shape[1] <= 256 else 1)


def _step_summary(model: GIOAda, before: dict[str, float], after_d: dict[str, float], after_g: dict[str, float],
                  t_before: torch.Tensor, t_after: torch.Tensor) -> str:
    def arrow(m: dict[str, float], n: dict[str, float], k: str, pct: bool = False) -> str:
        f = (lambda v: f"{100 * v:.2f}%") if pct else (lambda v: f"{v:.4f}")
        return f"{f(m[k])} → {f(n[k])}"

    def moved(m: dict[str, float], n: dict[str, float], k: str) -> str:
        return "rose" if n[k] > m[k] else "fell" if n[k] < m[k] else "stayed"

    lines = []
    if model.adapts:
        lines.append(
            f"**Discriminator step** (only D_in and D_out changed): D loss {arrow(before, after_d, 'D loss (total)')}. "
            f"D_in's P(real) for target images {arrow(before, after_d, 'D_in P(real | target)', True)}, for "
            f"translated source images {arrow(before, after_d, 'D_in P(real | G(source))', True)}: it is trained "
            "to push the first up and the second down, i.e. to tell the domains apart.")
    else:
        lines.append("**Discriminator step**: skipped — with λ_in = λ_out = 0 there is no adversary to train.")
    change = (tensor_to_image(t_after).astype(np.int16) - tensor_to_image(t_before).astype(np.int16))
    lines.append(
        f"**Generator step** (only G and T changed): G+T loss {arrow(after_d, after_g, 'G+T loss (total)')} "
        f"(segmentation {arrow(after_d, after_g, 'seg loss')}). "
        + (f"D_in's P(real) for the translation {moved(after_d, after_g, 'D_in P(real | G(source))')} "
           f"({arrow(after_d, after_g, 'D_in P(real | G(source))', True)}): G's adversarial term pushes it up, "
           "to fool D_in. " if model.hparams.lam_input > 0 else "")
        + (f"D_out's P(real) for T's outputs on translations "
           f"{arrow(after_d, after_g, 'D_out P(real | T(G(source)))', True)}. " if model.hparams.lam_output > 0 else "")
        + f"The translation's pixels moved by {np.abs(change).mean():.2f} grey levels on average "
          f"(at most {int(np.abs(change).max())}).")
    return "\n\n".join(lines)

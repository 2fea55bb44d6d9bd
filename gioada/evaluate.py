"""Evaluate a trained GIOAda on held-out scenes: mIoU, per-class IoU, depth and discriminator confidence."""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from .classes import get_label_space
from .config import DataConfig
from .data import eval_set, train_set
from .inference import inference_mode, predicted_classes
from .metrics import DepthMetrics, confusion, segmentation_metrics
from .module import GIOAda
from .sim import COMPONENTS


@torch.no_grad()
def label_swap(model: GIOAda, images: torch.Tensor, labels: torch.Tensor, given: torch.Tensor, depths: torch.Tensor,
               seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Does G paint by label? G translates source ``images`` n×3×H×W with the label maps ``given`` n×H×W of
    other scenes (depth n×1×H×W, G's noise drawn with ``seed``), and T predicts on the translations. Returns
    the confusions (K×K) of T's prediction against the labels G was given and against the scene's own
    ``labels`` n×H×W: a G that encodes the labels it is given makes T follow them."""
    k = model.hparams.num_classes
    pred = predicted_classes(model(model.translate(images, given, depths, seed=seed))[0])      # n×H×W
    return confusion(pred, given, k), confusion(pred, labels, k)


@torch.no_grad()
def evaluate(model: GIOAda, data: DataConfig, domain: str = "target", scenes: int | None = None,
             batch_size: int = 16, progress: bool = False,
             between: Callable[[], None] | None = None) -> dict[str, Any]:
    """Metrics of ``model`` on held-out ``domain`` scenes (the simulator's evaluation seeds).

    ``between`` is called after each batch (the app: a waiting Explore click computes there)."""
    model.eval()
    device = next(model.parameters()).device
    ds = eval_set(data, domain, scenes)
    # A local evaluation: never gather across processes, even inside a distributed run.
    miou, iou = (m.to(device) for m in segmentation_metrics(model.hparams.num_classes, sync_on_compute=False))
    depth_m = DepthMetrics(model.hparams.max_depth, sync_on_compute=False).to(device)
    for images, labels, depths in tqdm(DataLoader(ds, batch_size=batch_size), disable=not progress,
                                       desc=f"evaluating on {domain}"):
        images, labels, depths = images.to(device), labels.to(device), depths.to(device)
        logits, depth = model(images)
        pred = predicted_classes(logits)
        miou.update(pred, labels)
        iou.update(pred, labels)
        depth_m.update(depth, depths, labels)
        if between is not None:
            between()
    names = get_label_space(data.label_space).classes
    return {"domain": domain, "scenes": len(ds), "inference": inference_mode(model.window),
            "miou": float(miou.compute()) * 100,
            "per_class_iou": {n: float(v) * 100 for n, v in zip(names, iou.compute())},
            "depth": {k: float(v) for k, v in depth_m.compute().items()}}


@torch.no_grad()
def discriminator_confidence(model: GIOAda, data: DataConfig, batches: int = 4, batch_size: int = 16,
                             seed: int = 12345) -> dict[str, float]:
    """Mean probability "real" each discriminator gives real target vs translated source inputs.

    Both near 0.5 means the discriminators can no longer tell the domains apart: where training
    is meant to end.
    """
    model.eval()
    device = next(model.parameters()).device
    loader = DataLoader(train_set(data, batches * batch_size, seed), batch_size=batch_size)
    sums = {"input_real": 0.0, "input_translated": 0.0, "output_real": 0.0, "output_translated": 0.0}
    for i, (real, fake, labels, depths) in enumerate(loader):
        real, fake, labels, depths = real.to(device), fake.to(device), labels.to(device), depths.to(device)
        translated = model.translate(fake, labels, depths, seed=seed + i)
        sums["input_real"] += model.input_discriminator(real).mean().item()
        sums["input_translated"] += model.input_discriminator(translated).mean().item()
        sums["output_real"] += model.output_discriminator(model.task_outputs(*model(real))).mean().item()
        sums["output_translated"] += model.output_discriminator(model.task_outputs(*model(translated))).mean().item()
    return {k: v / len(loader) for k, v in sums.items()}


def input_discriminator_by_component(model: GIOAda, data: DataConfig, batches: int = 2) -> dict[str, float]:
    """D_in's mean P(real) for real target images with one simulator shift component switched off at a time.

    A large drop from the all-on value means D_in recognises the target domain by that trait: what G has
    not learnt to reproduce.
    """
    return {c: discriminator_confidence(model, replace(data, shift_off=(*data.shift_off, c)), batches)["input_real"]
            for c in COMPONENTS if c not in data.shift_off}

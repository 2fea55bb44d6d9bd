"""Train a GIOAda from a RunConfig: the one entry point used by the CLI, the app and the benchmarks."""
from __future__ import annotations

import hashlib
import logging
import platform
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback
from pytorch_lightning.loggers import CSVLogger

from .checkpoint import WEIGHTS, build_model, load_model, load_weights, save_run
from .config import RunConfig
from .data import GIOAdaDataModule
from .data.real import source_has_depth
from .evaluate import evaluate
from .module import GIOAda


@dataclass
class TrainResult:
    model: GIOAda
    metrics: dict[str, Any]      # final evaluation on held-out target scenes
    info: dict[str, Any]         # command, hardware, timing
    out_dir: Path | None


class _Timer(Callback):
    """Wall time of the training loop proper (after set-up, without validation), for steps/s."""

    def __init__(self) -> None:
        self.start, self.end, self.steps, self.validating = time.perf_counter(), None, 0, 0.0

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.start, self.end, self.steps, self.validating = time.perf_counter(), None, 0, 0.0

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.end = time.perf_counter()     # before later callbacks' end-of-training work

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:  # noqa: ANN001
        self.steps += 1

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.validation_start = time.perf_counter()

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.validating += time.perf_counter() - self.validation_start

    @property
    def seconds(self) -> float:
        return (self.end or time.perf_counter()) - self.start - self.validating


class _RankConsistency(Callback):
    """Under DDP: gathers a hash of every rank's weights and every rank's validation mIoU, so a run
    can show that the ranks ended identical and that the metrics were synchronised."""

    def __init__(self) -> None:
        self.weight_hashes: list[int] = []
        self.val_miou: list[float] = []

    @staticmethod
    def _hash(module: pl.LightningModule) -> int:
        h = hashlib.sha256()
        for name, p in module.named_parameters():
            h.update(name.encode())
            h.update(p.detach().float().cpu().numpy().tobytes())
        return int.from_bytes(h.digest()[:7], "little")

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        miou = trainer.callback_metrics["val/miou"].detach().reshape(1).to(pl_module.device)
        self.val_miou = [float(v) for v in pl_module.all_gather(miou).flatten()]

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        digest = torch.tensor([self._hash(pl_module)], dtype=torch.int64, device=pl_module.device)
        self.weight_hashes = [int(v) for v in pl_module.all_gather(digest).flatten()]

    def report(self) -> dict[str, Any]:
        return {"weight_hashes": self.weight_hashes, "val_miou_per_rank": self.val_miou,
                "weights_identical": len(set(self.weight_hashes)) == 1,
                "metrics_synchronised": len(set(self.val_miou)) == 1}


def hardware() -> str:
    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"{platform.machine()} CPU, {torch.get_num_threads()} threads"


def make_model(cfg: RunConfig) -> GIOAda:
    """A fresh model for ``cfg``, or one initialised from ``cfg.init_from`` (weights only)."""
    model = build_model(cfg)
    if cfg.init_from:
        source = load_model(cfg.init_from)
        if source.hparams.num_classes != cfg.model.num_classes:
            raise ValueError(f"{cfg.init_from} predicts {source.hparams.num_classes} classes, "
                             f"but this run has num_classes={cfg.model.num_classes}")
        load_weights(model, Path(cfg.init_from) / WEIGHTS)
    return model


def _no_ads(record: logging.LogRecord) -> bool:
    """Drop Lightning's advertisement for its cloud logger from our console output."""
    return "litlogger" not in record.getMessage()


def quiet_lightning() -> None:
    """Silence Lightning's console noise that says nothing about the run: its cloud-logger tip, the
    "few dataloader workers" hint (our data is an in-process simulator, workers would only add overhead)
    and a deprecation inside Lightning itself.

    Called once, when this module is imported: the filters are added for good, never swapped in and
    restored around a run (``warnings.catch_warnings`` is not thread-safe, and runs train in threads).
    """
    logging.getLogger("pytorch_lightning.utilities.rank_zero").addFilter(_no_ads)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*LeafSpec.*is deprecated")


quiet_lightning()


def train(cfg: RunConfig, out_dir: str | Path | None = None, *, callbacks: Sequence[Callback] = (),
          progress: bool = True, eval_scenes: int | None = None, command: str | None = None,
          overwrite: bool = False, half: bool = False,
          between: Callable[[], None] | None = None) -> TrainResult:
    """Train for ``cfg.steps`` steps, evaluate on held-out target scenes, and save to ``out_dir``.

    ``between`` is called between the final evaluation's batches (see :func:`~gioada.evaluate.evaluate`).

    Nothing is written when ``out_dir`` is None. An existing ``out_dir`` is an error unless
    ``overwrite``; the folder is written atomically at the end. ``half`` stores float16 weights.
    """
    if out_dir is not None and Path(out_dir).exists() and not overwrite:
        raise FileExistsError(f"{out_dir} already exists; choose another output folder (nothing was overwritten)")
    if not source_has_depth(cfg.data.source) and (cfg.model.lam_depth > 0 or cfg.model.transform_depth
                                                  or cfg.model.output_disc_depth):
        raise ValueError(f"source {cfg.data.source.split(':')[0]} has no depth, but this config uses it: train "
                         "without geometry (--lam-depth 0 --no-transform-depth --no-output-disc-depth), or choose a "
                         "source with depth (sim, vkitti2:PATH, synthia:PATH)")
    if cfg.model.encoder != "resnet" and not cfg.model.pretrained_backbone and cfg.init_from is None:
        raise ValueError(f"encoder {cfg.model.encoder} is an ImageNet encoder: its norms keep ImageNet's statistics "
                         "(frozen), so from random weights it passes no signal. Add --pretrained-backbone, or use "
                         "--encoder resnet to learn from scratch")
    model = make_model(cfg)
    world = cfg.devices * cfg.num_nodes
    # Each rank gets `steps` batches (Lightning shards the dataset over ranks).
    data = GIOAdaDataModule(cfg.data, cfg.steps * world, cfg.seed)
    timer = _Timer()
    consistency = [_RankConsistency()] if world > 1 else []
    with tempfile.TemporaryDirectory(prefix="gioada-log-") as log_dir:
        trainer = pl.Trainer(
            max_epochs=1, accelerator=cfg.accelerator, devices=cfg.devices, num_nodes=cfg.num_nodes,
            strategy="ddp_find_unused_parameters_true" if world > 1 else "auto", precision=cfg.precision,
            logger=CSVLogger(log_dir, name="", version=""), log_every_n_steps=1,
            val_check_interval=min(cfg.val_every, cfg.steps), num_sanity_val_steps=0,
            enable_checkpointing=False, enable_model_summary=False, enable_progress_bar=progress,
            callbacks=[timer, *consistency, *callbacks])
        trainer.fit(model, datamodule=data)
        steps_done = timer.steps
        seconds = timer.seconds
        if trainer.global_rank != 0:
            return TrainResult(model, {}, {}, None)
        model.to("cpu")
        metrics = evaluate(model, cfg.data, "target", eval_scenes, progress=progress, between=between)
        info = {"command": command or " ".join(sys.argv), "hardware": hardware(), "steps_done": steps_done,
                "train_seconds": round(seconds, 2), "steps_per_second": round(steps_done / max(seconds, 1e-9), 3),
                "interrupted": steps_done < cfg.steps}
        if consistency:
            info["ddp"] = {"world_size": world, **consistency[0].report()}
        out = None
        if out_dir is not None:
            out = save_run(out_dir, model, cfg, metrics={"target": metrics}, info=info,
                           log_csv=Path(log_dir) / "metrics.csv", overwrite=overwrite, half=half)
    return TrainResult(model, metrics, info, out)

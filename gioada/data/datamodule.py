"""The LightningDataModule that feeds training: the train and validation sets of ``gioada.data`` as loaders."""
from __future__ import annotations

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from ..config import DataConfig
from . import eval_set, train_set


class GIOAdaDataModule(pl.LightningDataModule):
    """Training batches ``(real_images, fake_images, labels, depths)`` for ``steps`` steps, and
    validation batches ``(images, labels, depths)`` of held-out target scenes."""

    def __init__(self, cfg: DataConfig, steps: int, seed: int = 0) -> None:
        super().__init__()
        self.cfg, self.steps, self.seed = cfg, steps, seed

    def train_dataloader(self) -> DataLoader:
        ds = train_set(self.cfg, self.steps * self.cfg.batch_size, self.seed)
        return DataLoader(ds, batch_size=self.cfg.batch_size, shuffle=False, drop_last=True,
                          num_workers=self.cfg.num_workers, persistent_workers=self.cfg.num_workers > 0,
                          pin_memory=torch.cuda.is_available())  # page-locked batches copy to a GPU faster

    def val_dataloader(self) -> DataLoader:
        return DataLoader(eval_set(self.cfg, "target", split="val"), batch_size=self.cfg.batch_size,
                          num_workers=self.cfg.num_workers)

"""Data: the built-in simulator's datasets, datasets on disk, and the LightningDataModule over both."""
from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from ..config import DataConfig
from ..sim import Shift
from .synthetic import (HELD_OUT_BASE, SimEvalSet, SimTrainSet, eval_scene_seed, image_to_tensor,
                        sample_to_tensors, tensor_to_image, train_scene_seed)

if TYPE_CHECKING:
    import torch


class MapDataset(Protocol):
    """What a ``DataLoader`` needs of a map-style dataset (the datasets here do not subclass torch's ``Dataset``,
    so that importing them does not import torch)."""

    def __len__(self) -> int: ...

    def __getitem__(self, i: int) -> tuple[torch.Tensor, ...]: ...


def sim_shift(cfg: DataConfig) -> Shift:
    """The simulator's target-domain shift described by ``cfg``."""
    return Shift(strength=cfg.shift).without(*cfg.shift_off)


def eval_set(cfg: DataConfig, domain: str = "target", length: int | None = None, split: str = "test") -> MapDataset:
    """Held-out labelled scenes of ``domain`` ("source" or "target"): items ``(image, labels, depth)``.

    ``split``: "test" (final numbers, never watched during training) or the disjoint "val" (watched while
    training): for the simulator two disjoint sets of held-out scenes, for a dataset on disk its split of
    that name (``gioada.data.real``: the end of each sequence, or Cityscapes' official val as "test").
    """
    if split not in ("val", "test"):
        raise ValueError(f"split={split!r} is invalid: expected 'test' (evaluation) or 'val' (watched while training)")
    n = cfg.val_scenes if length is None else length
    if domain == "source" and cfg.source == "sim" or domain == "target" and cfg.target == "sim":
        return SimEvalSet(n, cfg.height, cfg.width, sim_shift(cfg), domain, split)
    from .real import as_eval_set, open_dataset
    spec = cfg.source if domain == "source" else cfg.target
    return as_eval_set(open_dataset(spec, cfg.label_space, split, size=(cfg.height, cfg.width), train=False), n)


def train_set(cfg: DataConfig, length: int, seed: int) -> MapDataset:
    """``length`` training items ``(real, fake, labels, depths)``: ``cfg.crop`` windows of native frames."""
    if cfg.source == "sim" and cfg.target == "sim":
        return SimTrainSet(length, cfg.height, cfg.width, sim_shift(cfg), seed, oracle=cfg.oracle, crop=cfg.crop)
    from .real import PairedTrainSet, open_dataset
    if cfg.oracle:
        raise ValueError("oracle mode trains on target labels and is only available with the simulator "
                         "(source=target=sim); for real data, train with source set to the labelled target set")
    size = (cfg.height, cfg.width)
    return PairedTrainSet(open_dataset(cfg.source, cfg.label_space, "train", size, train=True, seed=seed, crop=cfg.crop),
                          open_dataset(cfg.target, cfg.label_space, "train", size, train=True, seed=seed, crop=cfg.crop),
                          length, seed)


def __getattr__(name: str):
    # The LightningDataModule imports Lightning: only training needs it, so it loads on first use (PEP 562).
    if name == "GIOAdaDataModule":
        from .datamodule import GIOAdaDataModule
        return GIOAdaDataModule
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["HELD_OUT_BASE", "GIOAdaDataModule", "MapDataset", "SimEvalSet", "SimTrainSet", "eval_scene_seed", "eval_set",
           "image_to_tensor", "sample_to_tensors", "sim_shift", "tensor_to_image", "train_scene_seed", "train_set"]

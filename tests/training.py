"""Helpers for the tests that train a tiny GIOAda with Lightning (test_module, test_stabilisers)."""
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset


def loader(batch, steps):
    """``batch`` (real, fake, labels, depths) repeated ``steps`` times, one batch per step."""
    real, fake, labels, depths = batch
    rep = lambda t: t.repeat(steps, *([1] * (t.dim() - 1)))  # noqa: E731
    return DataLoader(TensorDataset(rep(real), rep(fake), rep(labels), rep(depths)), batch_size=real.shape[0])


def fit(model, batch, steps, callbacks=()):
    """``steps`` training steps of ``model`` on ``batch`` under a CPU Trainer; returns the Trainer."""
    trainer = pl.Trainer(max_epochs=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, callbacks=list(callbacks))
    trainer.fit(model, train_dataloaders=loader(batch, steps))
    return trainer


def snapshot(*nets):
    """Copies of every parameter of ``nets``."""
    return [p.detach().clone() for n in nets for p in n.parameters()]


def same(a, b):
    return all(torch.equal(x, y) for x, y in zip(a, b))

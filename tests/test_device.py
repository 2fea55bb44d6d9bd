"""Device-agnostic paths: what a GPU takes is tested here on every device present (the CPU always;
the GPU too when bench/gpu.sh runs this file on one)."""
import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from gioada import GIOAda
from gioada.config import DataConfig
from gioada.data import GIOAdaDataModule
from gioada.evaluate import evaluate
from gioada.inference import pick_device

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _fit(model, batch, accelerator, precision="32-true", steps=2):
    data = TensorDataset(*(t.repeat(steps, *([1] * (t.dim() - 1))) for t in batch))
    trainer = pl.Trainer(max_epochs=1, accelerator=accelerator, devices=1, precision=precision, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(model, DataLoader(data, batch_size=batch[0].shape[0]))
    return trainer


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed"])
def test_training_steps_on_each_device_and_precision(tiny_kwargs, batch, device, precision):
    model = GIOAda(**tiny_kwargs)
    before = [p.detach().clone() for p in model.parameters()]
    trainer = _fit(model, batch, "gpu" if device == "cuda" else "cpu", precision)
    assert torch.isfinite(trainer.callback_metrics["loss"])
    assert next(model.parameters()).dtype == torch.float32            # mixed precision keeps fp32 weights
    moved = [not torch.equal(a, b.to(a.device)) for a, b in zip(before, model.parameters())]
    assert sum(moved) > len(moved) // 2


@pytest.mark.parametrize("device", DEVICES)
def test_training_noise_generator_lives_on_the_batch_device(tiny_kwargs, device):
    model = GIOAda(**tiny_kwargs).to(device)
    gen = model.noise_generator(torch.zeros(1, device=device).device)
    assert gen.device.type == device
    assert model.noise_generator(torch.zeros(1, device=device).device) is gen   # created once, then reused


@pytest.mark.parametrize("device", DEVICES)
def test_evaluation_on_each_device_matches_the_cpu(tiny_kwargs, device):
    data = DataConfig(height=32, width=96)
    model = GIOAda(**tiny_kwargs)
    on_cpu = evaluate(model, data, "target", 2)
    on_device = evaluate(model.to(device), data, "target", 2)
    assert on_device["miou"] == pytest.approx(on_cpu["miou"], abs=0.5)
    assert on_device["depth"]["abs_rel"] == pytest.approx(on_cpu["depth"]["abs_rel"], rel=1e-3)


def test_device_choice():
    assert pick_device("cpu").type == "cpu"
    assert pick_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="GPU was asked for"):
            pick_device("gpu")


def test_an_unknown_device_is_refused_when_the_registry_is_built(tmp_path):
    """The registry decides its device on first use, but a misspelt one is refused at once."""
    from gioada.app.registry import ModelRegistry
    with pytest.raises(ValueError, match="device='gpu0' is invalid: use auto, cpu or gpu"):
        ModelRegistry(tmp_path / "assets", tmp_path / "runs", device="gpu0")
    with pytest.raises(ValueError, match="device='gpu0' is invalid"):
        pick_device("gpu0")


def test_batches_are_pinned_for_a_device_only_when_there_is_one():
    loader = GIOAdaDataModule(DataConfig(height=32, width=96, crop_height=32, crop_width=64), steps=1).train_dataloader()
    assert loader.pin_memory == torch.cuda.is_available()

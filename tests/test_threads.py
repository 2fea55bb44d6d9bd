"""A run trained in a background thread is the same whatever other threads do meanwhile (issue 12 §3):
weights and noise come from private generators, nothing reseeds torch's global RNG."""
import threading

import torch
from safetensors.torch import load_file

from gioada.app.finetune import FinetuneManager, FinetuneParams
from gioada.app.registry import ModelRegistry
from gioada.config import DataConfig


def _finetune(runs, name, disturb):
    manager = FinetuneManager(ModelRegistry(runs_dir=runs), data=DataConfig(height=32, width=96), eval_scenes=2,
                              accelerator="cpu")
    stop = threading.Event()

    def other_clients():  # what step-once clicks and explore calls used to do: reseed and draw
        k = 0
        while not stop.is_set():
            torch.manual_seed(k)
            torch.rand(64)
            k += 1

    noise = threading.Thread(target=other_clients, daemon=True)
    if disturb:
        noise.start()
    try:
        job = manager.start(FinetuneParams(steps=3, batch_size=2, height=32, seed=5, run_name=name))
        snap = job.wait(timeout=300)
    finally:
        stop.set()
    assert snap.state == "done", snap.message
    return load_file(str(runs / name / "model.safetensors"))


def test_a_finetune_is_bit_identical_with_or_without_other_threads_drawing(tmp_path):
    alone = _finetune(tmp_path, "alone", disturb=False)
    crowded = _finetune(tmp_path, "crowded", disturb=True)
    assert alone.keys() == crowded.keys()
    assert all(torch.equal(alone[k], crowded[k]) for k in alone)

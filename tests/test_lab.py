"""The live lab (gioada.app.lab): its steps are the library's, each changes only its networks, its randomness is
private, a reset returns to the start, labs are bounded, one trains at a time, and errors are clear."""
from __future__ import annotations

import gc
import threading
import time
import weakref
from pathlib import Path

import pytest
import torch

from gioada import DataConfig, ModelConfig, RunConfig
from gioada.app import lab as labmod
from gioada.app.lab import Lab, LabPool, LabSettings, lab_start, lab_status
from gioada.app.registry import ModelRegistry
from gioada.app.serving import Foreground, TrainingSlot
from gioada.module import GIOAda
from gioada.train import train

# Also run under ONEDNN_MAX_CPU_ISA=AVX2 and =AVX512_CORE by `make test` (oneDNN's other kernels).
pytestmark = pytest.mark.isa

FULL = LabSettings(0.1, 0.05, 0.5, lr=0.01)
NETS_G = ("task_network", "fake_transformation")
NETS_D = ("input_discriminator", "output_discriminator")


@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> ModelRegistry:
    root = tmp_path_factory.mktemp("lab")
    cfg = RunConfig(model=ModelConfig(task_width=8, transform_width=8, disc_width=8, lam_input=0.1, lam_output=0.1),
                    data=DataConfig(height=32, width=64, batch_size=2, val_scenes=2), steps=2, val_every=2)
    train(cfg, root / "assets" / "gioada", progress=False, eval_scenes=2)
    return ModelRegistry(root / "assets", root / "runs", device="cpu")


@pytest.fixture
def lab(registry) -> Lab:
    return Lab(lab_start(registry, DataConfig(), "gioada"), FULL)


def _state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items() if v.is_floating_point()}


def _changed(model: torch.nn.Module, before: dict[str, torch.Tensor]) -> set[str]:
    return {k.split(".")[0] for k, v in model.state_dict().items() if k in before and not torch.equal(v, before[k])}


def test_step_d_changes_only_the_discriminators_and_not_the_translation(lab):
    v0, before = lab.view(), _state(lab.model)
    lab.step("d")
    v1 = lab.view()
    assert _changed(lab.model, before) == set(NETS_D)
    assert (v1.translation == v0.translation).all() and v1.translation_change == 0
    assert v1.p_real["D_in · target"] != v0.p_real["D_in · target"]
    assert (lab.d_steps, lab.g_steps) == (1, 0)


def test_step_g_changes_only_g_and_t_and_not_the_discriminators_view_of_the_target(lab):
    v0, before = lab.view(), _state(lab.model)
    lab.step("g")
    v1 = lab.view()
    assert _changed(lab.model, before) == set(NETS_G)
    assert not (v1.translation == v0.translation).all() and v1.translation_change > 0
    assert v1.p_real["D_in · target"] == v0.p_real["D_in · target"]   # D_in did not learn; the target is fixed
    assert (lab.d_steps, lab.g_steps) == (0, 1)


def test_a_training_step_is_the_library_step(lab, monkeypatch):
    calls = []
    for name in ("forward_pass", "discriminator_step", "generator_step"):
        real = getattr(GIOAda, name)
        monkeypatch.setattr(GIOAda, name, lambda self, *a, _n=name, _f=real, **k: calls.append(_n) or _f(self, *a, **k))
    before = _state(lab.model)
    row = lab.step("both")
    # One forward pass serves both steps, as in GIOAda.training_step.
    assert calls == ["forward_pass", "discriminator_step", "generator_step"]
    assert _changed(lab.model, before) == set(NETS_G + NETS_D)
    assert {"train/g_seg", "train/loss_d_in", "train/d_in_real"} <= set(row)


def test_the_lab_never_touches_torchs_global_rng(registry):
    state = torch.get_rng_state()
    pool = LabPool(registry, max_labs=2)
    lab = pool.reset("s", "gioada", FULL, seed=3)
    for kind in ("d", "g", "both"):
        lab.step(kind)
    lab.view()
    assert torch.equal(torch.get_rng_state(), state)


def test_reset_returns_to_the_start_and_is_reproducible(registry):
    pool = LabPool(registry)
    a = pool.reset("s", "gioada", FULL)
    start, v0 = _state(a.model), a.view()
    a.step("both"), a.step("both")
    b = pool.reset("s", "gioada", FULL)
    assert not _changed(b.model, start) and (b.view().maps == v0.maps).all()
    rows = [b.step("both")["train/g_total"], b.step("both")["train/g_total"]]
    c = pool.reset("s", "gioada", FULL)
    assert [c.step("both")["train/g_total"], c.step("both")["train/g_total"]] == rows


def test_new_settings_take_effect_on_the_next_step(lab):
    lab.update(LabSettings(0.0, 0.0, 0.5, lr=0.001))
    assert lab.model.hparams.lam_input == 0.1                      # not yet
    row = lab.step("both")
    assert lab.model.hparams.lam_input == 0.0 and "train/loss_d_in" not in row
    assert lab.opt_g.param_groups[0]["lr"] == 0.001
    with pytest.raises(ValueError, match="no discriminator to step"):
        lab.step("d")
    assert "No adversaries" in lab.view().status


def test_settings_are_validated_with_clear_messages():
    with pytest.raises(ValueError, match="λ_in"):
        LabSettings.validated(99, 0, 0, 0.001, 1)
    with pytest.raises(ValueError, match="learning rate"):
        LabSettings.validated(0.1, 0, 0, "fast", 1)


def test_memory_is_bounded_however_often_clients_reset(registry):
    pool = LabPool(registry, max_labs=3)
    refs = []
    for i in range(12):                                            # one client resetting in a loop
        refs.append(weakref.ref(pool.reset("same", "gioada", FULL)))
    for i in range(12):                                            # many clients
        refs.append(weakref.ref(pool.reset(f"client-{i}", "gioada", FULL)))
    gc.collect()
    alive = [r() for r in refs if r() is not None]
    assert len(pool) == 3 and len(alive) == 3                      # every other lab was freed
    assert all(lab.closed for lab in [r() for r in refs[:11]] if lab is not None)
    shared = lab_start(registry, DataConfig(), "gioada").model     # labs copy the start, never train it
    assert all(lab.model is not shared for lab in alive)


def test_idle_labs_expire(registry):
    pool = LabPool(registry, ttl=0.0)
    pool.reset("s", "gioada", FULL)
    time.sleep(0.01)
    with pytest.raises(ValueError, match="press Reset"):
        pool.get("s")
    assert len(pool) == 0


def test_errors_are_clear_and_name_no_server_path(registry, lab, monkeypatch):
    root = str(Path(registry.assets_dir).resolve().parent)
    with pytest.raises(ValueError) as e:
        lab_start(registry, DataConfig(), "runs/../../etc")
    assert root not in str(e.value)
    monkeypatch.setattr(labmod, "MAX_PARAMETERS", 1000)
    monkeypatch.setattr(labmod, "_STARTS", type(labmod._STARTS)())
    with pytest.raises(ValueError, match="too large for the lab") as e:
        lab_start(registry, DataConfig(), "gioada")
    assert root not in str(e.value)
    lab.update(LabSettings(0.1, 0.05, 0.5, lr=0.05))
    with torch.no_grad():
        next(lab.model.task_network.parameters()).fill_(float("nan"))
    with pytest.raises(ValueError, match="NaN/inf") as e:
        lab.step("both")
    assert root not in str(e.value)


def test_one_lab_trains_at_a_time_and_pause_stops_play(registry):
    slot, fg = TrainingSlot(), Foreground()
    start = lab_start(registry, DataConfig(), "gioada")
    a, b = Lab(start, FULL, owner="a"), Lab(start, FULL, owner="b")
    views_a, views_b = [], []

    def run(lab: Lab, out: list) -> None:
        for v in lab.play(lambda: 1, slot=slot, foreground=fg, max_seconds=60):
            out.append(v)

    ta = threading.Thread(target=run, args=(a, views_a))
    ta.start()
    while a.steps < 2:
        time.sleep(0.05)
    tb = threading.Thread(target=run, args=(b, views_b))
    tb.start()
    while not views_b:
        time.sleep(0.05)
    assert "only one lab trains at a time" in views_b[0].notes[0] and b.steps == 0
    a.pause()
    ta.join(60)
    while b.steps < 1:                                             # b starts once a pauses
        time.sleep(0.05)
    b.pause()
    tb.join(60)
    # Paused means paused: both play loops returned (only they step a playing lab) and the slot is free.
    assert not ta.is_alive() and not tb.is_alive() and not a.playing and slot.owner is None


def test_a_step_button_waits_its_turn_for_the_one_lab_slot(lab):
    slot, fg = TrainingSlot(), Foreground()
    assert slot.acquire("another learner")
    with pytest.raises(ValueError, match="another learner's lab is training right now"):
        lab.step_in_turn("d", slot=slot, foreground=fg, wait=0.0)
    assert lab.steps == 0 and slot.owner == "another learner"     # refused: nothing stepped, the slot kept
    slot.release("another learner")
    lab.step_in_turn("d", slot=slot, foreground=fg, wait=0.0)
    assert lab.d_steps == 1 and slot.owner is None                 # stepped, and the slot given back


def test_status_speaks_plainly():
    p = {"D_in · target": 0.9, "D_in · G(source)": 0.1, "D_out · T(target)": 0.5, "D_out · T(G(source))": 0.5}
    assert lab_status(p, True, True).startswith("D_in is winning")
    p |= {"D_in · target": 0.52, "D_in · G(source)": 0.49}
    assert lab_status(p, True, True).startswith("Both discriminators are near chance")
    assert "No adversaries" in lab_status(p, False, False)


def test_the_view_is_the_centre_of_the_native_frame_at_its_scale(registry, monkeypatch):
    """A view costs one T window, whatever the start's native size: the lab looks at the centre of the frame
    (at the scale the start trained at), not at a resized scene."""
    from gioada.data import eval_set
    monkeypatch.setattr(labmod, "LAB_VIEW", (16, 32))
    monkeypatch.setattr(labmod, "_STARTS", type(labmod._STARTS)())
    start = lab_start(registry, DataConfig(), "gioada")
    native = DataConfig(height=32, width=64, val_scenes=1)         # the start's native frame
    source, labels, depth = eval_set(native, "source", 1)[0]
    target = eval_set(native, "target", 1)[0][0]
    for got, full in zip(start.scene, (source, labels, depth, target)):
        assert got.shape[-2:] == (16, 32) and torch.equal(got, full[..., 8:24, 16:48])

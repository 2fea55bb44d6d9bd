import pytest
import pytorch_lightning as pl
import torch
from training import fit, same, snapshot

from gioada import GIOAda

# Also run under ONEDNN_MAX_CPU_ISA=AVX2 and =AVX512_CORE by `make test` (oneDNN's other kernels).
pytestmark = pytest.mark.isa

K = 10


class StepWatcher(pl.Callback):
    """Snapshots G+T and D weights at batch start, right after the D optimizer's step, and at batch end."""

    def __init__(self):
        self.records = []

    def on_train_start(self, trainer, model):
        trainer.optimizers[1].register_step_post_hook(lambda *_: self._snap(model, "after_d"))

    def _snap(self, model, key):
        self.current[key] = (snapshot(model.fake_transformation, model.task_network),
                             snapshot(model.input_discriminator, model.output_discriminator))

    def on_train_batch_start(self, trainer, model, batch, batch_idx):
        self.current = {}
        self._snap(model, "start")

    def on_train_batch_end(self, trainer, model, outputs, batch, batch_idx):
        self._snap(model, "end")
        self.records.append(self.current)


def test_discriminator_step_first_then_generator_step(tiny_kwargs, batch):
    watcher = StepWatcher()
    fit(GIOAda(**tiny_kwargs), batch, 2, [watcher])
    assert len(watcher.records) == 2
    for rec in watcher.records:
        (gt0, d0), (gt1, d1), (gt2, d2) = rec["start"], rec["after_d"], rec["end"]
        assert same(gt0, gt1), "the discriminator step changed G or T"
        assert not same(d0, d1), "the discriminator step did not change the discriminators"
        assert same(d1, d2), "the generator step changed a discriminator"
        assert not same(gt1, gt2), "the generator step did not change G and T"


def test_schedulers_advance_every_step(tiny_kwargs, batch):
    model = GIOAda(**tiny_kwargs)
    trainer = fit(model, batch, 3)
    for sched in trainer.lr_scheduler_configs:
        assert sched.scheduler.last_epoch == 3
    lrs = [c.scheduler.get_last_lr()[0] for c in trainer.lr_scheduler_configs]
    assert all(lr != pytest.approx(tiny_kwargs["init_lr"] / 25) for lr in lrs)  # moved off OneCycle's start


def test_losses_logged(tiny_kwargs, batch):
    model = GIOAda(**tiny_kwargs)
    trainer = fit(model, batch, 1)
    logged = set(trainer.callback_metrics)
    for key in ("train/g_seg", "train/g_depth", "train/g_adv_in", "train/g_adv_out", "train/loss_d_in",
                "train/loss_d_out", "train/d_in_real", "train/d_in_fake", "train/d_out_real", "train/d_out_fake",
                "train/lr", "train/lr_d"):
        assert key in logged, key


def test_no_adaptation_bypasses_g_and_never_touches_discriminators(tiny_kwargs, batch):
    model = GIOAda(**(tiny_kwargs | {"lam_input": 0.0, "lam_output": 0.0}))
    real, fake, labels, depths = batch
    assert torch.equal(model.translate(fake, labels, depths), fake)
    g0, d0 = snapshot(model.fake_transformation), snapshot(model.input_discriminator, model.output_discriminator)
    trainer = fit(model, batch, 2)
    assert same(g0, snapshot(model.fake_transformation))
    assert same(d0, snapshot(model.input_discriminator, model.output_discriminator))
    assert "train/g_adv_in" not in trainer.callback_metrics and "train/loss_d_in" not in trainer.callback_metrics


@pytest.mark.parametrize("off, unchanged", [("lam_input", "input_discriminator"),
                                             ("lam_output", "output_discriminator")])
def test_a_zero_lambda_switches_its_adversary_off(tiny_kwargs, batch, off, unchanged):
    model = GIOAda(**(tiny_kwargs | {off: 0.0}))
    before = snapshot(getattr(model, unchanged))
    fit(model, batch, 2)
    assert same(before, snapshot(getattr(model, unchanged)))


NO_GEOMETRY = {"lam_depth": 0.0, "transform_depth": False, "output_disc_depth": False}


def _g_sees_depth(model, batch):
    real, fake, labels, depths = batch
    torch.nn.init.normal_(model.fake_transformation.head.weight, 0, 0.5)
    a = model.translate(fake, labels, depths, seed=0)
    return not torch.equal(a, model.translate(fake, labels, depths * 0.5, seed=0))


def _d_out_sees_depth(model, batch):
    logits, depth = model(batch[1])
    return not bool((model.task_outputs(logits, depth)[:, -1] == 0).all())


def test_no_geometry_drops_all_three_uses_of_depth(tiny_kwargs, batch):
    model = GIOAda(**(tiny_kwargs | NO_GEOMETRY))
    assert "depth" not in model.generator_loss(*batch)
    assert not _g_sees_depth(model, batch)       # changing the depth input changes nothing
    assert not _d_out_sees_depth(model, batch)   # D_out's depth channel is exactly zero
    assert not model.uses_depth


@pytest.mark.parametrize("switch, loss, g, d_out", [("lam_depth", False, True, True),
                                                    ("transform_depth", True, False, True),
                                                    ("output_disc_depth", True, True, False)])
def test_each_use_of_depth_switches_off_alone(tiny_kwargs, batch, switch, loss, g, d_out):
    model = GIOAda(**(tiny_kwargs | {switch: 0.0 if switch == "lam_depth" else False}))
    assert ("depth" in model.generator_loss(*batch)) == loss
    assert _g_sees_depth(model, batch) == g
    assert _d_out_sees_depth(model, batch) == d_out


def test_output_only_bypasses_g(tiny_kwargs, batch):
    """The paper's output-level-only row has no input-level adaptation: T trains on the source images."""
    model = GIOAda(**(tiny_kwargs | {"lam_input": 0.0}))
    real, fake, labels, depths = batch
    assert torch.equal(model.translate(fake, labels, depths), fake)
    g0 = snapshot(model.fake_transformation)
    fit(model, batch, 2)
    assert same(g0, snapshot(model.fake_transformation))


def test_generator_loss_is_the_weighted_sum(tiny_kwargs, batch):
    model = GIOAda(**tiny_kwargs)
    t = model.generator_loss(*batch)
    expected = t["seg"] + 0.5 * t["depth"] + 0.1 * t["adv_in"] + 0.1 * t["adv_out"]
    assert torch.allclose(t["total"], expected)


def test_content_constraint_pulls_g_towards_its_input(tiny_kwargs, batch):
    """λ_content adds the mean |G(x_s) − x_s| to G's loss, only when G is used, and its gradient reaches G."""
    real, fake, labels, depths = batch
    torch.manual_seed(0)
    model = GIOAda(**(tiny_kwargs | {"lam_content": 2.0}))
    o = model.forward_pass(real, fake, labels, depths, generator=torch.Generator().manual_seed(1))
    t = model.generator_loss(real, fake, labels, depths, outputs=o)
    assert torch.allclose(t["content"], (o.translated - fake).abs().mean())
    assert torch.allclose(t["total"], t["seg"] + 0.5 * t["depth"] + 0.1 * t["adv_in"] + 0.1 * t["adv_out"]
                          + 2.0 * t["content"])
    t["content"].backward()
    assert any(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in model.fake_transformation.parameters())
    assert "content" not in GIOAda(**tiny_kwargs).generator_loss(*batch)
    assert "content" not in GIOAda(**(tiny_kwargs | {"lam_input": 0.0, "lam_content": 2.0})).generator_loss(*batch)


def test_output_adversary_also_trains_t_on_target_images(tiny_kwargs, batch):
    """T's outputs on target images enter the generator loss only through the output adversary."""
    real, fake, labels, depths = batch
    for lam_output, depends in ((0.1, True), (0.0, False)):
        model = GIOAda(**(tiny_kwargs | {"lam_output": lam_output}))
        target = real.clone().requires_grad_(True)
        model.generator_loss(target, fake, labels, depths)["total"].backward()
        assert (target.grad is not None and bool(target.grad.abs().sum() > 0)) == depends


@pytest.mark.parametrize("poisoned", ["real", "depth"])
def test_a_non_finite_loss_stops_before_any_weight_changes(tiny_kwargs, batch, poisoned):
    """NaN in a target image poisons the discriminator loss; NaN depth (with no adversary, so no D step)
    the generator step's depth loss."""
    real, fake, labels, depths = (t.clone() for t in batch)
    (real if poisoned == "real" else depths)[0, 0, 0, 0] = float("nan")
    no_adversary = {"lam_input": 0.0, "lam_output": 0.0} if poisoned == "depth" else {}
    model = GIOAda(**(tiny_kwargs | no_adversary))
    before = snapshot(model)
    with pytest.raises(FloatingPointError, match="discriminator" if poisoned == "real" else "generator"):
        fit(model, (real, fake, labels, depths), 1)
    assert same(before, snapshot(model))


def test_translate_with_a_seed_is_repeatable_and_leaves_the_global_rng_alone(tiny_kwargs, batch):
    model = GIOAda(**tiny_kwargs)
    torch.nn.init.normal_(model.fake_transformation.head.weight, 0, 0.5)   # a trained G uses its noise
    _, fake, labels, depths = batch
    state = torch.random.get_rng_state()
    a, b = model.translate(fake, labels, depths, seed=3), model.translate(fake, labels, depths, seed=3)
    assert torch.equal(a, b) and torch.equal(state, torch.random.get_rng_state())
    assert not torch.equal(a, model.translate(fake, labels, depths, seed=4))


def _sgd(model):
    """SGD instead of Adam: weights move linearly with the gradients, so two paths can be compared."""
    gen = list(model.fake_transformation.parameters()) + list(model.task_network.parameters())
    disc = list(model.input_discriminator.parameters()) + list(model.output_discriminator.parameters())
    opts = [torch.optim.SGD(gen, lr=0.1), torch.optim.SGD(disc, lr=0.1)]
    return opts, [torch.optim.lr_scheduler.LambdaLR(o, lambda _: 1.0) for o in opts]


def test_training_step_equals_separate_d_then_g_steps(tiny_kwargs, batch):
    """Training shares one forward pass of G and T between its two steps; the Learn tab's separate
    "step D" and "step G" each run their own. Same batch and noise -> the same weights."""
    torch.manual_seed(0)
    fused = GIOAda(**tiny_kwargs)
    separate = GIOAda(**tiny_kwargs)
    separate.load_state_dict(fused.state_dict())
    fused.configure_optimizers = lambda: _sgd(fused)
    fit(fused, batch, 1)

    (opt_g, opt_d), _ = _sgd(separate)
    with torch.no_grad():
        before_d = separate.forward_pass(*batch, generator=torch.Generator().manual_seed(separate.noise_seed))
    d_terms = separate.discriminator_step(batch, opt_d, before_d)
    before_g = separate.forward_pass(*batch, generator=torch.Generator().manual_seed(separate.noise_seed))
    g_terms = separate.generator_step(batch, opt_g, before_g)
    assert {"d_in", "d_out"} <= d_terms.keys() and {"seg", "depth", "adv_in", "adv_out"} <= g_terms.keys()
    moved = [not torch.equal(a, b) for a, b in zip(snapshot(separate), snapshot(GIOAda(**tiny_kwargs)))]
    assert any(moved)
    for (name, a), b in zip(fused.named_parameters(), separate.parameters()):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5, msg=name)


def test_training_noise_comes_from_a_private_generator(tiny_kwargs, batch):
    """G's noise in training does not depend on what else draws from torch's global RNG."""
    def weights_after_two_steps(disturb):
        torch.manual_seed(0)
        model = GIOAda(**tiny_kwargs)
        model.noise_seed = 7

        def draw(*_):  # another thread drawing from the global RNG meanwhile
            torch.rand(disturb)

        model.on_train_batch_start = draw
        fit(model, batch, 2)
        return snapshot(model)

    assert same(weights_after_two_steps(1), weights_after_two_steps(5))


def test_todays_training_step_follows_the_reference_step():
    """Issue 15's check: the sped-up step (one shared forward pass of G and T, batched judging, matrix
    upsampling, fused Adam) trains as the step before it did (bench/bench_step.py's ``baseline``: two
    forward passes, separate calls, ``F.interpolate``, torch's per-tensor Adam), same weights and batch."""
    from bench.bench_step import baseline_step, current_step, fresh_model, make_batch
    batch = make_batch(2, 32, 96)
    (ref, ref_opts), (new, new_opts) = (fresh_model(v, task_width=8, transform_width=8, disc_width=8)
                                        for v in ("baseline", "current"))
    assert same(snapshot(ref), snapshot(new))
    start = snapshot(new)
    for _ in range(3):
        baseline_step(ref, batch, ref_opts)
        current_step(new, batch, new_opts)
    moved = torch.cat([(b - a).abs().flatten() for a, b in zip(start, snapshot(new))]).mean().item()
    apart = torch.cat([(b - a).abs().flatten() for a, b in zip(snapshot(ref), snapshot(new))]).mean().item()
    assert moved > 1e-5                  # Adam moves weights by about the lr a step: OneCycle starts at 4e-5
    # Measured: 2e-10 apart against 6e-5 moved. Means, not maxima: Adam's first steps move a weight by about
    # ±lr whatever its gradient's size, so rounding may flip a few near-zero gradients; λ_out 5% larger in
    # today's step alone puts the steps 4e-8 apart (1/1300 of the movement).
    assert apart < moved / 3000, (apart, moved)


def test_judge_runs_each_network_once_and_equals_their_separate_calls(tiny_kwargs, batch):
    torch.manual_seed(0)
    model = GIOAda(**tiny_kwargs).eval()
    images = torch.cat([batch[0], batch[1]])                                     # 4×3×H×W
    judged = model.judge(images)
    with torch.no_grad():
        logits, depth = model(images)
        assert torch.allclose(judged.logits, logits) and torch.allclose(judged.depth, depth)
        assert judged.p_in == pytest.approx(model.input_discriminator(images)[:, 0].tolist(), abs=1e-6)
        assert torch.allclose(judged.map_in, model.input_discriminator.confidence_map(images)[:, 0], atol=1e-6)
        p_out = model.output_discriminator(model.task_outputs(logits, depth))[:, 0].tolist()
        assert judged.p_out == pytest.approx(p_out, abs=1e-6)


def test_switch_notes_name_each_part_that_learns_nothing(tiny_kwargs):
    assert GIOAda(**tiny_kwargs).switch_notes() == []
    assert "No adversaries" in GIOAda(**tiny_kwargs | {"lam_input": 0.0, "lam_output": 0.0}).switch_notes()[0]
    notes = GIOAda(**tiny_kwargs | {"lam_output": 0.0, "lam_depth": 0.0}).switch_notes()
    assert len(notes) == 2 and "output discriminator" in notes[0] and "depth head" in notes[1]

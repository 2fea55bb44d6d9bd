"""The stabilisers of the adversarial game (issue 26's screen): each does what its config value says, and
each is off by default (the paper's step is unchanged: test_module's reference-step test)."""
import pytest
import torch
import torch.nn.functional as F
from training import fit, same, snapshot

from gioada import GIOAda
from gioada.ablation import collapses
from gioada.classes import IGNORE_INDEX
from gioada.config import ModelConfig

pytestmark = pytest.mark.isa


def test_every_stabiliser_is_off_by_default():
    m = ModelConfig()
    assert (m.d_lr_scale, m.spectral_norm, m.gan_loss, m.d_label_smoothing, m.warmup_steps, m.ema_decay,
            m.label_dropout) == (1.0, False, "bce", 0.0, 0, 0.0, 0.0)


@pytest.mark.parametrize("field, value", [("d_lr_scale", 0.0), ("gan_loss", "wgan"), ("d_label_smoothing", 0.5),
                                          ("warmup_steps", -1), ("ema_decay", 1.0), ("ema_decay", 0.1),
                                          ("label_dropout", 1.5)])
def test_bad_stabiliser_values_are_refused_with_their_name(field, value):
    with pytest.raises(ValueError, match=field):
        ModelConfig(**{field: value})


def test_two_time_scales_scale_only_the_discriminators_peak_rate(tiny_kwargs):
    (opt_g, opt_d), _ = GIOAda(**tiny_kwargs, d_lr_scale=0.25).configure_optimizers()
    assert opt_g.param_groups[0]["max_lr"] == pytest.approx(1e-3)
    assert opt_d.param_groups[0]["max_lr"] == pytest.approx(2.5e-4)


def test_spectral_norm_bounds_every_discriminator_layer(tiny_kwargs):
    torch.manual_seed(0)
    model = GIOAda(**tiny_kwargs, spectral_norm=True)
    d = model.input_discriminator.train()
    for _ in range(20):                                   # power iterations run in training forwards
        d(torch.randn(2, 3, 32, 64))
    convs = [m for m in d.net if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 5
    for conv in convs:
        sigma = torch.linalg.matrix_norm(conv.weight.detach().flatten(1), ord=2)
        assert sigma == pytest.approx(1.0, abs=0.05)
    plain = GIOAda(**tiny_kwargs).input_discriminator
    assert not any("parametrizations" in k for k in plain.state_dict())


def test_lsgan_uses_squared_distances_and_clamps_its_scores(tiny_kwargs, batch):
    torch.manual_seed(0)
    model = GIOAda(**tiny_kwargs | {"lam_output": 0.0}, gan_loss="lsgan")
    real = batch[0]
    with torch.no_grad():
        outputs = model.forward_pass(*batch)
    on_real, on_fake = model._judge(model.input_discriminator, real, outputs.translated)
    expected = ((on_real - 1) ** 2).mean() + (on_fake ** 2).mean()
    assert model.discriminator_loss(*batch, outputs=outputs)["d_in"].item() == pytest.approx(expected.item(), rel=1e-5)
    g_term = model.generator_loss(*batch, outputs=outputs)["adv_in"]
    assert g_term.item() == pytest.approx(((on_fake - 1) ** 2).mean().item(), rel=1e-5)
    scores = torch.tensor([-0.5, 0.3, 1.7])
    assert model.input_discriminator.probability(scores).tolist() == pytest.approx([0.0, 0.3, 1.0])


def test_label_smoothing_moves_only_the_discriminators_real_target(tiny_kwargs, batch):
    torch.manual_seed(0)
    smooth = GIOAda(**tiny_kwargs | {"lam_output": 0.0}, d_label_smoothing=0.1)
    real, fake, labels, depths = batch
    with torch.no_grad():
        outputs = smooth.forward_pass(*batch)
    logit_real, logit_fake = smooth._judge(smooth.input_discriminator, real, outputs.translated)
    expected = (F.binary_cross_entropy_with_logits(logit_real, torch.full_like(logit_real, 0.9))
                + F.binary_cross_entropy_with_logits(logit_fake, torch.zeros_like(logit_fake)))
    assert smooth.discriminator_loss(*batch, outputs=outputs)["d_in"].item() == pytest.approx(expected.item(), rel=1e-5)
    # G's term still aims at 1 (real): smoothing is one-sided, for D only.
    g_term = smooth.generator_loss(*batch, outputs=outputs)["adv_in"]
    on_fake = smooth.input_discriminator.logits_map(outputs.translated)
    assert g_term.item() == pytest.approx(F.binary_cross_entropy_with_logits(on_fake, torch.ones_like(on_fake)).item(),
                                          rel=1e-5)


def test_warmup_trains_t_alone_then_the_adversaries_join(tiny_kwargs, batch):
    torch.manual_seed(0)
    model = GIOAda(**tiny_kwargs | {"num_steps_per_epoch": 3}, warmup_steps=2)
    g0 = snapshot(model.fake_transformation)
    d0 = snapshot(model.input_discriminator, model.output_discriminator)
    t0 = snapshot(model.task_network)
    fit(model, batch, 2)
    assert same(snapshot(model.fake_transformation), g0)
    assert same(snapshot(model.input_discriminator, model.output_discriminator), d0)
    assert not same(snapshot(model.task_network), t0)
    fit(model, batch, 1)                                   # step 3: past the warm-up
    assert not same(snapshot(model.input_discriminator, model.output_discriminator), d0)
    assert not same(snapshot(model.fake_transformation), g0)


def test_ema_validates_and_is_what_training_leaves(tiny_kwargs, batch):
    torch.manual_seed(0)
    model = GIOAda(**tiny_kwargs, ema_decay=0.9)
    fit(model, batch, 4)                                   # on_train_end: the average becomes the weights
    ema = [e.clone() for e in model._ema]
    assert all(torch.equal(p.detach(), e) for p, e in zip(model._averaged(), ema))
    # The average lags the live weights: swapped in for validation and out again afterwards.
    live = [p.detach().clone() + 1 for p in model._averaged()]
    with torch.no_grad():
        for p, v in zip(model._averaged(), live):
            p.copy_(v)
    model._swap_in_ema()
    assert all(torch.equal(p.detach(), e) for p, e in zip(model._averaged(), ema))
    model._swap_out_ema()
    assert all(torch.equal(p.detach(), v) for p, v in zip(model._averaged(), live))


def test_ema_update_follows_its_ramped_decay(tiny_kwargs):
    model = GIOAda(**tiny_kwargs, ema_decay=0.999)
    model.update_ema()                                      # the first update copies
    before = [e.clone() for e in model._ema]
    with torch.no_grad():
        for p in model._averaged():
            p.add_(1.0)
    model.trained_steps = 0
    model.update_ema()                                      # decay (1 + 0)/(10 + 0) = 0.1: 90% of the way
    assert all(torch.allclose(e, b + 0.9) for e, b in zip(model._ema, before))


def test_label_dropout_hides_the_labels_from_g_but_not_from_t(tiny_kwargs, batch):
    torch.manual_seed(0)
    model = GIOAda(**tiny_kwargs, label_dropout=1.0).train()
    torch.nn.init.normal_(model.fake_transformation.head.weight, std=0.5)   # G starts as the identity: not here
    real, fake, labels, depths = batch
    gen = torch.Generator().manual_seed(3)
    dropped = model.forward_pass(*batch, generator=gen).translated
    gen = torch.Generator().manual_seed(3)
    torch.rand(2, generator=gen)                            # the draw that decided the dropout
    hidden = model.translate(fake, torch.full_like(labels, IGNORE_INDEX), depths, generator=gen)
    assert torch.equal(dropped, hidden)
    model.eval()                                            # evaluation: G sees the labels again
    gen = torch.Generator().manual_seed(3)
    seen = model.forward_pass(*batch, generator=gen).translated
    assert not torch.equal(seen, hidden)


def test_a_collapse_is_a_seed_more_than_ten_points_below_its_rows_median():
    assert collapses([50.0, 52.0, 39.9, 51.0]) == [False, False, True, False]
    assert collapses([50.0, 41.0, 49.0]) == [False, False, False]

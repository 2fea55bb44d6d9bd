"""Tests that guard the adversarial game itself: which way each update moves the discriminators, and what
each discriminator is shown with which label.

A mutation check showed that swapping REAL and FAKE in the discriminators' loss, or dropping the label
flip in the generator's adversarial terms, passed every other test: these fail on each of those.
"""
import pytest
import torch
import torch.nn.functional as F

from gioada import GIOAda
from gioada.networks.common import init_weights

K = 10


# -- helpers ---------------------------------------------------------------------------------------
def two_domains(seed: int = 0):
    """A batch whose domains a discriminator can tell apart: bright target images, dark source images."""
    g = torch.Generator().manual_seed(seed)
    real = torch.rand(2, 3, 32, 64, generator=g) * 0.5 + 0.4
    fake = torch.rand(2, 3, 32, 64, generator=g) * 0.5 - 0.9
    labels = torch.randint(0, K, (2, 32, 64), generator=g)
    labels[:, :2] = 255
    depths = torch.rand(2, 1, 32, 64, generator=g) * 79 + 1
    return real, fake, labels, depths


def model_for(tiny_kwargs, seed: int = 0, sharp_t: bool = False, **overrides) -> GIOAda:
    torch.manual_seed(seed)
    model = GIOAda(**(tiny_kwargs | overrides))
    if sharp_t:
        # At its N(0, 0.02) init T gives almost the same (near-uniform) output for any image, so D_out
        # would have nothing to tell apart; larger weights make T's outputs depend on the domain.
        init_weights(model.task_network, std=1.0)
    return model


def outputs_of(model: GIOAda, images: torch.Tensor) -> torch.Tensor:
    """What D_out should see for ``images``, built from T directly: softmax B×K×H×W + depth/max_depth B×1×H×W
    (zeros when ``output_disc_depth`` is off)."""
    logits, depth = model.task_network(images)
    depth = depth / model.hparams.max_depth if model.hparams.output_disc_depth else torch.zeros_like(depth)
    return torch.cat([logits.softmax(dim=1), depth], dim=1)


@torch.no_grad()
def p_real(model: GIOAda, batch, which: str) -> tuple[float, float]:
    """Mean P(real) the input (``which='in'``) or output discriminator gives target vs translated source."""
    real, fake, labels, depths = batch
    translated = model.translate(fake, labels, depths, seed=0)
    if which == "in":
        d, a, b = model.input_discriminator, real, translated
    else:
        d, a, b = model.output_discriminator, outputs_of(model, real), outputs_of(model, translated)
    return d(a).mean().item(), d(b).mean().item()


def discriminator_steps(model: GIOAda, batch, steps: int) -> None:
    params = [*model.input_discriminator.parameters(), *model.output_discriminator.parameters()]
    opt = torch.optim.Adam(params, lr=1e-3, betas=(0.5, 0.999))
    for _ in range(steps):
        model.discriminator_step(batch, opt)


def generator_steps(model: GIOAda, batch, steps: int) -> None:
    params = [*model.fake_transformation.parameters(), *model.task_network.parameters()]
    opt = torch.optim.Adam(params, lr=1e-3, betas=(0.5, 0.999))
    for _ in range(steps):
        model.generator_step(batch, opt)


class Spy:
    """Records every input a discriminator judges and the logits it gave.

    The losses call ``logits_map`` (logits inside, probabilities only at ``forward``), which a forward hook on
    the Discriminator would not see, so the spy wraps ``logits_map`` on the instance; ``forward`` goes
    through it too.
    """

    def __init__(self, monkeypatch, disc):
        self.inputs, self.logits = [], []
        original = disc.logits_map

        def logits_map(x):
            out = original(x)
            self.inputs.append(x.detach().clone())
            self.logits.append(out)
            return out

        monkeypatch.setattr(disc, "logits_map", logits_map)

    def split(self, exact: dict[str, torch.Tensor] | None = None, close: dict[str, torch.Tensor] | None = None):
        """Logits per named reference batch, every judged row matched to one reference row (exactly or allclose)
        and every reference row judged once, however the calls were batched."""
        exact, close = exact or {}, close or {}
        xs, ls = torch.cat(self.inputs), torch.cat(self.logits)
        found: dict[str, dict[int, torch.Tensor]] = {name: {} for name in [*exact, *close]}
        for x, logit in zip(xs, ls):
            hits = [(name, i) for name, ref in exact.items() for i, r in enumerate(ref) if torch.equal(x, r)]
            hits += [(name, i) for name, ref in close.items() for i, r in enumerate(ref)
                     if r.shape == x.shape and torch.allclose(x, r, atol=1e-5)]
            assert len(hits) == 1, f"a discriminator input matches {len(hits)} of the expected inputs {hits}"
            name, i = hits[0]
            assert i not in found[name], f"{name}[{i}] judged twice"
            found[name][i] = logit
        refs = exact | close
        for name, rows in found.items():
            assert len(rows) == len(refs[name]), f"{name}: judged {len(rows)} of {len(refs[name])} inputs"
        return {name: torch.stack([rows[i] for i in range(len(rows))]) for name, rows in found.items()}


def bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    """Independent of the module's helper and its REAL/FAKE constants: real is 1, fake is 0."""
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


# -- 1. the direction of each update -------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1])
def test_discriminator_step_raises_p_real_on_target_and_lowers_it_on_translated_source(tiny_kwargs, seed):
    batch = two_domains(seed)
    model = model_for(tiny_kwargs, seed, lam_input=1.0, lam_output=0.0)   # D_in alone
    real0, fake0 = p_real(model, batch, "in")
    discriminator_steps(model, batch, 10)
    real1, fake1 = p_real(model, batch, "in")
    assert real1 > real0 + 0.01, f"D_in's P(real) on target images did not rise: {real0:.4f} -> {real1:.4f}"
    assert fake1 < fake0 - 0.01, f"D_in's P(real) on translated source did not fall: {fake0:.4f} -> {fake1:.4f}"


@pytest.mark.parametrize("seed", [0, 1])
def test_discriminator_step_separates_task_outputs_on_target_from_translated(tiny_kwargs, seed):
    """D_out learns to score T's outputs on target images above those on translated source.

    Checked on the gap: Adam's normalised steps move D_out's bias, so both scores can drift the same way
    while the gap opens (T's outputs on the two domains are much closer than the images themselves).
    """
    batch = two_domains(seed)
    model = model_for(tiny_kwargs, seed, sharp_t=True, lam_input=0.0, lam_output=1.0)   # D_out alone
    real0, fake0 = p_real(model, batch, "out")
    discriminator_steps(model, batch, 20)
    real1, fake1 = p_real(model, batch, "out")
    assert real1 - fake1 > real0 - fake0 + 0.1, f"D_out's gap did not open: {real0 - fake0:.4f} -> {real1 - fake1:.4f}"


@pytest.mark.parametrize("seed", [0, 1])
def test_generator_step_raises_d_in_p_real_on_translations(tiny_kwargs, seed):
    batch = two_domains(seed)
    model = model_for(tiny_kwargs, seed, lam_input=1.0, lam_output=0.0)
    discriminator_steps(model, batch, 10)                                  # an informed D_in
    before = p_real(model, batch, "in")[1]
    generator_steps(model, batch, 3)
    after = p_real(model, batch, "in")[1]
    assert after > before + 0.01, f"G did not make its translations look more real to D_in: {before:.4f} -> {after:.4f}"


@pytest.mark.parametrize("seed", [0, 1])
def test_generator_step_makes_task_outputs_on_translated_look_real_and_on_target_look_translated(tiny_kwargs, seed):
    batch = two_domains(seed)
    # lam_output = 10 so that the adversarial term, not the segmentation loss, dominates T's update.
    model = model_for(tiny_kwargs, seed, sharp_t=True, lam_input=0.0, lam_output=10.0)
    discriminator_steps(model, batch, 20)                                  # an informed D_out
    real0, fake0 = p_real(model, batch, "out")
    generator_steps(model, batch, 3)
    real1, fake1 = p_real(model, batch, "out")
    assert fake1 > fake0 + 0.1, f"D_out's P(real) on outputs on translated source: {fake0:.4f} -> {fake1:.4f}"
    assert real1 < real0 - 0.1, f"D_out's P(real) on outputs on target images: {real0:.4f} -> {real1:.4f}"


# -- 2. what each discriminator receives, with which label ------------------------------------------------
def _model_with_a_trained_looking_g(tiny_kwargs, **overrides) -> GIOAda:
    model = model_for(tiny_kwargs, 0, **overrides)
    # G starts as the identity; a trained G's translation differs from its input (and uses its noise).
    torch.nn.init.normal_(model.fake_transformation.head.weight, 0, 0.5)
    return model


@pytest.mark.parametrize("depth_seen", [True, False])
def test_discriminator_loss_shows_target_as_real_and_translations_as_fake(tiny_kwargs, batch, monkeypatch, depth_seen):
    real, fake, labels, depths = batch
    model = _model_with_a_trained_looking_g(tiny_kwargs, output_disc_depth=depth_seen)
    spy_in = Spy(monkeypatch, model.input_discriminator)
    spy_out = Spy(monkeypatch, model.output_discriminator)
    torch.manual_seed(7)
    terms = model.discriminator_loss(real, fake, labels, depths)
    with torch.no_grad():
        torch.manual_seed(7)                         # the same draw of G's noise
        translated = model.translate(fake, labels, depths)
        assert not torch.allclose(translated, fake, atol=1e-3)
        out_real, out_fake = outputs_of(model, real), outputs_of(model, translated)

    d_in = spy_in.split(exact={"real": real}, close={"fake": translated})
    assert all(x.shape[1] == 3 for x in spy_in.inputs)
    assert torch.allclose(terms["d_in"], bce(d_in["real"], 1.0) + bce(d_in["fake"], 0.0))
    assert torch.allclose(terms["d_in_real"], torch.sigmoid(d_in["real"]).mean())
    assert torch.allclose(terms["d_in_fake"], torch.sigmoid(d_in["fake"]).mean())

    check_task_outputs(torch.cat(spy_out.inputs), depth_seen)
    d_out = spy_out.split(close={"real": out_real, "fake": out_fake})
    assert torch.allclose(terms["d_out"], bce(d_out["real"], 1.0) + bce(d_out["fake"], 0.0))
    assert torch.allclose(terms["d_out_real"], torch.sigmoid(d_out["real"]).mean())
    assert torch.allclose(terms["d_out_fake"], torch.sigmoid(d_out["fake"]).mean())
    hp = model.hparams
    assert torch.allclose(terms["total"], hp.lam_input * terms["d_in"] + hp.lam_output * terms["d_out"])


@pytest.mark.parametrize("depth_seen", [True, False])
def test_generator_loss_labels_translations_real(tiny_kwargs, batch, monkeypatch, depth_seen):
    """The adversarial terms flip the labels: G's translations and T's outputs on them count as REAL; T's
    outputs on target images (the term that adapts T itself) as FAKE."""
    real, fake, labels, depths = batch
    model = _model_with_a_trained_looking_g(tiny_kwargs, output_disc_depth=depth_seen)
    spy_in = Spy(monkeypatch, model.input_discriminator)
    spy_out = Spy(monkeypatch, model.output_discriminator)
    torch.manual_seed(7)
    terms = model.generator_loss(real, fake, labels, depths)
    with torch.no_grad():
        torch.manual_seed(7)
        translated = model.translate(fake, labels, depths)
        out_real, out_fake = outputs_of(model, real), outputs_of(model, translated)

    d_in = spy_in.split(close={"translated": translated})
    assert torch.allclose(terms["adv_in"], bce(d_in["translated"], 1.0))

    check_task_outputs(torch.cat(spy_out.inputs), depth_seen)
    d_out = spy_out.split(close={"translated": out_fake, "target": out_real})
    assert torch.allclose(terms["adv_out"], bce(d_out["translated"], 1.0) + bce(d_out["target"], 0.0))


def test_depth_term_compares_normalised_depths(tiny_kwargs, batch):
    """T's depth loss is L1 between its depth and the source depth, both divided by max_depth."""
    real, fake, labels, depths = batch
    model = _model_with_a_trained_looking_g(tiny_kwargs)
    torch.manual_seed(7)
    terms = model.generator_loss(real, fake, labels, depths)
    with torch.no_grad():
        torch.manual_seed(7)
        _, depth = model.task_network(model.translate(fake, labels, depths))
    m = model.hparams.max_depth
    assert torch.allclose(terms["depth"], F.l1_loss(depth / m, depths / m), atol=1e-6)


def check_task_outputs(x: torch.Tensor, depth_seen: bool) -> None:
    """D_out's inputs: K softmax channels (sum to one per pixel) + depth/max_depth in [0, 1], or zeros."""
    assert x.shape[1] == K + 1
    probs, depth = x[:, :K], x[:, K]
    assert bool((probs >= 0).all()) and torch.allclose(probs.sum(1), torch.ones_like(depth), atol=1e-5), \
        "D_out must see class probabilities (softmax), not logits"
    if depth_seen:
        assert bool(((depth >= 0) & (depth <= 1)).all()) and bool((depth > 0).any())
    else:
        assert bool((depth == 0).all()), "with output_disc_depth=False D_out must see no depth"


@pytest.mark.parametrize("lambdas", [{"lam_input": 0.0, "lam_output": 0.0}, {"lam_input": 0.0}])
def test_without_input_adaptation_translate_returns_the_source_images(tiny_kwargs, batch, lambdas):
    real, fake, labels, depths = batch
    model = _model_with_a_trained_looking_g(tiny_kwargs, **lambdas)
    assert torch.equal(model.translate(fake, labels, depths), fake)
    assert torch.equal(model.translate(fake, labels, depths, seed=1), fake)
    adapting = _model_with_a_trained_looking_g(tiny_kwargs)               # the same G, adaptation on
    assert not torch.allclose(adapting.translate(fake, labels, depths, seed=1), fake, atol=1e-3)

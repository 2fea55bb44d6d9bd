"""GIOAda: the four networks trained end to end with manual optimization (Lightning)."""
from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass
from typing import Iterator

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn

from .classes import IGNORE_INDEX
from .constants import FAR_DEPTH
from .inference import predicted_classes, sliding_window
from .metrics import DepthMetrics, segmentation_metrics
from .networks import Discriminator, ImageTransformNetwork, TaskNetwork

REAL, FAKE = 1.0, 0.0
# OneCycle cycles Adam's beta1 between betas[0] (at the peak learning rate) and this (at the ends).
MAX_MOMENTUM = 0.95


@dataclass
class Judgement:
    """T and both discriminators on a stack of n images (see :meth:`GIOAda.judge`)."""

    logits: torch.Tensor          # T's class logits n×K×H×W
    depth: torch.Tensor           # T's depth n×1×H×W, metres
    p_in: list[float]             # D_in's mean P(real) of each image
    p_out: list[float]            # D_out's mean P(real) of T's outputs on each image
    map_in: torch.Tensor          # D_in's P(real) per location, upsampled to n×H×W


@dataclass
class Outputs:
    """G's and T's outputs on one batch (see :meth:`GIOAda.forward_pass`)."""

    translated: torch.Tensor                 # G(source) B×3×H×W
    logits: torch.Tensor                     # T on the translated source B×K×H×W
    depth: torch.Tensor                      # T's depth on it B×1×H×W, metres
    out_real: torch.Tensor | None = None     # D_out's input from T on target images B×(K+1)×H×W
    out_fake: torch.Tensor | None = None     # D_out's input from T on the translated source B×(K+1)×H×W


Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]  # (real, fake, labels, depths)


@contextlib.contextmanager
def frozen(*modules: nn.Module) -> Iterator[None]:
    """Parameters of ``modules`` take no gradient inside the block (their weights are inputs only)."""
    params = [(p, p.requires_grad) for m in modules for p in m.parameters()]
    for p, _ in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, was in params:
            p.requires_grad_(was)


def bce(logits: torch.Tensor, label: float) -> torch.Tensor:
    """Binary cross-entropy of per-location logits against a constant REAL/FAKE label."""
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, label))


def least_squares(scores: torch.Tensor, label: float) -> torch.Tensor:
    """LSGAN's loss (Mao et al. 2017): mean squared distance of D's raw scores from the label."""
    return (scores - label).square().mean()


def check_finite(which: str, terms: dict[str, torch.Tensor], step: int) -> None:
    """Raise FloatingPointError before an optimizer step would write NaN/inf into the weights."""
    if not torch.isfinite(terms["total"]):
        raise FloatingPointError(f"non-finite {which} loss at step {step}: "
                                 f"{ {k: float(v.detach()) for k, v in terms.items()} }")


def train_logs(g_terms: dict[str, torch.Tensor], d_terms: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A training step's loss terms under the names training logs (and the curves draw): ``train/g_*`` for
    the generator step's, ``train/d_*_real|fake`` for the discriminators' outputs, ``train/loss_*`` for
    their losses; D's ``total`` is left out."""
    logs = {f"train/g_{k}": v.detach() for k, v in g_terms.items()}
    logs |= {f"train/{k}" if k.startswith("d_") and k[-4:] in ("real", "fake") else f"train/loss_{k}": v.detach()
             for k, v in d_terms.items() if k != "total"}
    return logs


class GIOAda(pl.LightningModule):
    """Geometrically guided input-output adaptation (Chen et al., CVPR 2019).

    A batch is ``(real_images B×3×H×W, fake_images B×3×H×W, labels B×H×W, depths B×1×H×W)``: target
    images without labels, and source images with their labels and depth (metres). Images in [-1, 1].

    Every ablation is a setting of this one module, never a new class:

    ====================================  ================================================================
    setting                               effect
    ====================================  ================================================================
    ``lam_input = 0``                     no input-level adaptation: G is bypassed, T trains on x_s itself
    ``lam_output = 0``                    no output-level adaptation: D_out is off
    ``lam_depth = 0``                     no depth loss on T (T's depth head is then untrained)
    ``transform_depth = False``           G gets a zero depth map instead of d_s
    ``output_disc_depth = False``         D_out gets a zero depth channel: it judges T's classes only
    ``lam_content > 0``                   G also minimises λ_content·|G(x_s) − x_s| (mean L1): a content
                                          constraint (PixelDA's idea) against recolouring whole classes;
                                          not in the paper, off by default
    ``label_dropout = p``                 G gets an all-zero label map for each training image with
                                          probability p (changes the objective; not in the paper)
    ====================================  ================================================================

    Stabilisers that change only how the objective is optimised (all off by default): ``d_lr_scale``
    (two time scales), ``spectral_norm`` (both discriminators), ``gan_loss="lsgan"``,
    ``d_label_smoothing`` (one-sided), ``warmup_steps`` (T on source labels alone first) and ``ema_decay``
    (an exponential moving average of G's and T's weights validates, evaluates and is saved).

    Code names and the paper's symbols (Chen et al. 2019, Sec. 3):

    ==========================  ===============================================================
    code                        paper
    ==========================  ===============================================================
    ``real_images``             target images x_t (no labels)
    ``fake_images``             source (synthetic) images x_s
    ``labels``, ``depths``      the source's labels y_s and depth d_s
    ``fake_transformation``     the image transform network G (x_s, y_s, d_s) -> x̃_s
    ``task_network``            the task network T: x -> (ŷ, d̂)
    ``input_discriminator``     the input-level discriminator D_img (x_t real, x̃_s fake)
    ``output_discriminator``    the output-level discriminator D_out on T's (ŷ, d̂)
    ``lam_input/output/depth``  λ weights of the input adversarial, output adversarial, depth losses
    ``lam_content``             weight of G's content constraint (not in the paper)
    ==========================  ===============================================================

    One departure from the seed design: its generator step has no loss on target images ("they do not
    depend on G"), but T's outputs on them depend on T. As in the paper's min-max objective, the output
    adversary's generator term also pushes T's outputs on target images towards its outputs on translated
    source. With the same 1200-step command at 64×192, adding this term took `gioada` from 49.0 to
    52.8 target mIoU and `output-only` from 20.4 to 31.4 (below `source-only` without it).
    """

    def __init__(self, num_classes: int = 10, pretrained_backbone: bool = False, init_lr: float = 1e-3,
                 betas: tuple[float, float] = (0.5, 0.999), num_epochs: int = 1, num_steps_per_epoch: int = 1000,
                 lam_input: float = 0.1, lam_output: float = 0.02, lam_depth: float = 0.5, *,
                 task_width: int = 16, transform_width: int = 16, disc_width: int = 16, output_stride: int = 16,
                 backbone_weights: str | None = None, max_depth: float = FAR_DEPTH, transform_depth: bool = True,
                 output_disc_depth: bool = True, lam_content: float = 0.0, d_lr_scale: float = 1.0,
                 spectral_norm: bool = False, gan_loss: str = "bce", d_label_smoothing: float = 0.0,
                 warmup_steps: int = 0, ema_decay: float = 0.0, label_dropout: float = 0.0,
                 encoder: str = "resnet", seed: int | None = None) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.automatic_optimization = False
        k = num_classes
        # A seed draws the weights from a private generator: a run started in a background thread is then
        # the same whatever other threads draw from torch's global RNG meanwhile.
        g = None if seed is None else torch.Generator().manual_seed(seed)
        self.task_network = TaskNetwork(3, k, pretrained_backbone, width=task_width, output_stride=output_stride,
                                        max_depth=max_depth, backbone_weights=backbone_weights, encoder=encoder,
                                        generator=g)
        self.fake_transformation = ImageTransformNetwork(k + 4, 3, width=transform_width, max_depth=max_depth,
                                                         generator=g)
        lsgan = gan_loss == "lsgan"
        self.input_discriminator = Discriminator(3, width=disc_width, generator=g, spectral_norm=spectral_norm,
                                                 least_squares=lsgan)
        self.output_discriminator = Discriminator(k + 1, width=disc_width, generator=g, spectral_norm=spectral_norm,
                                                  least_squares=lsgan)
        self.adversarial_loss = least_squares if lsgan else bce
        self.depth_loss = nn.L1Loss()
        self.label_loss = nn.CrossEntropyLoss(ignore_index=IGNORE_INDEX)
        self.val_miou, self.val_iou = segmentation_metrics(k)
        self.val_depth = DepthMetrics(max_depth)
        # T's predictions (forward) on frames larger than this (H, W) go window by window; training steps
        # (forward_pass, on crops) do not use it. None: whole frames. Not a hyper-parameter: build_model
        # sets it to the run's training crop when that is smaller than its native frame.
        self.window: tuple[int, int] | None = None
        self.noise_seed = seed or 0              # G's noise in training: a private generator (see noise_generator)
        self._noise: torch.Generator | None = None
        self.trained_steps = 0                   # training_step calls of this run (warm-up, EMA schedule)
        self._ema: list[torch.Tensor] | None = None   # EMA of G's and T's parameters (ema_decay > 0)
        self._live: list[torch.Tensor] | None = None  # the live parameters while the EMA is swapped in
        # Channels-last (NHWC) weights, so the convolutions compute in that layout: oneDNN reads and writes
        # it directly, where NCHW activations are reordered to a blocked layout and back around every
        # convolution (107 of the 275 ms a CPU step spends in oneDNN at 64×192, batch 8).
        self.to(memory_format=torch.channels_last)

    # -- switches --------------------------------------------------------------------------------
    @property
    def adapts(self) -> bool:
        return self.hparams.lam_input > 0 or self.hparams.lam_output > 0

    @property
    def transforms(self) -> bool:
        """G is used only for input-level adaptation; without it T trains on the source images."""
        return self.hparams.lam_input > 0

    @property
    def uses_depth(self) -> bool:
        """Any of geometry's three uses is on: the depth loss, G's depth input, D_out's depth channel."""
        hp = self.hparams
        return hp.lam_depth > 0 or hp.transform_depth or hp.output_disc_depth

    # -- the pieces of a step ---------------------------------------------------------------------
    def translate(self, fake_images: torch.Tensor, labels: torch.Tensor, depths: torch.Tensor,
                  seed: int | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """G(source) B×3×H×W; the source images themselves when input-level adaptation is off.

        G's noise input comes from ``generator`` (a private ``torch.Generator`` on the images' device), or
        from a fresh generator seeded with ``seed`` (the same inputs then give the same translation), or,
        when both are None, from torch's global RNG.
        """
        if not self.transforms:
            return fake_images
        if not self.hparams.transform_depth:
            depths = torch.zeros_like(depths)
        noise = None
        if seed is not None or generator is not None:
            b, _, h, w = fake_images.shape
            shape = (b, self.fake_transformation.noise_channels, h, w)
            if generator is None:
                noise = torch.randn(shape, generator=torch.Generator().manual_seed(seed)).to(fake_images)
            else:
                noise = torch.randn(shape, generator=generator, device=generator.device).to(fake_images)
        return self.fake_transformation(fake_images, labels, depths, noise)

    def noise_generator(self, device: torch.device) -> torch.Generator:
        """The private generator of G's noise in training, seeded with ``noise_seed`` on first use.

        Private, so a run's noise does not depend on what else (another thread, the app) draws from
        torch's global RNG meanwhile.
        """
        if self._noise is None or self._noise.device != torch.device(device):
            self._noise = torch.Generator(device).manual_seed(self.noise_seed)
        return self._noise

    def task_outputs(self, logits: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        """What the output discriminator judges: class probabilities and normalised depth, B×(K+1)×H×W."""
        depth = depth / self.hparams.max_depth if self.hparams.output_disc_depth else torch.zeros_like(depth)
        return torch.cat([logits.softmax(dim=1), depth], dim=1)

    def forward_pass(self, real_images: torch.Tensor, fake_images: torch.Tensor, labels: torch.Tensor,
                     depths: torch.Tensor, generator: torch.Generator | None = None) -> Outputs:
        """G's and T's outputs on a batch, with their graph: what both steps of a training step judge.

        G and T do not change between the discriminator step and the generator step, so one forward
        pass serves both (the discriminator step reads it detached). T runs once over the translated
        source and the target images together (GroupNorm is per image, so this equals two calls).
        """
        g_labels = labels
        if self.training and self.hparams.label_dropout > 0 and self.transforms:
            dropped = torch.rand(labels.shape[0], generator=generator, device=labels.device) < self.hparams.label_dropout
            g_labels = torch.where(dropped.view(-1, *[1] * (labels.dim() - 1)), IGNORE_INDEX, labels)  # no labels
        translated = self.translate(fake_images, g_labels, depths, generator=generator)
        if self.hparams.lam_output > 0:
            logits, depth = self.task_network(torch.cat([translated, real_images]))   # (B_s+B_t)×…×H×W
            b = translated.shape[0]
            logits, depth, logits_t, depth_t = logits[:b], depth[:b], logits[b:], depth[b:]
            return Outputs(translated, logits, depth, self.task_outputs(logits_t, depth_t),
                           self.task_outputs(logits, depth))
        return Outputs(translated, *self.task_network(translated))

    @staticmethod
    def _judge(disc: Discriminator, real: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """D's logit maps on real and fake inputs, in one call (D has no normalisation: per image)."""
        logits = disc.logits_map(torch.cat([real, fake]))                              # (B_t+B_s)×1×h×w
        return logits[:real.shape[0]], logits[real.shape[0]:]

    def discriminator_loss(self, real_images: torch.Tensor, fake_images: torch.Tensor, labels: torch.Tensor,
                           depths: torch.Tensor, outputs: Outputs | None = None) -> dict[str, torch.Tensor]:
        """Named terms of the discriminators' loss on a batch; ``total`` is what their optimizer minimises.

        G's and T's ``outputs`` (computed without gradients when None) are read detached: only the
        discriminators learn from these terms.
        """
        hp = self.hparams
        if outputs is None:
            with torch.no_grad():
                outputs = self.forward_pass(real_images, fake_images, labels, depths)
        terms: dict[str, torch.Tensor] = {}
        total = real_images.new_zeros(())
        for name, lam, disc, real, fake in (
                ("d_in", hp.lam_input, self.input_discriminator, real_images, outputs.translated),
                ("d_out", hp.lam_output, self.output_discriminator, outputs.out_real, outputs.out_fake)):
            if lam > 0:
                logit_real, logit_fake = self._judge(disc, real.detach(), fake.detach())
                terms[name] = (self.adversarial_loss(logit_real, REAL - hp.d_label_smoothing)
                               + self.adversarial_loss(logit_fake, FAKE))
                terms[f"{name}_real"] = disc.probability(logit_real).mean().detach()
                terms[f"{name}_fake"] = disc.probability(logit_fake).mean().detach()
                total = total + lam * terms[name]
        terms["total"] = total
        return terms

    def generator_loss(self, real_images: torch.Tensor, fake_images: torch.Tensor, labels: torch.Tensor,
                       depths: torch.Tensor, outputs: Outputs | None = None) -> dict[str, torch.Tensor]:
        """Named terms of G's and T's loss on a batch; ``total`` is what their optimizer minimises."""
        hp = self.hparams
        o = self.forward_pass(real_images, fake_images, labels, depths) if outputs is None else outputs
        terms = self.supervised_loss(o.logits, o.depth, labels, depths)
        total = terms["total"]
        # The adversarial terms use flipped labels: G and T learn to fool the discriminators.
        if hp.lam_input > 0:
            terms["adv_in"] = self.adversarial_loss(self.input_discriminator.logits_map(o.translated), REAL)
            total = total + hp.lam_input * terms["adv_in"]
            if hp.lam_content > 0:
                terms["content"] = (o.translated - fake_images).abs().mean()
                total = total + hp.lam_content * terms["content"]
        if hp.lam_output > 0:
            # T's outputs on target images depend on T, so (as in the paper's min-max objective) T also
            # learns to make them look like its outputs on translated source: this is what adapts T itself.
            on_target, on_source = self._judge(self.output_discriminator, o.out_real, o.out_fake)
            terms["adv_out"] = self.adversarial_loss(on_source, REAL) + self.adversarial_loss(on_target, FAKE)
            total = total + hp.lam_output * terms["adv_out"]
        terms["total"] = total
        return terms

    def supervised_loss(self, logits: torch.Tensor, depth: torch.Tensor, labels: torch.Tensor,
                        depths: torch.Tensor) -> dict[str, torch.Tensor]:
        """T's losses against the source's labels (and depth, when ``lam_depth > 0``): named terms and ``total``.

        ``logits`` B×K×H×W, ``depth`` B×1×H×W (metres), ``labels`` B×H×W, ``depths`` B×1×H×W."""
        hp = self.hparams
        terms = {"seg": self.label_loss(logits, labels.long())}
        total = terms["seg"]
        if hp.lam_depth > 0:
            terms["depth"] = self.depth_loss(depth / hp.max_depth, depths / hp.max_depth)
            total = total + hp.lam_depth * terms["depth"]
        terms["total"] = total
        return terms

    def warmup_step(self, batch: Batch, optimizer: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
        """One step of T alone on the source images and labels (no G, no adversary): a warm-up step."""
        _, fake_images, labels, depths = batch
        return self._optimize("generator", self.supervised_loss(*self.task_network(fake_images), labels, depths),
                              optimizer)

    # -- the moving average of G's and T's weights (ema_decay > 0) ---------------------------------
    def parameter_groups(self) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
        """(G's and T's parameters, both discriminators' parameters): what the generator step and the
        discriminator step each optimise."""
        return ([*self.fake_transformation.parameters(), *self.task_network.parameters()],
                [*self.input_discriminator.parameters(), *self.output_discriminator.parameters()])

    def _averaged(self) -> list[torch.Tensor]:
        return self.parameter_groups()[0]           # G's and T's weights

    def update_ema(self) -> None:
        """Move the average towards the current weights; its decay ramps up as (1 + t)/(10 + t) at first,
        so the random initial weights do not linger in it."""
        params = [p.detach() for p in self._averaged()]
        if self._ema is None:
            self._ema = [p.clone() for p in params]
            return
        decay = min(self.hparams.ema_decay, (1 + self.trained_steps) / (10 + self.trained_steps))
        torch._foreach_lerp_(self._ema, params, 1 - decay)

    def _swap_in_ema(self) -> None:
        if self._ema is not None and self._live is None:
            params = self._averaged()
            self._live = [p.detach().clone() for p in params]
            torch._foreach_copy_([p.data for p in params], self._ema)

    def _swap_out_ema(self) -> None:
        if self._live is not None:
            torch._foreach_copy_([p.data for p in self._averaged()], self._live)
            self._live = None

    # -- Lightning hooks ---------------------------------------------------------------------------
    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """T on images B×3×H×W -> (logits B×K×H×W, depth B×1×H×W metres).

        Frames larger than ``window`` (the training crop, set by ``build_model``) are predicted window by
        window (:func:`gioada.inference.sliding_window`), at the size T trained at; the logits are then the
        log of the windows' averaged probabilities (the same softmax and argmax).
        """
        h, w = images.shape[2:]
        if self.window is None or (h <= self.window[0] and w <= self.window[1]):
            return self.task_network(images)
        return sliding_window(self.task_network, images, self.window)

    @torch.no_grad()
    def judge(self, images: torch.Tensor) -> Judgement:
        """What Explore and the lab show of images n×3×H×W: T's outputs (window by window, as ``forward``),
        D_out on them and D_in on the images, each network run once over the stack."""
        logits, depth = self(images)                                                  # n×K×H×W, n×1×H×W
        p_out = self.output_discriminator(self.task_outputs(logits, depth))[:, 0].tolist()
        d_in = self.input_discriminator
        probs = d_in.probability(d_in.logits_map(images))                             # n×1×H/8×W/8
        return Judgement(logits, depth, probs.mean(dim=(2, 3))[:, 0].tolist(), p_out,
                         d_in.upsampled(probs, images.shape[2:])[:, 0])

    def switch_notes(self) -> list[str]:
        """What the switched-off parts mean for the numbers shown of this model, in plain words."""
        hp, notes = self.hparams, []
        if not self.adapts:
            notes.append("No adversaries (λ_in = λ_out = 0): G is bypassed, so the translation is the source image "
                         "itself, and neither discriminator learns — their numbers mean nothing.")
        else:
            if hp.lam_input == 0:
                notes.append("λ_in = 0: G is bypassed (the translation is the source itself) and the input "
                             "discriminator learns nothing; its numbers mean nothing.")
            if hp.lam_output == 0:
                notes.append("λ_out = 0: the output discriminator learns nothing; its numbers mean nothing.")
        if hp.lam_depth == 0:
            notes.append("λ_depth = 0: the depth head gets no loss, so its depth map means nothing.")
        return notes

    def discriminator_step(self, batch: Batch, optimizer: torch.optim.Optimizer,
                           outputs: Outputs | None = None) -> dict[str, torch.Tensor]:
        """One optimizer step of both discriminators on ``batch``; returns the loss terms (before it).

        ``outputs``: G's and T's outputs on the batch when the caller already has them.
        """
        return self._optimize("discriminator", self.discriminator_loss(*batch, outputs=outputs), optimizer)

    def generator_step(self, batch: Batch, optimizer: torch.optim.Optimizer,
                       outputs: Outputs | None = None) -> dict[str, torch.Tensor]:
        """One optimizer step of G and T on ``batch`` (the discriminators stay as they are); returns
        the loss terms (before it). ``outputs``: G's and T's outputs on the batch, with their graph."""
        with frozen(self.input_discriminator, self.output_discriminator):
            return self._optimize("generator", self.generator_loss(*batch, outputs=outputs), optimizer)

    def _optimize(self, which: str, terms: dict[str, torch.Tensor],
                  optimizer: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
        """Minimise ``terms["total"]`` by one step of ``optimizer`` (refused before it writes NaN/inf).

        Backward is Lightning's under a Trainer (precision plugins, DDP), plain autograd outside one."""
        check_finite(which, terms, self.global_step)
        optimizer.zero_grad(set_to_none=True)
        if self._trainer is not None:
            self.manual_backward(terms["total"])
        else:
            terms["total"].backward()
        optimizer.step()
        return terms

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        real_images, fake_images, labels, depths = batch
        depths = depths.clamp(max=self.hparams.max_depth)  # real datasets store sky far beyond the far plane
        batch = (real_images, fake_images, labels, depths)
        opt_g, opt_d = self.optimizers()
        sched_g, sched_d = self.lr_schedulers()
        self.trained_steps += 1
        # Under manual optimization Lightning steps no scheduler: each OneCycle advances here with its
        # optimizer (D's stays put while no discriminator trains). In a warm-up, T learns the source's labels
        # before G and the adversaries start; D's schedule advances too, so the adversaries join at this point
        # of the same OneCycle clock.
        if self.trained_steps <= self.hparams.warmup_steps:
            g_terms, d_terms = self.warmup_step(batch, opt_g), {}
            with warnings.catch_warnings():    # "scheduler stepped before its optimizer": on purpose here
                warnings.simplefilter("ignore", UserWarning)
                sched_d.step()
        else:
            g_terms, d_terms = self._adversarial_step(batch, opt_g, opt_d)
            if d_terms:
                sched_d.step()
        sched_g.step()
        if self.hparams.ema_decay > 0:
            self.update_ema()
        return self._log_step(g_terms, d_terms, sched_g, sched_d, real_images.shape[0])

    def _adversarial_step(self, batch: Batch, opt_g: torch.optim.Optimizer,
                          opt_d: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """The method's step: G and T once, the discriminators' step, then G's and T's step."""
        real_images = batch[0]

        # 1. G and T run once: neither changes before the generator step, so the discriminator step
        #    reads their outputs detached and the generator step back-propagates through the same graph.
        outputs = self.forward_pass(*batch, generator=self.noise_generator(real_images.device))

        # 2. Discriminator step first: the discriminators "lead", so the generator step that follows
        #    gets gradients from discriminators that already tell the current G's output apart.
        d_terms = self.discriminator_step(batch, opt_d, outputs) if self.adapts else {}

        # 3. Generator step: only G and T change.
        g_terms = self.generator_step(batch, opt_g, outputs)
        return g_terms, d_terms

    def _log_step(self, g_terms: dict[str, torch.Tensor], d_terms: dict[str, torch.Tensor], sched_g, sched_d,
                  batch_size: int) -> torch.Tensor:
        logs = train_logs(g_terms, d_terms)
        logs["train/lr"] = torch.tensor(sched_g.get_last_lr()[0])
        logs["train/lr_d"] = torch.tensor(sched_d.get_last_lr()[0])
        self.log_dict(logs, prog_bar=False, on_step=True, on_epoch=False, batch_size=batch_size)
        self.log("loss", g_terms["total"].detach(), prog_bar=True, on_step=True, on_epoch=False,
                 batch_size=batch_size)
        return g_terms["total"].detach()

    def validation_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> None:
        images, labels, depths = batch
        logits, depth = self(images)
        pred = predicted_classes(logits)
        self.val_miou.update(pred, labels)
        self.val_iou.update(pred, labels)
        self.val_depth.update(depth, depths, labels)

    def on_validation_epoch_start(self) -> None:
        self._swap_in_ema()      # the moving average validates (ema_decay > 0); the live weights train on

    def on_train_end(self) -> None:
        """With ``ema_decay > 0`` the moving average becomes the model's weights: it is evaluated and saved."""
        self._swap_out_ema()
        if self._ema is not None:
            torch._foreach_copy_([p.data for p in self._averaged()], self._ema)

    def on_validation_epoch_end(self) -> None:
        logs = {"val/miou": self.val_miou.compute()}
        logs |= {f"val/depth_{k}": v.float() for k, v in self.val_depth.compute().items()}
        for k, iou in enumerate(self.val_iou.compute()):
            logs[f"val/iou_{k}"] = iou
        self.log_dict(logs, sync_dist=False)  # torchmetrics already syncs its states across ranks
        for m in (self.val_miou, self.val_iou, self.val_depth):
            m.reset()
        self._swap_out_ema()

    def configure_optimizers(self):
        hp = self.hparams
        # fused: one kernel over all of a group's tensors (2 ms a step on the CPU against 12 for the
        # per-tensor loop that is torch's default there; the same update up to rounding).
        # d_lr_scale: two time scales (Heusel et al. 2017), the discriminators' peak rate apart from G's and T's.
        peaks = (hp.init_lr, hp.init_lr * hp.d_lr_scale)
        optimizers = [torch.optim.Adam(params, lr=lr, betas=tuple(hp.betas), fused=True)
                      for params, lr in zip(self.parameter_groups(), peaks)]
        schedulers = [torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=lr, epochs=hp.num_epochs, steps_per_epoch=hp.num_steps_per_epoch,
            base_momentum=hp.betas[0], max_momentum=max(hp.betas[0], MAX_MOMENTUM))
            for opt, lr in zip(optimizers, peaks)]
        return optimizers, schedulers

"""The discriminators: a PatchGAN judging whether an input comes from the real (target) domain."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .common import init_weights


class Discriminator(nn.Module):
    """D: inputs B×C'×H×W -> probability B×1 that the input is real.

    Fully convolutional: it scores each receptive field (``logits_map``: B×1×H/8×W/8), the losses use
    those logits with ``BCEWithLogits`` (numerically stable), and ``forward`` averages the per-location
    probabilities. ``confidence_map`` upsamples them to B×1×H×W to show *where* the input looks fake.

    Args:
        input_channels: C', 3 for images, K + 1 for task outputs (class probabilities + depth).
        width: channels of the first layer.
        generator: private source of the initial weights (None: torch's global RNG).
        spectral_norm: divide each convolution's weight by its largest singular value (Miyato et al. 2018).
        least_squares: trained with least-squares losses (LSGAN), so its raw output is a score aimed at
            1 (real) or 0 (fake) rather than a logit; ``probability`` then clamps it to [0, 1].
    """

    def __init__(self, input_channels: int, *, width: int = 32, generator: torch.Generator | None = None,
                 spectral_norm: bool = False, least_squares: bool = False) -> None:
        super().__init__()
        self.least_squares = least_squares
        w = width
        self.net = nn.Sequential(
            nn.Conv2d(input_channels, w, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(w, 2 * w, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(2 * w, 4 * w, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(4 * w, 4 * w, 3, 1, 1), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(4 * w, 1, 3, 1, 1))
        init_weights(self, generator=generator)
        if spectral_norm:
            for i, m in enumerate(self.net):
                if isinstance(m, nn.Conv2d):
                    self.net[i] = nn.utils.parametrizations.spectral_norm(m)

    def probability(self, logits: torch.Tensor) -> torch.Tensor:
        """D's raw outputs -> P(real): the sigmoid of a logit, or an LSGAN score clamped to [0, 1]."""
        return logits.clamp(0, 1) if self.least_squares else torch.sigmoid(logits)

    def logits_map(self, inputs: torch.Tensor) -> torch.Tensor:
        """B×C'×H×W -> per-location logits B×1×H/8×W/8."""
        return self.net(inputs)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.probability(self.logits_map(inputs)).mean(dim=(2, 3))  # B×1

    def confidence_map(self, inputs: torch.Tensor) -> torch.Tensor:
        """B×C'×H×W -> probability "real" per location, upsampled to B×1×H×W."""
        return self.upsampled(self.probability(self.logits_map(inputs)), inputs.shape[2:])

    @staticmethod
    def upsampled(probs: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Per-location probabilities B×1×h×w -> B×1×H×W (bilinear), to lay over the input."""
        return F.interpolate(probs, size=tuple(size), mode="bilinear", align_corners=False)

"""The image transform network G: synthetic image + labels + depth -> "real-looking" image."""
from __future__ import annotations

import torch
from torch import nn

from ..constants import FAR_DEPTH
from .common import ResidualBlock, Upsample2x, conv_norm_act, init_weights, one_hot_labels


class ImageTransformNetwork(nn.Module):
    """G: (image B×3×H×W in [-1, 1], labels B×K×H×W one-hot or B×H×W indices, depth B×1×H×W metres)
    -> translated image B×3×H×W in [-1, 1].

    A residual encoder-decoder with a full-resolution skip (U-Net style) over the concatenated inputs
    B×(K+4+N)×H×W, where N noise channels let G synthesise what its inputs do not determine (surface
    texture, sensor noise), as in PixelDA (Bousmalis et al., 2017). It predicts a correction in logit
    space, ``tanh(atanh(x) + r)``: G starts as the identity and its output stays in the input's range.

    Args:
        input_channels: K + 4 (RGB + K label channels + depth).
        output_channels: 3.
        width: channels of the first stage (the bottleneck has 4× as many).
        num_blocks: residual blocks at the bottleneck (H/4×W/4).
        max_depth: metres; depth is fed to the network as ``depth / max_depth``.
        noise_channels: per-pixel standard-normal noise maps appended to the input (0: deterministic G).
        generator: private source of the initial weights (None: torch's global RNG).
    """

    def __init__(self, input_channels: int, output_channels: int, *, width: int = 32, num_blocks: int = 2,
                 max_depth: float = FAR_DEPTH, noise_channels: int = 1,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        if input_channels < 6:
            raise ValueError(f"input_channels={input_channels}: expected K + 4 (RGB + K label channels + depth)")
        self.num_classes, self.max_depth, self.noise_channels = input_channels - 4, max_depth, noise_channels
        w = width
        self.stem = conv_norm_act(input_channels + noise_channels, w)
        self.encoder = nn.Sequential(conv_norm_act(w, 2 * w, stride=2), conv_norm_act(2 * w, 4 * w, stride=2))
        self.blocks = nn.Sequential(*[ResidualBlock(4 * w, 4 * w) for _ in range(num_blocks)])
        self.decoder = nn.Sequential(
            Upsample2x(), conv_norm_act(4 * w, 2 * w), Upsample2x(), conv_norm_act(2 * w, w))
        self.head = nn.Conv2d(2 * w, output_channels, 3, padding=1)
        init_weights(self, generator=generator)
        # The last layer starts at zero so G starts as the exact identity: T first learns from the
        # source images themselves, and the adversary moves G away from them only as far as it must.
        nn.init.zeros_(self.head.weight)

    def forward(self, fake_images: torch.Tensor, labels: torch.Tensor, depths: torch.Tensor,
                noise: torch.Tensor | None = None) -> torch.Tensor:
        """``noise`` B×N×H×W (drawn from torch's RNG when None)."""
        b, _, h, w = fake_images.shape
        if h % 4 or w % 4:
            raise ValueError(f"image size {h}×{w} must be divisible by 4")
        if depths.shape != (b, 1, h, w):
            raise ValueError(f"depths must be B×1×H×W = {(b, 1, h, w)}, got {tuple(depths.shape)}")
        if noise is None:
            noise = torch.randn(b, self.noise_channels, h, w, device=fake_images.device, dtype=fake_images.dtype)
        onehot = one_hot_labels(labels, self.num_classes).type_as(fake_images)
        depth = depths.clamp(0, self.max_depth) / self.max_depth     # sky may be stored far beyond it
        x = torch.cat([fake_images, onehot, depth, noise], dim=1)  # B×(3+K+1+N)×H×W
        skip = self.stem(x)                                                         # B×w×H×W
        up = self.decoder(self.blocks(self.encoder(skip)))                          # B×w×H×W
        residual = self.head(torch.cat([up, skip], dim=1))                          # B×3×H×W
        return torch.tanh(torch.atanh(fake_images.clamp(-0.999, 0.999)) + residual)

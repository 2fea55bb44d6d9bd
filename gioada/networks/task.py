"""The task network T: a DeepLabV3+-style segmentation + depth network."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..constants import ENCODERS, FAR_DEPTH, shipped_encoder
from .common import ResidualBlock, conv_norm_act, init_weights, resize_bilinear
from .efficientnet import EfficientNetLite0


class Backbone(nn.Module):
    """ResNet-style encoder: B×C×H×W -> (low B×w×H/4×W/4, high B×8w×H/os×W/os).

    Stages beyond the output stride trade their stride for dilation, as in DeepLabV3.
    """

    def __init__(self, input_channels: int, width: int, output_stride: int) -> None:
        super().__init__()
        w = width
        self.stem = nn.Sequential(conv_norm_act(input_channels, w, stride=2), conv_norm_act(w, w))  # /2
        self.layer1 = nn.Sequential(ResidualBlock(w, w, stride=2), ResidualBlock(w, w))             # /4
        self.layer2 = nn.Sequential(ResidualBlock(w, 2 * w, stride=2), ResidualBlock(2 * w, 2 * w))  # /8
        s3, d3 = (2, 1) if output_stride == 16 else (1, 2)
        self.layer3 = nn.Sequential(ResidualBlock(2 * w, 4 * w, stride=s3, dilation=1),
                                    ResidualBlock(4 * w, 4 * w, dilation=d3))
        d4 = 2 * d3
        self.layer4 = nn.Sequential(ResidualBlock(4 * w, 8 * w, dilation=d4 // 2),
                                    ResidualBlock(8 * w, 8 * w, dilation=d4))
        self.low_channels, self.high_channels = w, 8 * w

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        low = self.layer1(self.stem(x))
        return low, self.layer4(self.layer3(self.layer2(low)))


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling: B×C_in×h×w -> B×C_out×h×w."""

    def __init__(self, c_in: int, c_out: int, rates: tuple[int, ...]) -> None:
        super().__init__()
        self.branches = nn.ModuleList(
            [conv_norm_act(c_in, c_out, kernel=1)] + [conv_norm_act(c_in, c_out, dilation=r) for r in rates])
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(c_in, c_out, 1), nn.ReLU(inplace=True))
        self.project = conv_norm_act(c_out * (len(rates) + 2), c_out, kernel=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.pool(x).expand(-1, -1, *x.shape[2:])
        return self.project(torch.cat([b(x) for b in self.branches] + [pooled], dim=1))  # B×(n·C_out)×h×w


class Decoder(nn.Module):
    """DeepLabV3+ decoder: fuse upsampled ASPP features with low-level ones -> B×C×H/4×W/4."""

    def __init__(self, low_channels: int, aspp_channels: int, channels: int) -> None:
        super().__init__()
        self.reduce = conv_norm_act(low_channels, max(8, low_channels // 2), kernel=1)
        self.fuse = nn.Sequential(conv_norm_act(aspp_channels + max(8, low_channels // 2), channels),
                                  conv_norm_act(channels, channels))

    def forward(self, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        high = resize_bilinear(high, low.shape[2:])
        return self.fuse(torch.cat([high, self.reduce(low)], dim=1))  # B×(C_aspp + C_low')×H/4×W/4


class TaskNetwork(nn.Module):
    """T: image B×C×H×W -> (segmentation logits B×K×H×W, depth in metres B×1×H×W).

    Backbone -> ASPP -> decoder -> two heads (segmentation, depth). Depth is ``max_depth·sigmoid(·)``,
    so it is always in (0, max_depth).

    Args:
        input_channels: C, image channels (3 for RGB).
        num_classes: K, segmentation classes.
        pretrained_backbone: load the encoder's weights from ``backbone_weights`` (a local .safetensors file
            holding its state dict); nothing is downloaded.
        width: channels of the first stage; later stages use 2, 4 and 8 times as many.
        output_stride: 8 or 16, the backbone's downsampling.
        max_depth: metres; the far plane (sky).
        backbone_weights: path used when ``pretrained_backbone`` is True (None: the encoder's shipped
            weights, :func:`~gioada.constants.shipped_encoder`, where there are any).
        encoder: ``"resnet"`` (:class:`Backbone`, ``width`` channels, learnt from scratch) or
            ``"efficientnet-lite0"`` (:class:`~gioada.networks.efficientnet.EfficientNetLite0`, with
            ImageNet weights when ``pretrained_backbone``; ``width`` then sets the decoder's channels).
        generator: private source of the initial weights (None: torch's global RNG).
    """

    def __init__(self, input_channels: int, num_classes: int, pretrained_backbone: bool = False, *,
                 width: int = 32, output_stride: int = 8, max_depth: float = FAR_DEPTH,
                 backbone_weights: str | None = None, encoder: str = "resnet",
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        if output_stride not in (8, 16):
            raise ValueError(f"output_stride={output_stride} is invalid: use 8 or 16")
        if encoder not in ENCODERS:
            raise ValueError(f"encoder={encoder!r} is invalid: use {' or '.join(ENCODERS)}")
        if encoder != "resnet" and input_channels != 3:
            raise ValueError(f"the {encoder} encoder reads RGB images: input_channels must be 3, not {input_channels}")
        self.num_classes, self.max_depth, self.encoder = num_classes, max_depth, encoder
        self.backbone = (Backbone(input_channels, width, output_stride) if encoder == "resnet"
                         else EfficientNetLite0(output_stride))
        rates = (2, 4, 6) if output_stride == 8 else (1, 2, 3)  # small images: modest dilation rates
        self.aspp = ASPP(self.backbone.high_channels, 4 * width, rates)
        self.decoder = Decoder(self.backbone.low_channels, 4 * width, 2 * width)
        self.seg_head = nn.Conv2d(2 * width, num_classes, 1)
        self.depth_head = nn.Sequential(conv_norm_act(2 * width, width), nn.Conv2d(width, 1, 1))
        init_weights(self, generator=generator)
        if pretrained_backbone:
            self.load_backbone(backbone_weights)

    def load_backbone(self, path: str | None) -> None:
        """Load the encoder's weights from a local .safetensors file (never a pickle); None: the shipped ones."""
        path = path or shipped_encoder(self.encoder)
        if not path:
            raise ValueError(f"pretrained_backbone=True needs backbone_weights: the path of a local .safetensors "
                             f"file with {self.encoder} encoder weights (nothing can be downloaded; none ship for "
                             f"it). Pass pretrained_backbone=False to train from scratch.")
        if not Path(path).is_file():
            raise FileNotFoundError(f"backbone weights not found: {path}")
        from safetensors.torch import load_file
        missing, unexpected = self.backbone.load_state_dict(load_file(path), strict=False)
        if missing or unexpected:
            raise ValueError(f"{path} does not match this backbone: missing {missing[:3]}…, unexpected {unexpected[:3]}…")

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        size = image.shape[2:]
        low, high = self.backbone(image)
        feats = self.decoder(low, self.aspp(high))  # B×2w×H/4×W/4
        heads = torch.cat([self.seg_head(feats), self.depth_head(feats)], dim=1)  # B×(K+1)×H/4×W/4
        logits, depth = resize_bilinear(heads, size).split([self.num_classes, 1], dim=1)
        return logits, self.max_depth * torch.sigmoid(depth)

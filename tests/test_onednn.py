"""T's layers on every oneDNN ISA path: no native crash, the same gradients as a float64 reference.

oneDNN picks its kernels by the CPU's ISA (AMX, AVX-512, AVX2); CI's CPU is one of them. Each case here
runs in a fresh process under ``ONEDNN_MAX_CPU_ISA`` (a crash there is a failed test here, not a dead test
run). The strided 1×1 skip of a residual block once crashed for C_in below oneDNN's channel block
(issue 23; ``bench/repro_onednn.py``)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

ISAS = ("AVX512_CORE", "AVX2", None)   # None: what this CPU has
pytestmark = pytest.mark.slow            # 12 fresh processes: `make test` runs them, `make test-fast` does not

CASE = r"""
import copy, sys, torch
from gioada.networks.common import ResidualBlock
c = int(sys.argv[1])
torch.manual_seed(0)
block = ResidualBlock(c, c, stride=2).to(memory_format=torch.channels_last)
ref = copy.deepcopy(block).double().to(memory_format=torch.contiguous_format)
for mb, h, w in ((8, 32, 96), (2, 64, 192), (4, 16, 48)):
    x = torch.randn(mb, c, h, w)
    for net, xin in ((block, x.contiguous(memory_format=torch.channels_last)), (ref, x.double())):
        net.zero_grad()
        (net(xin) ** 2).mean().backward()
    for (name, p), q in zip(block.named_parameters(), ref.parameters()):
        err = ((p.grad.double() - q.grad).abs().max() / q.grad.abs().max().clamp(min=1e-12)).item()
        assert err < 1e-3, (name, mb, h, w, err)
print("ok")
"""


def run_isolated(code: str, *args: str, isa: str | None) -> subprocess.CompletedProcess:
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    env.pop("ONEDNN_MAX_CPU_ISA", None)
    if isa:
        env["ONEDNN_MAX_CPU_ISA"] = isa
    return subprocess.run([sys.executable, "-X", "faulthandler", "-c", code, *args], env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("isa", ISAS, ids=lambda i: i or "native")
@pytest.mark.parametrize("channels", [4, 8, 12, 16])
def test_a_strided_residual_block_trains_in_channels_last_on_every_isa(isa, channels):
    p = run_isolated(CASE, str(channels), isa=isa)
    assert p.returncode == 0 and p.stdout.strip() == "ok", (
        f"exit {p.returncode} under ONEDNN_MAX_CPU_ISA={isa}:\n{p.stderr[-2000:]}")

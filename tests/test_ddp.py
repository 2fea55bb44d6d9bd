"""Training scales past one process unchanged: DDP over gloo on two CPU processes."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow     # `make test-fast` leaves it out; `make test` runs it

ROOT = Path(__file__).resolve().parent.parent


def test_two_process_ddp_ends_with_identical_weights_and_synced_metrics(tmp_path):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "gioada", "train", "--out", str(out), "--steps", "3", "--val-every", "3",
           "--devices", "2", "--device", "cpu", "--height", "32", "--width", "64", "--batch-size", "2",
           "--task-width", "8", "--transform-width", "8", "--disc-width", "8", "--val-scenes", "4",
           "--eval-scenes", "2"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    ddp = json.loads((out / "run.json").read_text())["ddp"]
    assert ddp["world_size"] == 2
    assert len(ddp["weight_hashes"]) == 2 and ddp["weights_identical"], ddp
    assert len(ddp["val_miou_per_rank"]) == 2 and ddp["metrics_synchronised"], ddp

#!/usr/bin/env bash
# Everything measured on a GPU, in one prepared run (see bench/gpu.py): needs torch, Lightning,
# torchmetrics, numba, safetensors, matplotlib, pillow and pytest; no network, no gradio.
#   bash bench/gpu.sh            # on a CUDA machine: under 8 minutes on an H100-class GPU
#   PYTHON=.venv/bin/python bash bench/gpu.sh --smoke   # tiny settings, any machine: checks it end to end
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
exec "${PYTHON:-python3}" bench/gpu.py "$@"

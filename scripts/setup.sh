#!/usr/bin/env bash
# Create .venv (if needed) and install shc with its test and benchmark extras.
#
# torch: the encoder needs it. If the venv has none yet we install ${SHC_TORCH_SPEC:-torch==2.13.0}
# first; on the project's build machines that exact release is the CPU build kept on local disk, so no
# multi-GB CUDA download happens. Elsewhere set SHC_TORCH_SPEC (e.g. "torch" or a CUDA build) as you like;
# the package itself only asks for torch>=2.1.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
if ! .venv/bin/python -c "import torch" >/dev/null 2>&1; then
    .venv/bin/python -m pip install -q "${SHC_TORCH_SPEC:-torch==2.13.0}"
fi
.venv/bin/python -m pip install -q -e ".[dev]"

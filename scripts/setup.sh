#!/usr/bin/env bash
# Create .venv (if needed) and install shc with everything: the encoder (torch), tests and benchmark extras.
#
# torch: only the encoder needs it (a decode-only install is `pip install .`; see README). If the venv has
# none yet we install ${SHC_TORCH_SPEC:-torch==2.13.0} first; on the project's build machines that exact
# release is the CPU build kept on local disk, so no multi-GB CUDA download happens. Elsewhere set
# SHC_TORCH_SPEC (e.g. "torch" or a CUDA build) as you like; the `encode` extra only asks for torch>=2.1.
# The install of ".[dev]" is then constrained to the torch already in the venv, so pip never swaps it for
# another build (if that torch were too old for shc, pip stops with a conflict instead of downloading one).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
if ! .venv/bin/python -c "import torch" >/dev/null 2>&1; then
    .venv/bin/python -m pip install -q "${SHC_TORCH_SPEC:-torch==2.13.0}"
fi
constraints=$(mktemp)
trap 'rm -f "$constraints"' EXIT
.venv/bin/python - >"$constraints" <<'PY'
import importlib.metadata as metadata
try:
    print("torch==" + metadata.version("torch"))
except metadata.PackageNotFoundError:  # importable but not pip-installed (e.g. on PYTHONPATH): nothing to pin
    pass
PY
.venv/bin/python -m pip install -q -c "$constraints" -e ".[dev]"

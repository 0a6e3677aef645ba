#!/usr/bin/env bash
# The GPU check, for a machine with CUDA and the project's dependencies already installed (no network):
# the CUDA tests (and the model tests), then the speed benchmark (steps, encode, decode) on the device.
# Figures go to ${OUT:-results/speed-gpu}. DEVICE=cpu runs the same script without a GPU (the CUDA tests
# then skip), which is how its plumbing is checked on CPU-only machines.
#   [PYTHON=python3] [DEVICE=cuda] [OUT=results/speed-gpu] scripts/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
device=${DEVICE:-cuda}
out=${OUT:-results/speed-gpu}
mkdir -p "$out"
"$python" -m pytest -q tests/test_cuda.py tests/test_codec.py 2>&1 | tee "$out/tests.txt"
"$python" studies/speed/run.py examples/kodim23.png --device "$device" --json "$out/speed-$device.json" \
    | tee "$out/speed-$device.txt"

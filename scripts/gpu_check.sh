#!/usr/bin/env bash
# The GPU check, for a machine with CUDA and the project's dependencies already installed (no network):
# the CUDA tests, then the speed benchmark on cuda (encode, steps, decode). Figures go to ${OUT:-results/speed-gpu}.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-results/speed-gpu}
mkdir -p "$out"
python3 -m pytest -q tests/test_cuda.py tests/test_codec.py 2>&1 | tee "$out/tests.txt"
python3 -m shc.bench.speed examples/kodim23.png --device cuda --json "$out/speed-cuda.json" | tee "$out/speed-cuda.txt"

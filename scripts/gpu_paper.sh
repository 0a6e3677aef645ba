#!/usr/bin/env bash
# The paper's kodim19 run to its full 60,000 full-image steps, for a machine with CUDA and the project's
# dependencies installed (no network): too long for this project's 2-core CPUs (0.25 s a step, ~4 hours).
# Writes kodim19_paper.{shc,json} to ${OUT:-results/paper-gpu}; the JSON holds both counts (shc's file and
# the reference code's soft PSNR at the lowest training MSE + histogram bits + float32 weights).
#   [PYTHON=python3] [DEVICE=cuda] [STEPS=60000] [OUT=results/paper-gpu] scripts/gpu_paper.sh [IMAGE]
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
image=${1:-examples/kodim19.png}
out=${OUT:-results/paper-gpu}
mkdir -p "$out"
"$python" studies/paper/run.py "$image" --preset paper --quality 4 --steps "${STEPS:-60000}" \
    --device "${DEVICE:-cuda}" -o "$out" 2>&1 | tee "$out/run.txt"

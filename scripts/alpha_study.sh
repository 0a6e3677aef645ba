#!/usr/bin/env bash
# Alpha as the network's 4th output (one file, format v5 channels = 4) or as a separate grid (the RGB file
# plus the alpha plane as its own file): bytes, RGB PSNR and alpha PSNR on a Kodak photo with two masks
# (a soft-edged ellipse, a luma cut-out). Writes results/alpha/<image>_<mask>.{png,json}.
#   scripts/alpha_study.sh [KODAK_DIR] [PRESET] [QUALITY]
set -euo pipefail
cd "$(dirname "$0")/.."
kodak=${1:-../shared/data/kodak}
preset=${2:-fast}
quality=${3:-3}
PYTHON=${PYTHON:-.venv/bin/python}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} MKL_NUM_THREADS=${MKL_NUM_THREADS:-1}  # the machine is shared
for mask in ellipse threshold; do
    "$PYTHON" scripts/alpha_study.py "$kodak/kodim23.png" --mask "$mask" --out results/alpha \
        --preset "$preset" --quality "$quality" --alpha-qualities 1,3
done

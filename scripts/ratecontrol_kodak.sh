#!/usr/bin/env bash
# Regenerates results/ratecontrol: rate control (--target-size, --target-bpp, --target-psnr) on the eight
# Kodak images of results/kodak-cpu, default preset, this machine's CPU: target vs achieved per image.
#   scripts/ratecontrol_kodak.sh [KODAK_DIR] [IMAGES]
# Each encode is one default-preset encode (~1.5 min on 2 CPU cores): 24 encodes, ~40 min. Resumes.
set -euo pipefail
cd "$(dirname "$0")/.."
kodak=${1:-../shared/data/kodak}
images=${2:-kodim01,kodim02,kodim05,kodim13,kodim15,kodim19,kodim21,kodim23}
scripts/setup.sh
.venv/bin/python studies/ratecontrol/run.py "$kodak" -o results/ratecontrol --images "$images" \
    --size 12000 --bpp 0.5 --psnr 29

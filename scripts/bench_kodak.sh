#!/usr/bin/env bash
# Regenerates results/kodak-cpu: shc vs classic codecs on Kodak images, on this machine's CPU.
#   scripts/bench_kodak.sh [KODAK_DIR] [IMAGES] [QUALITIES]
# Defaults: ../shared/data/kodak, two images (kodim19, kodim23), shc qualities 1,3,5,7.
# On a 2-core CPU each shc point costs ~75-100 s; all 24 images x 8 qualities want a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
kodak=${1:-../shared/data/kodak}
images=${2:-kodim19,kodim23}
qualities=${3:-1,3,5,7}
scripts/setup.sh
published=()
[ -f "$kodak/../kodak_published_rd.csv" ] && published=(--published "$kodak/../kodak_published_rd.csv")
.venv/bin/shc bench "$kodak" -o results/kodak-cpu --images "$images" --qualities "$qualities" \
    --codecs shc,jpeg420,jpeg444,webp,avif,heic,jpeg2000 "${published[@]}" --no-progress

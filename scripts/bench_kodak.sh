#!/usr/bin/env bash
# Regenerates results/kodak-cpu: shc (and its no-entropy baseline, ngp) vs classic codecs on Kodak images,
# on this machine's CPU.
#   scripts/bench_kodak.sh [KODAK_DIR] [IMAGES] [QUALITIES] [NGP_QUALITIES]
# Defaults: ../shared/data/kodak, eight images, shc qualities 1,3,5,7, no ngp baseline (NGP_QUALITIES
# e.g. 1,3 adds the no-entropy baseline; it was measured with shc 0.2.0, see results/kodak-cpu/README.md).
# On a 2-core CPU each shc point costs ~1-2.5 min; all 24 images x 8 qualities want a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
kodak=${1:-../shared/data/kodak}
images=${2:-kodim01,kodim02,kodim05,kodim13,kodim15,kodim19,kodim21,kodim23}
qualities=${3:-1,3,5,7}
ngp_qualities=${4:-none}
scripts/setup.sh
published=()
[ -f "$kodak/../kodak_published_rd.csv" ] && published=(--published "$kodak/../kodak_published_rd.csv")
ngp=(--ngp-qualities "$ngp_qualities")
codecs=shc,ngp,jpeg420,jpeg444,webp,avif,heic,jpeg2000
if [ "$ngp_qualities" = none ]; then ngp=(); codecs=${codecs/ngp,/}; fi
.venv/bin/shc bench "$kodak" -o results/kodak-cpu --images "$images" --qualities "$qualities" \
    "${ngp[@]}" --codecs "$codecs" \
    "${published[@]}" --no-progress

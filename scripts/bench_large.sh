#!/usr/bin/env bash
# Regenerates results/large-cpu: shc on the two large photos of ../shared/data/large (24 MP JPEG, 200 MP HEIC):
# whole-process encode (time, peak RSS, bpp, PSNR), a 1024x1024 region decode, a streamed full decode to PNG,
# and Pillow's JPEG, WebP and AVIF at similar sizes. On 2 CPU cores: about an hour, most of it the 200 MP encode.
#   scripts/bench_large.sh [LARGE_DIR] [QUALITY]
set -euo pipefail
cd "$(dirname "$0")/.."
large=${1:-../shared/data/large}
quality=${2:-3}
scripts/setup.sh
.venv/bin/python -m shc.bench.large "$large/immich_craft_beer_6000x4000.jpg" "$large/s24u_200mp_office.heic" \
    -o results/large-cpu --quality "$quality"

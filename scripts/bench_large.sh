#!/usr/bin/env bash
# Regenerates results/large-cpu (shc 0.8.0, format 7) on this CPU, nothing else running:
#  1. the 200 MP HEIC of ../shared/data/large at the default preset, quality 3: whole-process encode (time,
#     peak RSS, bytes, PSNR), a 1024x1024 region decode, level-of-detail previews at 1/8 and 1/32 (bytes
#     read), a streamed full decode, and Pillow's AVIF, WebP and JPEG near its size; the .shc is kept;
#  2. the region decode's cost against the file's size: a 50 MP crop of that photo and the 24 MP JPEG,
#     encoded with 400 steps (what a region costs to decode depends on the grid, not on the training);
#  3. `shc serve` of the 200 MP file in headless Chromium: the time to the first full screen.
# About 40 minutes on 2 cores, most of it the 200 MP encode and AVIF.
#   scripts/bench_large.sh [LARGE_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
large=${1:-../shared/data/large}
out=results/large-cpu
scripts/setup.sh >/dev/null
.venv/bin/python studies/large/run.py "$large/s24u_200mp_office.heic" -o "$out" --quality 3 --keep --classic ""
# Pillow's smallest files of the same photo (none comes near shc's size; in process)
.venv/bin/python studies/large/run.py "$large/s24u_200mp_office.heic" -o "$out" --classic-only \
    --classic avif:0,webp:0,jpeg:1
crop=$(mktemp -d)/crop50mp.png
.venv/bin/python - "$large/s24u_200mp_office.heic" "$crop" <<'PY'
import sys
from shc.images import load_image
from PIL import Image
pixels = load_image(sys.argv[1], max_pixels=1 << 30, alpha=False).pixels
h, w = pixels.shape[:2]
Image.fromarray(pixels[(h - 6120) // 2 : (h + 6120) // 2, (w - 8160) // 2 : (w + 8160) // 2]).save(sys.argv[2])
PY
.venv/bin/python studies/large/run.py "$crop" "$large/immich_craft_beer_6000x4000.jpg" -o "$out" --quality 3 \
    --steps 400 --classic "" --skip-full-decode
scripts/serve_screenshot.sh "$out/s24u_200mp_office_q3.shc" results/deepzoom/serve_office_200mp.png \
    | tee "$out/serve-200mp.txt"

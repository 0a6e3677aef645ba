#!/usr/bin/env bash
# Set up, then encode the photo shipped in the repo and decode it again; prints bytes, bpp and PSNR.
#   scripts/demo.sh [IMAGE] [extra `shc encode` options, e.g. --preset fast]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
image=${1:-examples/kodim23.png}
shift || true
mkdir -p out
name=$(basename "${image%.*}")
.venv/bin/shc encode "$image" -o "out/$name.shc" --force "$@"
.venv/bin/shc info "out/$name.shc"
.venv/bin/shc decode "out/$name.shc" -o "out/$name.decoded.png" --force
.venv/bin/shc decode "out/$name.shc" -o "out/$name.x2.png" --scale 2 --force
.venv/bin/python - "$image" "out/$name.shc" "out/$name.decoded.png" <<'PY'
import sys
from pathlib import Path
import numpy as np
from PIL import Image
from shc.images import load_rgb
from shc.metrics import psnr_db
src, shc_path, png = sys.argv[1:]
ref = load_rgb(src)
out = np.asarray(Image.open(png).convert("RGB"))
num_bytes = Path(shc_path).stat().st_size
bpp = num_bytes * 8 / (ref.shape[0] * ref.shape[1])
print(f"decoded {png}: {num_bytes} bytes, {bpp:.4f} bpp, PSNR {psnr_db(ref, out):.2f} dB (from the file, by the decoder)")
PY

#!/usr/bin/env bash
# Regenerates results/throughput: the encoder's training step against shc 0.5.0 (same machine, alternating
# processes), its torch.profiler tables, rate-distortion at equal steps on eight Kodak images, and the
# 50 MP crop of the 200 MP photo encoded whole (time, peak RSS) next to WebP and AVIF at small sizes.
#   scripts/bench_throughput.sh [KODAK_DIR] [LARGE_HEIC]
# Needs nothing else running on the machine (timings) and ~40 minutes on 2 CPU cores.
set -euo pipefail
cd "$(dirname "$0")/.."
kodak=${1:-../shared/data/kodak}
heic=${2:-../shared/data/large/s24u_200mp_office.heic}
out=results/throughput
baseline=${BASELINE:-/tmp/shc-0.5.0}
crop=${CROP:-/tmp/crop50mp.png}
full=${FULL:-/tmp/full200mp.png}
scripts/setup.sh
[ -d "$baseline" ] || git worktree add --detach "$baseline" 2daa4ae   # the last shc 0.5.0 commit
if [ ! -f "$crop" ] || [ ! -f "$full" ]; then   # the issue's 50 MP crop (8160 x 6120 at 2000, 4000) and the whole photo
    .venv/bin/python - "$heic" "$crop" "$full" <<'PY'
import sys
import pillow_heif
from PIL import Image
pillow_heif.register_heif_opener()
Image.MAX_IMAGE_PIXELS = None
with Image.open(sys.argv[1]) as image:
    image.crop((2000, 4000, 2000 + 8160, 4000 + 6120)).convert("RGB").save(sys.argv[2], compress_level=1)
    image.convert("RGB").save(sys.argv[3], compress_level=1)
PY
fi
mkdir -p "$out"
py=.venv/bin/python
$py studies/throughput/run.py --baseline "$baseline" --large "$crop" --threads 2 --json "$out/throughput.json" \
    | tee "$out/throughput.txt"
$py studies/throughput/run.py --baseline "$baseline" --profile "$out" --threads 2 --steps default=300,paper=30 \
    | tee "$out/profile-summary.txt"
images=()
for i in 01 02 05 13 15 19 21 23; do images+=("$kodak/kodim$i.png"); done
$py studies/throughput/run.py --baseline "$baseline" --threads 2 --rd "${images[@]}" --json "$out/rd-kodak8-q3.json" \
    | tee "$out/rd-kodak8-q3.txt"
$py studies/large/run.py "$crop" -o "$out/large" --classic "webp:0,webp:10,avif:0,avif:10,avif:25"
# peak RSS of a whole encode of the 200 MP photo (300 steps: memory does not grow with the steps)
/usr/bin/time -f "200 MP encode, 300 steps: %e s wall, peak RSS %M KB" .venv/bin/shc encode "$full" \
    -o /tmp/full200mp.shc --steps 300 --max-pixels 300000000 --force --json --no-progress 2>&1 | tee "$out/encode-200mp.txt"

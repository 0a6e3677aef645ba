#!/usr/bin/env bash
# Regenerates results/ablation-v4/*.json: kodim19 and kodim23 at quality 3, default preset, with each
# interpolation kernel (format v4 side information in both). One encode at a time (2 CPU cores).
#   scripts/ablation_v4.sh [KODAK_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
kodak=${1:-../shared/data/kodak}
out=results/ablation-v4
mkdir -p "$out" out
for image in kodim19 kodim23; do
    for kernel in bilinear bspline; do
        [ -s "$out/${image}_q3_$kernel.json" ] && continue
        .venv/bin/shc encode "$kodak/$image.png" -o "out/ablation_${image}_$kernel.shc" -q 3 \
            --interpolation "$kernel" --json --force --no-progress > "$out/${image}_q3_$kernel.json.tmp"
        mv "$out/${image}_q3_$kernel.json.tmp" "$out/${image}_q3_$kernel.json"
        cat "$out/${image}_q3_$kernel.json"
    done
done

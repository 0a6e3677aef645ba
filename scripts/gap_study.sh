#!/usr/bin/env bash
# Where is the RD gap? kodim19 and kodim23 at quality 3, default preset, at 1x, 4x and 16x the default
# 4,000 steps (one encode at a time: 2 CPU cores). Writes results/gap-q3/<image>_<steps>.json.
#   scripts/gap_study.sh [KODAK_DIR] [STEPS...]
set -euo pipefail
cd "$(dirname "$0")/.."
kodak=${1:-../shared/data/kodak}
shift || true
steps=${*:-4000 16000 64000}
SHC=${SHC:-.venv/bin/shc}
out=results/gap-q3
mkdir -p "$out" out
for n in $steps; do
    for image in kodim19 kodim23; do
        [ -s "$out/${image}_$n.json" ] && continue
        "$SHC" encode "$kodak/$image.png" -o "out/gap_${image}_$n.shc" -q 3 --steps "$n" --json --force --no-progress \
            > "$out/${image}_$n.json.tmp"
        mv "$out/${image}_$n.json.tmp" "$out/${image}_$n.json"
        cat "$out/${image}_$n.json"
    done
done

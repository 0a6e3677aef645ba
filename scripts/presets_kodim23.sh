#!/usr/bin/env bash
# Regenerates results/presets-kodim23: the three presets on Kodak kodim23 at the default quality, each
# with the encoder's own report (bytes, bpp, decoded PSNR, seconds) and the same-size JPEG/WebP comparison.
#   [PRESETS="fast default paper"] scripts/presets_kodim23.sh [IMAGE] [PAPER_STEPS]
# The paper preset trains 60,000 full-image steps; on a CPU we run PAPER_STEPS (default 2000) of them.
set -euo pipefail
cd "$(dirname "$0")/.."
image=${1:-examples/kodim23.png}
paper_steps=${2:-2000}
out=results/presets-kodim23
mkdir -p "$out"
{
    echo "# command: scripts/presets_kodim23.sh $image $paper_steps"
    echo "# machine: $(uname -m), $(nproc) CPUs, $(.venv/bin/python -c 'import torch; print("torch", torch.__version__, "threads", torch.get_num_threads())')"
    echo "# date: $(date -u +%Y-%m-%dT%H:%MZ)"
} > "$out/run.log"
for preset in ${PRESETS:-fast default paper}; do
    steps=()
    [ "$preset" = paper ] && steps=(--steps "$paper_steps")
    .venv/bin/shc encode "$image" -o "$out/$preset.shc" --preset "$preset" "${steps[@]}" --force --json --no-progress \
        | tee "$out/$preset.json"
    : > "$out/same_size_$preset.txt"
    for codec in jpeg420 webp; do
        .venv/bin/python studies/same_size/run.py "$image" "$out/$preset.shc" --codec "$codec" | tee -a "$out/same_size_$preset.txt"
    done
done

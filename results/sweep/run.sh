#!/usr/bin/env bash
# The run behind results/sweep: the SHACIRA appendix §3 sensitivity analysis on a 1920x1080 centre crop of the
# 24 MP JPEG in ../shared/data/large (not in the repository; the crop is made by `shc sweep --crop`).
# One CPU thread (OMP_NUM_THREADS=1, --threads 1), fast preset's 16k-pixel batches, 300 steps a point.
# Resumable: rerun it to finish an interrupted run (points in sweep.csv are skipped).
set -euo pipefail
cd "$(dirname "$0")/../.."
IMAGE=${IMAGE:-../shared/data/large/immich_craft_beer_6000x4000.jpg}
export OMP_NUM_THREADS=1
sweep() {
    .venv/bin/shc sweep "$IMAGE" -o results/sweep --crop 1920x1080 --preset fast --steps 300 --threads 1 \
        --no-progress "$@"
}
sweep --param feat_dim --values 1,2,4
sweep --param latent_dim --values 1,2,4
sweep --param num_levels --values 8,16,24
sweep --param mlp_width --values 16,48,96
sweep --param mlp_depth --values 1,2,3
sweep --param anneal --values 0.5,0.8,0.95
sweep --param row_lambda --values 2.5e-5,1e-4,4e-4
# The noise floor: the baseline (the appendix's setting) again with two other training seeds.
for seed in 1 2; do
    sweep --param mlp_depth --values 2 --seed "$seed" -o "results/sweep/seed$seed"
done

#!/usr/bin/env bash
# Re-run a fixed sample of cells of every record type (grid, domain adaptation, stream, episodes)
# into OUT, single-threaded, so that two source trees can be compared record by record with
# scripts/compare_records.py (issue 20: a restructure must not move a number).
# Usage: scripts/regen_sample.sh OUT   (run with the tree's own `bench` on PATH; ~10 min on 2 cores)
set -euo pipefail
out=${1:?usage: scripts/regen_sample.sh OUT}
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 HF_HUB_OFFLINE=1
bench run --tasks digits --encoders efficientnet-lite0,pixels --strategies scratch,linear-probe,finetune,lora \
    --budgets 1,5 --seeds 1 --out "$out/grid" --no-progress
bench run --tasks "mnist5k->digits" --encoders efficientnet-lite0 --strategies finetune,dann,cdan,mcc,coral,tent,bn-adapt \
    --budgets 10 --seeds 1 --out "$out/da" --no-progress
bench run --stream split-digits --strategies finetune,ewc,lwf,rehearsal --encoders efficientnet-lite0 --budgets 5 \
    --seeds 1 --out "$out/stream" --no-progress
bench run --episodes 5:1:5:20 --tasks digits --encoders efficientnet-lite0 --strategies prototype,linear-probe,knn \
    --seeds 1 --out "$out/episodes" --no-progress

#!/usr/bin/env bash
# Issue 14: the cold-start table on Beauty. 10 % of the items, drawn at random (Beauty has
# no timestamps), are new: out of training, out of the reshapers' fit, back at evaluation.
# SASRec, MiniLM embeddings, the paper's settings with early stopping (patience 10); each
# method's learning rate chosen on validation NDCG@10 from 1e-3, 5e-4, 1e-4 after at most
# 6 epochs per candidate (one budget for every method), then the chosen rate to early
# stopping. ace-bench reuses finished cells and resumes a killed one at its last epoch.
#
#     bash benchmarks/beauty_cold_start.sh      # several hours on 2 CPU cores
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data/beauty}
OUT=${OUT:-benchmarks/results/beauty_cold_start}
export OMP_WAIT_POLICY=PASSIVE
ace-bench --data "$DATA" --embeddings "$DATA/item_emb_all-MiniLM-L6-v2.f16.npy" \
          --methods id,pca,whitenplus,alphafuse,ace --backbones sasrec --seeds 0 \
          --protocol cold-start --cold-choice random \
          --lr-grid 1e-3,5e-4,1e-4 --grid-epochs 6 --out "$OUT"

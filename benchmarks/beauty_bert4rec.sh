#!/usr/bin/env bash
# Issue 13, item 3: BERT4Rec on Beauty trained the RecBole way (every training prefix,
# ft_ratio 0.5, mask ratio 0.2, per-item output bias, dropout 0.5 / 0.3), ID-only and ACE,
# seed 0, one learning rate for both (1e-3, the rate the SASRec grid chose for every
# baseline) and the same 6-epoch cap as the earlier BERT4Rec rows of docs/results.md.
# ace-bench reuses finished cells and resumes a killed one.
#
#     bash benchmarks/beauty_bert4rec.sh         # about 80 min on 2 CPU cores
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data/beauty}
OUT=${OUT:-benchmarks/results/beauty_bert4rec}
export OMP_WAIT_POLICY=PASSIVE
ace-bench --data "$DATA" --embeddings "$DATA/item_emb_all-MiniLM-L6-v2.f16.npy" \
          --methods id,ace --backbones bert4rec --seeds 0 --max-epochs 6 --lr 1e-3 \
          --out "$OUT"

#!/usr/bin/env bash
# Issue 17: the converged Beauty comparison. MiniLM embeddings, the paper's protocol
# (early stopping on validation NDCG@10, patience 10, at most 400 epochs), every method's
# learning rate chosen on validation NDCG@10 from 1e-3, 5e-4, 1e-4 after at most 6 epochs
# per candidate (one budget for every method), then the chosen rate to early stopping.
# Stages in order of what the table needs first; each reuses finished cells and resumes a
# killed one at its last epoch, so the run spreads over sessions (days on 2 CPU cores):
#   1. SASRec, all nine methods, seed 0 (the paper's key rows and stage 2's first);
#   2. SASRec seeds 1 and 2 for id, pca, alphafuse and ace (at seed 0's chosen rate);
#   3. GRU4Rec's training rows: ID-only on windows (the default) and on RecBole's prefix
#      rows (--sequences prefixes; another fingerprint, so both stay in results.csv), both
#      converged, to choose stage 4's rows;
#   4. GRU4Rec and BERT4Rec: id, pca, whitenplus, alphafuse, recpca, ace, seed 0; with
#      SEQUENCES=prefixes GRU4Rec trains on prefix rows (BERT4Rec always does, RecBole's way);
#   5. GRU4Rec and BERT4Rec: whiten, alpharec, llmemb, seed 0, likewise.
# BACKBONES narrows stages 4 and 5 (BACKBONES=gru4rec while
# benchmarks/beauty_converged_bert4rec.sh trains BERT4Rec's cells beside this script).
#
#     bash benchmarks/beauty_converged.sh            # STAGES="1 2" runs only those
#
# On 2 cores, stage 2 runs faster beside the others: benchmarks/beauty_converged_seeds.sh
# (one thread, its own folder, merged in afterwards) with STAGES="1 3 4 5" and
# OMP_NUM_THREADS=1 here.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data/beauty}
OUT=${OUT:-benchmarks/results/beauty_converged}
STAGES=${STAGES:-1 2 3 4 5}
SEQUENCES=${SEQUENCES:-}
BACKBONES=${BACKBONES:-gru4rec,bert4rec}
case $SEQUENCES in
  ""|prefixes) ;;
  *) echo "SEQUENCES=$SEQUENCES: leave it empty (windows for GRU4Rec) or set prefixes;" \
          "BERT4Rec trains on prefixes either way" >&2; exit 2 ;;
esac
export OMP_WAIT_POLICY=PASSIVE
bench() {
  ace-bench --data "$DATA" --embeddings "$DATA/item_emb_all-MiniLM-L6-v2.f16.npy" \
            --lr-grid 1e-3,5e-4,1e-4 --grid-epochs 6 --patience 10 "$@"
}
rows=()
if [ -n "$SEQUENCES" ]; then rows=(--sequences "$SEQUENCES"); fi
for stage in $STAGES; do
  case $stage in
    1) bench --out "$OUT" --backbones sasrec --seeds 0 \
             --methods id,pca,ace,alphafuse,whitenplus,recpca,whiten,alpharec,llmemb ;;
    2) bench --out "$OUT" --backbones sasrec --seeds 0,1,2 --methods id,pca,alphafuse,ace ;;
    3) bench --out "$OUT" --backbones gru4rec --seeds 0 --methods id
       bench --out "$OUT" --backbones gru4rec --seeds 0 --methods id --sequences prefixes ;;
    4) bench --out "$OUT" --backbones "$BACKBONES" --seeds 0 ${rows[@]+"${rows[@]}"} \
             --methods id,pca,whitenplus,alphafuse,recpca,ace ;;
    5) bench --out "$OUT" --backbones "$BACKBONES" --seeds 0 ${rows[@]+"${rows[@]}"} \
             --methods whiten,alpharec,llmemb ;;
    *) echo "unknown stage $stage (1-5)" >&2; exit 2 ;;
  esac
done

#!/usr/bin/env bash
# Issue 17, the BERT4Rec cells of beauty_converged.sh's stages 4 and 5 run beside the main
# script's GRU4Rec cells: same settings (MiniLM embeddings, learning rate chosen from
# 1e-3, 5e-4, 1e-4 after at most 6 epochs, then early stopping with patience 10), one
# thread, in a side folder. BERT4Rec trains on prefix rows either way, so these cells have
# the fingerprints the main script would give them; once both processes are stopped,
#
#     python -m recmodels.comparison.merge --into benchmarks/results/beauty_converged \
#         benchmarks/results/beauty_converged_bert4rec
#
# adds the finished ones to the main folder, where stages 4 and 5 then reuse them (commit
# that folder; the side folder is scratch). Resumes like the main script.
#
#     BACKBONES=gru4rec OMP_NUM_THREADS=1 bash benchmarks/beauty_converged.sh
#     bash benchmarks/beauty_converged_bert4rec.sh               # beside it
#
# METHOD_GROUPS (space-separated ace-bench --methods values, trained in order) splits the
# cells between two such processes in two side folders, e.g. (as on 2026-11-25, with the
# main script's GRU4Rec stage 5 paused) the comparison's required methods first:
#
#     METHOD_GROUPS="id,pca,whitenplus,alphafuse whiten" \
#         bash benchmarks/beauty_converged_bert4rec.sh
#     SIDE=benchmarks/results/beauty_converged_bert4rec2 \
#         METHOD_GROUPS="recpca,ace alpharec llmemb" bash benchmarks/beauty_converged_bert4rec.sh
#
# Give each process methods of its own: two folders know nothing of each other's cells.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data/beauty}
SIDE=${SIDE:-benchmarks/results/beauty_converged_bert4rec}
MAIN=${MAIN:-benchmarks/results/beauty_converged}
export OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
# The main folder's finished cells first (read only there), so none is trained twice.
python -m recmodels.comparison.merge --into "$SIDE" "$MAIN"
METHOD_GROUPS=${METHOD_GROUPS:-id,pca,whitenplus,alphafuse,recpca,ace whiten,alpharec,llmemb}
for methods in $METHOD_GROUPS; do
  ace-bench --data "$DATA" --embeddings "$DATA/item_emb_all-MiniLM-L6-v2.f16.npy" \
            --lr-grid 1e-3,5e-4,1e-4 --grid-epochs 6 --patience 10 \
            --backbones bert4rec --seeds 0 --methods "$methods" --out "$SIDE"
done

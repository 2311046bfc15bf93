#!/usr/bin/env bash
# Issue 17, stage 2 of beauty_converged.sh run beside the other stages: SASRec seeds 1 and 2
# for id, pca, alphafuse and ace at the rates seed 0 chose there (pca 5e-4, the others
# 1e-3; `ace-bench --dry-run` on the main folder prints them), into a side folder, one
# thread. Two one-thread processes (this and `STAGES="1 3 4 5" OMP_NUM_THREADS=1 bash
# benchmarks/beauty_converged.sh`) train more epochs an hour on 2 cores than one process
# with two threads. These cells have the fingerprints stage 2 would give them (same
# settings; the grid is not part of a cell's), so once both processes are stopped,
#
#     python -m recmodels.comparison.merge --into benchmarks/results/beauty_converged \
#         benchmarks/results/beauty_converged_side
#
# adds the finished ones to the main folder, where stage 2 then reuses them (commit that
# folder; the side folder is scratch). Resumes like the main script (checkpoints stay in
# the side folder).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data/beauty}
SIDE=${SIDE:-benchmarks/results/beauty_converged_side}
MAIN=${MAIN:-benchmarks/results/beauty_converged}
export OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
# The main folder's finished cells first (it only reads there, so the other process may
# run): on a fresh clone the side folder is empty, and the seeds merged in before are not
# trained again.
python -m recmodels.comparison.merge --into "$SIDE" "$MAIN"
seeds() {
  ace-bench --data "$DATA" --embeddings "$DATA/item_emb_all-MiniLM-L6-v2.f16.npy" \
            --patience 10 --backbones sasrec --seeds 1,2 --out "$SIDE" "$@"
}
seeds --methods ace --lr 1e-3
seeds --methods pca --lr 5e-4
seeds --methods id --lr 1e-3
seeds --methods alphafuse --lr 1e-3

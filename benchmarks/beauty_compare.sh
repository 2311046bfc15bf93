#!/bin/bash
# The Beauty comparison of docs/results.md: every method on SASRec, id/pca/alphafuse/ace on
# GRU4Rec and BERT4Rec, 1 seed, at most 6 epochs each (about 80 min on 2 CPU cores).
# Run from the repository root with ../shared beside it; rerunning resumes unfinished cells.
set -e
export OMP_WAIT_POLICY=PASSIVE
common=(--data ../shared/data/beauty
        --embeddings ../shared/data/beauty/item_emb_all-MiniLM-L6-v2.f16.npy
        --seeds 0 --max-epochs 6 --out runs/beauty_compare)
ace-bench "${common[@]}" --backbones sasrec \
  --methods id,pca,whiten,whitenplus,alpharec,llmemb,alphafuse,recpca,ace
ace-bench "${common[@]}" --backbones sasrec,gru4rec,bert4rec --methods id,pca,alphafuse,ace

"""SASRec on Amazon Beauty: ID-only against an ACE-initialised item table.

Paper settings (hidden 128, 2 layers, 2 heads, max length 50, batch 256, patience 10 on
validation NDCG@10). Checkpoints go to ``--out``, so an interrupted run resumes.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/beauty_sasrec.py --method ace --lr 5e-4
    OMP_WAIT_POLICY=PASSIVE python benchmarks/beauty_sasrec.py --method id --lr 1e-3
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from ace_transform import ACETransformer  # noqa: E402
from recmodels import SASRec, TrainableTable, Trainer, build_sequences, load_folder  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "beauty"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--method", choices=["id", "ace"], required=True)
    parser.add_argument("--lr", type=float, required=True)
    parser.add_argument("--lam", type=float, default=50.0)
    parser.add_argument("--gamma", type=float, default=0.1)
    parser.add_argument("--max-epochs", type=int, default=400)
    parser.add_argument("--patience", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", type=Path, default=Path("runs/beauty_sasrec"))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    interactions, items = load_folder(args.data)
    data = build_sequences(interactions, catalogue=items["item_id"])
    print(data.report, flush=True)
    init = None
    if args.method == "ace":
        embeddings = np.load(args.data / "item_emb_all-MiniLM-L6-v2.f16.npy").astype(np.float32)
        init = ACETransformer(n_components=128, lam=args.lam, gamma=args.gamma).fit_transform(
            data.align(embeddings))
    torch.manual_seed(args.seed)
    model = SASRec(TrainableTable(data.n_items, 128, init=init))
    tag = f"{args.method}_lr{args.lr:g}_seed{args.seed}"
    started = time.time()
    result = Trainer(model, data, lr=args.lr, max_epochs=args.max_epochs,
                     patience=args.patience, seed=args.seed,
                     checkpoint_path=args.out / f"{tag}.pt").fit()
    summary = {"method": args.method, "lr": args.lr, "seed": args.seed,
               "best_epoch": result.best_epoch, "epochs_run": result.epochs_run,
               "train_seconds": result.seconds, "wall_seconds": time.time() - started,
               "valid": result.best_valid, "test": result.test,
               "threads": torch.get_num_threads()}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{tag}.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps({k: summary[k] for k in ("method", "best_epoch", "epochs_run")}))
    print("test " + "  ".join(f"{k} {result.test[k]:.4f}"
                              for k in ("recall@10", "ndcg@10", "recall@20", "ndcg@20")))


if __name__ == "__main__":
    main()

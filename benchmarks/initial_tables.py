"""How each method's initial item table looks on Beauty, before any training.

    python benchmarks/initial_tables.py [--results benchmarks/results/beauty_baselines]

Prints, per method, the standard deviation of the initial item weights (the tied output
layer of SASRec), the spread of the initial logits ``h @ W.T`` for unit-scale user states
(``std(W) * sqrt(hidden)``), and, given an ``ace-bench`` output folder, each trained cell's
loss after epoch 1 and its best epoch (was it still improving at the cap?).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from recmodels import build_sequences, load_folder
from recmodels.comparison import METHODS, build_table


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/beauty"))
    parser.add_argument("--results", type=Path, default=None)
    parser.add_argument("--hidden-size", type=int, default=128)
    args = parser.parse_args(argv)
    interactions, items = load_folder(args.data)
    data = build_sequences(interactions, catalogue=items["item_id"])
    E = data.align(np.load(args.data / "item_emb_all-MiniLM-L6-v2.f16.npy").astype(np.float32))
    trained = {}
    if args.results is not None:
        results = pd.read_csv(args.results / "results.csv", dtype={"fingerprint": str})
        for _, row in results[results["split"] == "valid"].iterrows():
            history = json.loads((args.results / "runs" / f"{row['fingerprint']}.json")
                                 .read_text())["history"]
            trained.setdefault(row["method"], []).append(
                f"lr {row['lr']:g}: diverged in epoch {row['epochs']}" if row["best_epoch"] == 0
                else f"lr {row['lr']:g}: loss {history[0]['loss']:.2f} after epoch 1, best "
                     f"epoch {row['best_epoch']} of {row['epochs']}")
    print("| method | std of initial item weights | initial logit spread | trained cells |")
    print("|---|---|---|---|")
    for method in METHODS:
        torch.manual_seed(0)
        weights = build_table(method, E, data, args.hidden_size)().detach()[1:]
        std = float(weights.std())
        print(f"| {method} | {std:.2e} | {std * math.sqrt(args.hidden_size):.2e} | "
              f"{'; '.join(trained.get(method, [])) or '-'} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""What a larger training-window stride costs: SASRec on the built-in MovieLens data.

The exact prefix protocol (``--window-stride 1``) gives every training target past position
``max_len`` its own ``max_len``-item window; stride ``s`` trains ``s`` targets per window with
at least ``max_len - s + 1`` items of context, ``s`` times less encoder work. This runs
``ace-bench`` (ID-only SASRec, the paper's settings, early stopping with patience 10, one
learning rate for every stride) once per stride into ``OUT/stride_<s>`` (each resumes), then
prints one row per stride: windows and real tokens per epoch, median seconds per training
epoch and minutes of training in all, epochs to early stopping, validation and test
NDCG@10 / Recall@10, test NDCG@20, and the paired two-sided t-test of each stride's
per-user test NDCG@20 against the smallest finished stride's (the most exact run).

    OMP_WAIT_POLICY=PASSIVE python benchmarks/stride_table.py --out benchmarks/results/stride

The converged runs are made at different times, so their seconds per epoch come from
different days (and code). ``--time-epochs N`` also trains every stride for N epochs in this
process, one after the other (the same cell's settings and seed), and prints their median
seconds per epoch side by side: the figures to compare strides' cost by.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from scipy.stats import ttest_rel  # noqa: E402

from recmodels import SASRec, Trainer, TrainableTable, build_sequences, load_folder  # noqa: E402
from recmodels.comparison import build_table  # noqa: E402
from recmodels.comparison.report import per_user_test_metrics  # noqa: E402
from recmodels.datasets import example_folder  # noqa: E402


def window_counts(data, stride: int, max_len: int) -> tuple[int, int]:
    """Training windows and real tokens per epoch of ``data`` at ``stride``."""
    windows = SASRec(TrainableTable(data.n_items, 8), max_len=max_len).training_windows(
        data, stride=stride)
    return windows.shape[0], int((windows[:, 0] > 0).sum())


def timed_epochs(data, stride: int, epochs: int, lr: float, max_len: int) -> float:
    """Median seconds of ``epochs`` training epochs of the stride's ID-only SASRec cell."""
    table = build_table("id", np.empty((data.n_items, 0), np.float32), data, 128,
                        backbone="sasrec")
    trainer = Trainer(SASRec(table, max_len=max_len), data, lr=lr, max_epochs=epochs,
                      patience=epochs + 1, window_stride=stride, seed=0, verbose=False)
    history = trainer.fit(evaluate_test=False).history
    return statistics.median(epoch["train_seconds"] for epoch in history)


def summarise(folder: Path) -> dict:
    """Epoch time, epochs and validation / test figures of the one cell in ``folder``."""
    results = pd.read_csv(folder / "results.csv")
    row = {split: results[results.split == split].iloc[-1] for split in ("valid", "test")}
    history = json.loads((folder / "runs" / f"{row['test'].fingerprint}.json").read_text())
    epoch_seconds = [epoch["train_seconds"] for epoch in history["history"]]
    test = results[(results.split == "test") & results.selected.astype(bool)]
    per_user = per_user_test_metrics(test, folder)
    return {"s/epoch": statistics.median(epoch_seconds), "epochs": int(row["test"].epochs),
            "minutes": sum(epoch_seconds) / 60,
            "per-user N@20": None if per_user is None else per_user["ndcg@20"],
            "best": int(row["test"].best_epoch),
            "valid N@10": row["valid"]["ndcg@10"], "test N@10": row["test"]["ndcg@10"],
            "test R@10": row["test"]["recall@10"], "test N@20": row["test"]["ndcg@20"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strides", default="1,5,10,25,50")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--lr", default="1e-3")
    parser.add_argument("--max-len", type=int, default=50)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/stride"))
    parser.add_argument("--report-only", action="store_true",
                        help="print the table from finished runs without training")
    parser.add_argument("--time-epochs", type=int, default=0,
                        help="also time this many epochs of every stride in this run")
    args = parser.parse_args()
    strides = [int(s) for s in args.strides.split(",")]
    if not args.report_only:
        for stride in strides:
            subprocess.run([sys.executable, "-m", "recmodels.comparison", "--methods", "id",
                            "--backbones", "sasrec", "--seeds", args.seeds, "--lr", args.lr,
                            "--max-len", str(args.max_len), "--window-stride", str(stride),
                            "--out", str(args.out / f"stride_{stride}")], check=True)
    print(f"SASRec, ID-only, built-in MovieLens, lr {args.lr}, seeds {args.seeds}, "
          "early stopping (patience 10)")
    interactions, items = load_folder(example_folder())
    data = build_sequences(interactions, catalogue=items["item_id"])
    finished = {stride: summarise(args.out / f"stride_{stride}") for stride in sorted(strides)
                if (args.out / f"stride_{stride}" / "results.csv").exists()}
    # Every stride's test NDCG@20 against the most exact (smallest) finished stride's, over
    # the same test users: a paired two-sided t-test.
    exact = next(iter(finished), None)
    print(f"{'stride':>6s} {'windows':>8s} {'tokens':>9s} {'s/epoch':>8s} {'train min':>9s} "
          f"{'epochs':>6s} "
          f"{'best':>5s} {'valid N@10':>10s} {'test N@10':>9s} {'test R@10':>9s} "
          f"{'test N@20':>9s} {f'p vs {exact}' if exact else 'p':>9s}")
    for stride in strides:
        if stride not in finished:
            print(f"{stride:6d}  (not run yet)")
            continue
        windows, tokens = window_counts(data, stride, args.max_len)
        r = finished[stride]
        ours, theirs = r["per-user N@20"], finished[exact]["per-user N@20"]
        p = ("" if stride == exact or ours is None or theirs is None
             else "identical" if np.array_equal(ours, theirs)
             else f"{ttest_rel(ours, theirs).pvalue:.3g}")
        print(f"{stride:6d} {windows:8d} {tokens:9d} {r['s/epoch']:8.1f} {r['minutes']:9.1f} "
              f"{r['epochs']:6d} "
              f"{r['best']:5d} {r['valid N@10']:10.4f} {r['test N@10']:9.4f} "
              f"{r['test R@10']:9.4f} {r['test N@20']:9.4f} {p:>9s}".rstrip())
    if args.time_epochs:
        print(f"\nSeconds per training epoch, median of {args.time_epochs}, every stride in "
              f"this run ({torch.get_num_threads()} threads):")
        seconds = {stride: timed_epochs(data, stride, args.time_epochs, float(args.lr),
                                        args.max_len) for stride in strides}
        widest = max(strides)
        for stride in strides:
            ratio = seconds[stride] / seconds[widest]
            print(f"{stride:6d} {seconds[stride]:8.1f} s  {ratio:5.2f}x stride {widest}'s")


if __name__ == "__main__":
    main()

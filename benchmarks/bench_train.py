"""SASRec training speed: RecBole 1.2.1 against recmodels, same split, same settings.

Each framework runs in its own subprocess (RecBole from its own virtual environment, never
a dependency of ours) so that peak memory is measured separately. Prints, side by side,
seconds per training epoch, full-sort validation time, peak RSS and validation NDCG@10
after the same number of epochs. Ours is scored here with the items a user has already seen
removed from the ranking (``mask_seen=True``), on the mistaken belief that RecBole does so.
It does not: RecBole 1.2.1's full-sort loader builds the user history only for
non-sequential models, and its trainer masks only the padding column, so its SASRec is
ranked against all items, unmasked, as in the seed paper's protocol that the comparison
command follows. The NDCG@10 columns are therefore not like for like (ours masked, RecBole's
unmasked); the timings are unaffected. Re-measuring with both unmasked belongs to the
training-speed issue.

    python -m venv .recbole-venv && .recbole-venv/bin/pip install torch==2.13.0 recbole==1.2.1
    OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_train.py --epochs 3
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "beauty"
SETTINGS = dict(hidden=128, layers=2, heads=2, inner=256, hidden_dropout=0.5,
                attn_dropout=0.3, max_len=50, batch=256, lr=1e-3, seed=0)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_atomic_inter(data_dir: Path, folder: Path) -> None:
    """Beauty as a RecBole atomic file; the position orders each user's sequence."""
    import pandas as pd

    frame = pd.read_csv(data_dir / "interactions.csv.gz", dtype={"user_id": str, "item_id": str})
    frame = frame.rename(columns={"user_id": "user_id:token", "item_id": "item_id:token",
                                  "position": "timestamp:float"})
    (folder / "beauty").mkdir(parents=True, exist_ok=True)
    frame.to_csv(folder / "beauty" / "beauty.inter", sep="\t", index=False)


def run_recbole(args) -> dict:
    import numpy as np

    # RecBole 1.2.1 still uses aliases that NumPy 2 removed.
    np.float_, np.complex_, np.unicode_ = np.float64, np.complex128, np.str_
    import torch
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import get_model, get_trainer, init_seed

    torch.set_num_threads(args.threads)
    folder = Path(tempfile.mkdtemp())
    write_atomic_inter(args.data, folder)
    s = SETTINGS
    config = Config(model="SASRec", dataset="beauty", config_dict={
        "data_path": str(folder), "checkpoint_dir": str(folder / "saved"),
        "USER_ID_FIELD": "user_id", "ITEM_ID_FIELD": "item_id", "TIME_FIELD": "timestamp",
        "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
        "user_inter_num_interval": "[5,inf)", "item_inter_num_interval": "[5,inf)",
        "MAX_ITEM_LIST_LENGTH": s["max_len"], "hidden_size": s["hidden"],
        "n_layers": s["layers"], "n_heads": s["heads"], "inner_size": s["inner"],
        "hidden_dropout_prob": s["hidden_dropout"], "attn_dropout_prob": s["attn_dropout"],
        "hidden_act": "gelu", "layer_norm_eps": 1e-12, "initializer_range": 0.02,
        "loss_type": "CE", "train_neg_sample_args": None, "train_batch_size": s["batch"],
        "eval_batch_size": 1024, "learning_rate": s["lr"], "epochs": args.epochs,
        "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "mode": "full",
                      "group_by": "user"},
        "metrics": ["Recall", "NDCG"], "topk": [10, 20], "valid_metric": "NDCG@10",
        "device": "cpu", "use_gpu": False, "seed": s["seed"], "reproducibility": True,
        "show_progress": False, "log_wandb": False,
    })
    init_seed(config["seed"], config["reproducibility"])
    dataset = create_dataset(config)
    train_data, valid_data, _ = data_preparation(config, dataset)
    model = get_model(config["model"])(config, train_data.dataset).to(config["device"])
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    epochs, evals, scores = [], [], []
    for epoch in range(args.epochs):
        start = time.perf_counter()
        trainer._train_epoch(train_data, epoch, show_progress=False)
        epochs.append(time.perf_counter() - start)
        start = time.perf_counter()
        score, result = trainer._valid_epoch(valid_data, show_progress=False)
        evals.append(time.perf_counter() - start)
        scores.append(float(result["ndcg@10"]))
    return {"framework": "RecBole 1.2.1", "epoch_s": epochs, "eval_s": evals,
            "valid_ndcg@10": scores, "peak_rss_mib": peak_rss_mib(),
            "users": int(dataset.user_num - 1), "items": int(dataset.item_num - 1)}


def run_ours(args) -> dict:
    import torch

    from recmodels import SASRec, TrainableTable, Trainer, build_sequences, load_folder

    torch.set_num_threads(args.threads)
    s = SETTINGS
    interactions, items = load_folder(args.data)
    data = build_sequences(interactions, catalogue=items["item_id"])
    torch.manual_seed(s["seed"])
    model = SASRec(TrainableTable(data.n_items, s["hidden"]), max_len=s["max_len"],
                   n_layers=s["layers"], n_heads=s["heads"], inner_size=s["inner"],
                   hidden_dropout=s["hidden_dropout"], attn_dropout=s["attn_dropout"])
    trainer = Trainer(model, data, lr=s["lr"], batch_size=s["batch"], max_epochs=args.epochs,
                      patience=args.epochs + 1, seed=s["seed"], device="cpu", verbose=False,
                      mask_seen=True)
    history = trainer.fit().history
    return {"framework": "recmodels", "epoch_s": [h["train_seconds"] for h in history],
            "eval_s": [h["seconds"] - h["train_seconds"] for h in history],
            "valid_ndcg@10": [h["ndcg@10"] for h in history],
            "peak_rss_mib": peak_rss_mib(), "users": data.n_users, "items": data.n_items}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--recbole-python", type=Path, default=ROOT / ".recbole-venv/bin/python")
    parser.add_argument("--worker", choices=["recbole", "ours"])
    args = parser.parse_args()
    if args.worker:
        runner = run_recbole if args.worker == "recbole" else run_ours
        print("RESULT " + json.dumps(runner(args)), flush=True)
        return

    rows = []
    for worker, python in (("ours", sys.executable), ("recbole", str(args.recbole_python))):
        command = [python, __file__, "--worker", worker, "--epochs", str(args.epochs),
                   "--threads", str(args.threads), "--data", str(args.data)]
        env = dict(os.environ, PYTHONPATH=str(ROOT) if worker == "ours" else "")
        done = subprocess.run(command, capture_output=True, text=True, env=env)
        line = next((l for l in done.stdout.splitlines() if l.startswith("RESULT ")), None)
        if line is None:
            sys.exit(f"{worker} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        rows.append(json.loads(line[7:]))

    print(f"SASRec on Beauty, {args.epochs} epochs, {args.threads} threads, "
          f"batch {SETTINGS['batch']}, lr {SETTINGS['lr']}")
    print(f"{'framework':15s} {'users':>6s} {'items':>6s} {'s/epoch (median)':>17s} "
          f"{'eval s':>7s} {'peak RSS MiB':>13s}  valid NDCG@10 per epoch "
          "(ours masked, RecBole unmasked: not like for like)")
    for r in rows:
        print(f"{r['framework']:15s} {r['users']:6d} {r['items']:6d} "
              f"{statistics.median(r['epoch_s']):17.1f} {statistics.median(r['eval_s']):7.2f} "
              f"{r['peak_rss_mib']:13.0f}  " + ", ".join(f"{v:.4f}" for v in r["valid_ndcg@10"]))
    ours, theirs = rows
    print(f"epoch speed-up: {statistics.median(theirs['epoch_s']) / statistics.median(ours['epoch_s']):.1f}x "
          f"(target >= 10); evaluation speed-up: "
          f"{statistics.median(theirs['eval_s']) / statistics.median(ours['eval_s']):.1f}x")


if __name__ == "__main__":
    main()

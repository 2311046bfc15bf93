"""Why RecBole's SASRec and GRU4Rec lead ours after the same number of epochs.

``bench_train.py`` found RecBole 1.2.1 ahead of us on validation NDCG@10 after epochs 1
and 2 (SASRec .0197/.0347 against .0176/.0320) at the same settings and the same number of
optimiser steps per epoch. The arithmetic of an epoch is the same on both sides (every
next-item target once, full softmax); what differs is which targets share a step. RecBole
draws 256 prefixes at random, so a step holds up to 256 users. Ours takes every position
of a window at once (one encoder pass per window), so a 256-target step holds about 40
users' windows, and windows are sorted by length inside chunks of
``recmodels.trainer.SORTISH_BATCHES`` batches to trim padding, so those users have
similar history lengths.

This script trains our backbone (ID table, the paper's settings, ``mask_seen=False`` as in
bench_train) under variants of the step composition, same seed, and prints validation
NDCG@10 after each epoch next to RecBole's from ``benchmarks/results/bench_train.json``:

- ``targets``: the default, about 256 targets per step, windows sorted in chunks;
- ``unsorted``: the same step size, windows in a uniformly random order (no length
  sorting), so only the all-positions-per-window grouping remains;
- ``windows``: 256 windows (users) per step, every position of each: RecBole's user
  diversity per step, at about 7x fewer steps per epoch on Beauty;
- ``prefixes``: RecBole's rows, one per target, shuffled (``sequences="prefixes"``): 256
  targets of up to 256 users per step, each with its own dropout masks, at several times
  the encoder work and with the padding of unsorted rows;
- ``prefixes-sorted``: the same rows grouped by length as windows are, so that a step's
  targets all sit at one position.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/batch_composition.py --backbone sasrec --epochs 2
    python benchmarks/batch_composition.py --variants targets,unsorted --seeds 1,2  # seed spread
    python benchmarks/batch_composition.py --backbone gru4rec --variants prefixes --seeds 0,1
    python benchmarks/batch_composition.py --users 300 --epochs 1 --threads 1      # smoke check
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

from beauty_setup import DATA, SETTINGS, id_table, k_core, read_interactions  # noqa: E402
from recmodels import Trainer, build_sequences  # noqa: E402
from recmodels import trainer as trainer_module  # noqa: E402
from recmodels.models import BACKBONES  # noqa: E402

VARIANTS = ("targets", "unsorted", "windows", "prefixes", "prefixes-sorted")
RESULTS = Path(__file__).resolve().parent / "results" / "bench_train.json"


def train(variant: str, backbone: str, data, epochs: int, seed: int) -> tuple[list[dict], int]:
    """Validation history and steps per epoch of one variant, built as bench_train builds
    its models."""
    s = SETTINGS
    torch.manual_seed(seed)
    model = BACKBONES[backbone](id_table(data, backbone), max_len=s["max_len"],
                                **({"sequences": "prefixes"}
                                   if variant.startswith("prefixes") else {}))
    if variant == "prefixes-sorted":
        model.sort_by_length = True
    if variant == "windows":
        model.window_weights = lambda windows: torch.ones(windows.shape[0], dtype=torch.long)
    # One chunk per window: the length sort then never groups windows across a batch.
    trainer_module.SORTISH_BATCHES = 0 if variant == "unsorted" else 32
    trainer = Trainer(model, data, lr=s["lr"], batch_size=s["batch"], max_epochs=epochs,
                      patience=epochs + 1, seed=seed, device="cpu", verbose=False,
                      mask_seen=False)
    history = trainer.fit(evaluate_test=False).history
    steps = len(trainer._epoch_batches(model.training_windows(data), torch.Generator()))
    return history, steps


def recbole_history(backbone: str) -> list[float] | None:
    if not RESULTS.exists():
        return None
    rows = json.loads(RESULTS.read_text())["rows"]
    return next((r["valid_ndcg@10"] for r in rows
                 if r["backbone"] == backbone and r["framework"].startswith("RecBole")), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", choices=("sasrec", "gru4rec"), default="sasrec")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seeds", default="0", help="comma-separated; RecBole's row is seed 0")
    parser.add_argument("--users", type=int, default=None,
                        help="the first N users only, without the 5-core filter (smoke check)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = build_sequences(read_interactions(DATA, args.users), k_core=k_core(args))
    print(f"{args.backbone}, Beauty ({data.n_users} users, {data.n_items} items), "
          f"{args.epochs} epochs, lr {SETTINGS['lr']}, batch {SETTINGS['batch']}, "
          f"{args.threads} thread(s)", flush=True)
    print("| variant | seed | steps/epoch | valid NDCG@10 per epoch | train s/epoch |")
    print("|---|---|---|---|---|")
    theirs = recbole_history(args.backbone)
    if theirs is not None and args.users is None:
        print(f"| RecBole 1.2.1 (bench_train.json) | 0 | | "
              f"{', '.join(f'{v:.4f}' for v in theirs)} | |", flush=True)
    for variant, seed in itertools.product(args.variants.split(","),
                                           [int(x) for x in args.seeds.split(",")]):
        history, steps = train(variant, args.backbone, data, args.epochs, seed)
        scores = ", ".join(f"{h['ndcg@10']:.4f}" for h in history)
        seconds = sum(h["train_seconds"] for h in history) / len(history)
        print(f"| {variant} | {seed} | {steps} | {scores} | {seconds:.1f} |", flush=True)

if __name__ == "__main__":
    main()

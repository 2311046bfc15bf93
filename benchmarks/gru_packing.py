"""What a GRU4Rec training step costs under each row layout, padded and grouped by length.

RecBole trains GRU4Rec on one shuffled row per target (``sequences="prefixes"``), which
``batch_composition.py`` found to learn faster per epoch than our windows. Shuffled rows
cannot be sorted by length across batches, so a padded batch runs the GRU over its longest
row for every row. ``GRU4Rec.encode_at`` groups a batch's rows by the length they need (up
to their last target) and runs each group trimmed to its longest row. This script times
the same training steps (forward, backward, Adam) on Beauty, interleaved in rounds so that
load on the machine hits every variant alike:

- ``windows``: the default rows (every target of a window in one pass, batches sorted by
  length), one pass over the padded batch (windows are never grouped);
- ``prefixes-padded``: one shuffled row per target, one pass over the padded batch (how
  they ran before grouping);
- ``prefixes-grouped``: the same rows and batches, grouped (how they run now).

It prints the median step, steps per epoch, the projected epoch (mean timed step x steps;
the batch order is random, so the timed steps are a sample of the epoch's), the GRU steps
(row x time) one epoch runs, counted over every batch, next to its real tokens, and the
GRU steps the model actually ran per timed step (a forward hook).

    OMP_WAIT_POLICY=PASSIVE python benchmarks/gru_packing.py            # about 5 minutes
    python benchmarks/gru_packing.py --users 300 --steps 4 --rounds 1   # smoke check
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

from beauty_setup import DATA, SETTINGS, id_table, k_core, read_interactions  # noqa: E402
from recmodels import GRU4Rec, SequentialRecommender, Trainer, build_sequences  # noqa: E402
from recmodels.models.gru4rec import length_groups  # noqa: E402

VARIANTS = ("windows", "prefixes-padded", "prefixes-grouped")


def _setup(variant: str, data):
    s = SETTINGS
    torch.manual_seed(s["seed"])
    model = GRU4Rec(id_table(data, "gru4rec"), max_len=s["max_len"],
                    gru_hidden_size=s["gru_hidden"], dropout=s["gru_dropout"],
                    sequences=variant.split("-")[0])
    if variant.endswith("-padded"):
        model.encode_at = lambda items, weights, rows, positions: (
            SequentialRecommender.encode_at(model, items, weights, rows, positions))
    trainer = Trainer(model, data, lr=s["lr"], batch_size=s["batch"], device="cpu",
                      verbose=False, mask_seen=False)
    windows = model.training_windows(data)
    batches = trainer._epoch_batches(windows, torch.Generator().manual_seed(0))
    optimizer = torch.optim.Adam(model.parameters(), lr=s["lr"])
    return model, windows, batches, optimizer


def _steps_run(variant: str, windows: torch.Tensor, batches) -> tuple[int, int]:
    """GRU steps (row x time) one epoch runs under ``variant``, and its real tokens."""
    run = 0
    for rows in batches:
        needed = (windows[rows, 0] > 0).sum(dim=1).clamp(min=1)
        groups = None if variant != "prefixes-grouped" else length_groups(needed)
        run += (len(rows) * int(needed.max()) if groups is None
                else int((groups[1] * groups[2]).sum()))
    return run, int((windows[:, 0] > 0).sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10, help="steps per variant per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--users", type=int, default=None,
                        help="the first N users only, without the 5-core filter (smoke check)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = build_sequences(read_interactions(DATA, args.users), k_core=k_core(args))
    setups = {v: _setup(v, data) for v in VARIANTS}
    times = {v: [] for v in VARIANTS}
    measured = {v: 0 for v in VARIANTS}  # GRU steps the timed steps ran, from a hook
    for variant, (model, *_) in setups.items():
        model.gru.register_forward_hook(
            lambda module, inputs, output, v=variant: measured.__setitem__(
                v, measured[v] + inputs[0].shape[0] * inputs[0].shape[1]))
    for round_ in range(args.rounds):
        for variant, (model, windows, batches, optimizer) in setups.items():
            model.train()
            for rows in batches[round_ * args.steps:(round_ + 1) * args.steps]:
                items, targets = model.training_batch(windows[rows], None)
                start = time.perf_counter()
                loss = model.loss(items, targets)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                times[variant].append(time.perf_counter() - start)
    print(f"GRU4Rec, Beauty ({data.n_users} users, {data.n_items} items), batch "
          f"{SETTINGS['batch']} targets, {args.threads} thread(s), "
          f"{args.rounds} x {args.steps} steps per variant")
    print("| rows | median step (ms) | steps/epoch | projected epoch (s) "
          "| GRU steps run/epoch | real tokens/epoch | GRU steps per timed step |")
    print("|---|---|---|---|---|---|---|")
    for variant, (_, windows, batches, _) in setups.items():
        # The batch order is random, so the timed steps are a random sample of the epoch's.
        projected = statistics.mean(times[variant]) * len(batches)
        run, real = _steps_run(variant, windows, batches)
        print(f"| {variant} | {statistics.median(times[variant]) * 1e3:.1f} | {len(batches)} "
              f"| {projected:.1f} | {run:,} | {real:,} "
              f"| {measured[variant] / len(times[variant]):,.0f} |")


if __name__ == "__main__":
    main()

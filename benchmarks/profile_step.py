"""Where a training step's time goes: torch.profiler over real batches of one backbone.

Builds the backbone with an ID table on a data folder (Beauty by default), draws one
epoch's batches as the trainer does, trains a few warm-up steps, then profiles ``--steps``
more and prints the operators by self CPU time, the median step time, and the share of
the step spent in matrix products (``mm``, ``addmm``, ``bmm`` and attention).

    OMP_WAIT_POLICY=PASSIVE python benchmarks/profile_step.py --backbone sasrec
    OMP_WAIT_POLICY=PASSIVE python benchmarks/profile_step.py --backbone sasrec \\
        --data recmodels/datasets/ml-latest-small --window-stride 50
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
from torch.profiler import profile  # noqa: E402

from recmodels import TrainableTable, Trainer, build_sequences, load_folder  # noqa: E402
from recmodels.models import BACKBONES  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "beauty"
MATMULS = ("aten::mm", "aten::addmm", "aten::bmm", "aten::_scaled_dot_product_flash_attention_for_cpu")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--backbone", choices=sorted(BACKBONES), default="sasrec")
    parser.add_argument("--hidden-size", type=int, default=128)
    parser.add_argument("--window-stride", type=int, default=1)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    interactions, items = load_folder(args.data)
    data = build_sequences(interactions, catalogue=items["item_id"])
    torch.manual_seed(0)
    model = BACKBONES[args.backbone](TrainableTable(data.n_items, args.hidden_size))
    trainer = Trainer(model, data, max_epochs=1, seed=0, window_stride=args.window_stride,
                      verbose=False)
    windows = model.training_windows(data, args.window_stride)
    generator = torch.Generator().manual_seed(0)
    batches = trainer._epoch_batches(windows, generator)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    model.train()

    def step(rows) -> float:
        start = time.perf_counter()
        items, targets = model.training_batch(windows[rows], generator)
        loss = model.loss(items, targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return time.perf_counter() - start

    cycle = [batches[i % len(batches)] for i in range(5 + args.steps)]  # small data: reuse
    warm, timed = cycle[:5], cycle[5:]
    for rows in warm:
        step(rows)
    with profile() as profiler:
        seconds = [step(rows) for rows in timed]
    events = profiler.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    matmul = sum(e.self_cpu_time_total for e in events if e.key in MATMULS)
    print(events.table(sort_by="self_cpu_time_total", row_limit=15))
    print(f"{args.backbone} on {args.data.name}: {len(batches)} steps per epoch, median step "
          f"{statistics.median(seconds) * 1e3:.0f} ms over {len(timed)} profiled steps "
          f"({args.threads} threads); matrix products {100 * matmul / total:.0f} % of self CPU "
          "time")


if __name__ == "__main__":
    main()

"""Where a training step's time goes: torch.profiler over real batches of one backbone.

Builds the backbone with an ID table on a data folder (Beauty by default), draws one
epoch's batches as the trainer does, trains a few warm-up steps, then profiles ``--steps``
more and prints the operators by self CPU time, the median step time, and the share of
the step spent in matrix products (``mm``, ``addmm``, ``bmm`` and attention), and in the
item-logit products among them (those with a side as long as the catalogue).

    OMP_WAIT_POLICY=PASSIVE python benchmarks/profile_step.py --backbone sasrec
    OMP_WAIT_POLICY=PASSIVE python benchmarks/profile_step.py --backbone sasrec \\
        --data recmodels/datasets/ml-latest-small --window-stride 50

``--device cuda`` profiles the step as the trainer runs it there (bfloat16 autocast, the
batch moved to the GPU) and also prints, per step, the GPU's busy time (the sum of its
kernels' times), the number of kernels launched and the number of times the host waited
for the GPU (``cudaStreamSynchronize``: ``int()``, ``nonzero``, boolean indexing): a step whose wall time is far
above its busy time is bound by the host's launches and waits, not by the GPU.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402

from recmodels import TrainableTable, Trainer, build_sequences, load_folder  # noqa: E402
from recmodels.models import BACKBONES  # noqa: E402
from recmodels.models._threads import training_step_threads  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "beauty"
# The host's waits for the GPU inside a step: `int()`, `.item()`, `nonzero` and boolean
# indexing each end in one (the step's closing cudaDeviceSynchronize is not counted).
HOST_WAIT = "cudaStreamSynchronize"
MATMULS = ("aten::mm", "aten::addmm", "aten::bmm",
           "aten::_scaled_dot_product_flash_attention_for_cpu")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--backbone", choices=sorted(BACKBONES), default="sasrec")
    parser.add_argument("--hidden-size", type=int, default=128)
    parser.add_argument("--window-stride", type=int, default=1)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    interactions, items = load_folder(args.data)
    data = build_sequences(interactions, catalogue=items["item_id"])
    torch.manual_seed(0)
    model = BACKBONES[args.backbone](TrainableTable(data.n_items, args.hidden_size))
    trainer = Trainer(model, data, max_epochs=1, seed=0, window_stride=args.window_stride,
                      verbose=False, device=args.device)
    model.to(args.device)
    windows = model.training_windows(data, args.window_stride)
    generator = torch.Generator().manual_seed(0)
    batches = trainer._epoch_batches(windows, generator)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    model.train()
    gpu = args.device == "cuda"

    def step(rows) -> float:
        start = time.perf_counter()
        items, targets = model.training_batch(windows[rows].to(args.device), generator)
        # threads as the Trainer's step sets them
        with training_step_threads(args.device, items.numel() * model.hidden_size):
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=gpu):
                loss = model.loss(items, targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        if gpu:
            torch.cuda.synchronize()
        return time.perf_counter() - start

    cycle = [batches[i % len(batches)] for i in range(5 + args.steps)]  # small data: reuse
    warm, timed = cycle[:5], cycle[5:]
    for rows in warm:
        step(rows)
    if gpu:  # the first pass meets each batch shape for the first time, the second again
        first = [step(rows) for rows in timed]
        again = [step(rows) for rows in timed]
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if gpu else [])
    with profile(activities=activities, record_shapes=True) as profiler:
        seconds = [step(rows) for rows in timed]
    events = profiler.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    matmul = sum(e.self_cpu_time_total for e in events if e.key in MATMULS)
    # The item-logit products (forward and both backward ones) have the catalogue as a side.
    logits = sum(e.self_cpu_time_total for e in profiler.key_averages(group_by_input_shape=True)
                 if e.key in MATMULS and any(data.n_items + 1 in shape
                                             for shape in e.input_shapes if shape))
    print(events.table(sort_by="self_cpu_time_total", row_limit=15))
    print(f"{args.backbone} on {args.data.name}: {len(batches)} steps per epoch, median step "
          f"{statistics.median(seconds) * 1e3:.0f} ms over {len(timed)} profiled steps "
          f"({args.threads} threads); matrix products {100 * matmul / total:.0f} % of self CPU "
          f"time, the item-logit products among them {100 * logits / total:.0f} %")
    if gpu:
        print(events.table(sort_by="self_device_time_total", row_limit=12))
        kernels = [e for e in profiler.events() if e.device_type.name == "CUDA"]
        busy = sum(e.device_time for e in kernels) / 1e3 / len(timed)
        waits = sum(e.count for e in events if e.key == HOST_WAIT) / len(timed)
        print(f"on the GPU, without the profiler: median step "
              f"{statistics.median(first) * 1e3:.2f} ms at batch shapes met for the first "
              f"time, {statistics.median(again) * 1e3:.2f} ms again; per step the GPU is busy "
              f"{busy:.2f} ms and runs {len(kernels) / len(timed):.0f} kernels; the host "
              f"waits for it {waits:.1f} times ({HOST_WAIT})")
        profile_evaluation(model, data)


def profile_evaluation(model, data) -> None:
    """Full-sort validation of every user on the GPU: the host's share and the total."""
    from recmodels.batching import eval_batch
    from recmodels.evaluation import rank_targets

    seconds, built = [], []
    for _ in range(3):
        start = time.perf_counter()
        eval_batch(data, "valid", model.context_len)
        built.append(time.perf_counter() - start)
        start = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            rank_targets(model, data, "valid")
        torch.cuda.synchronize()
        seconds.append(time.perf_counter() - start)
    print(f"full-sort validation of {data.n_users} users on the GPU: median "
          f"{statistics.median(seconds):.3f} s, of which building the padded inputs on the "
          f"host (eval_batch) {statistics.median(built):.3f} s")


if __name__ == "__main__":
    main()

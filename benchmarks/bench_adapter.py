"""Adapter item tables on Beauty: their fast paths against the plain per-view two layers.

WhitenRec+, whitening, AlphaRec and LLMEmb map frozen views of the item embeddings through
one trained MLP at every training step, forward and backward, over every item.
``AdapterTable`` runs a linear adapter (LLMEmb) as one map and an adapter with several
views (WhitenRec+) with its second layer once on the views' sum. This times a step's
table (forward, then backward of a fixed upstream gradient) both ways in one run, for each
adapter method built the way ``ace-bench`` builds it on Beauty with the MiniLM embeddings,
and prints the medians side by side with the largest difference of the outputs and
gradients (each array's largest difference over its largest magnitude).

    OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_adapter.py --threads 1
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from recmodels import build_sequences, load_folder  # noqa: E402
from recmodels.comparison import build_table  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "beauty"
METHODS = ("whitenplus", "whiten", "alpharec", "llmemb")


def plain(table) -> torch.Tensor:
    """Each view through both layers, the outputs summed: the reference code's pass."""
    out = table.mlp(table.views).sum(dim=0)
    return torch.cat([out.new_zeros(1, out.shape[1]), out])


def _step(forward, table, grad_out):
    table.zero_grad(set_to_none=True)
    out = forward()
    out.backward(grad_out)
    return [out.detach()] + [p.grad for p in table.parameters()]


def _median_seconds(forward, table, grad_out, repeats: int) -> float:
    times = []
    for _ in range(repeats + 1):  # the first is a warm-up
        start = time.perf_counter()
        _step(forward, table, grad_out)
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--embeddings", default="item_emb_all-MiniLM-L6-v2.f16.npy",
                        help="file in --data")
    parser.add_argument("--hidden-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--methods", default=",".join(METHODS),
                        help=f"comma-separated, of {', '.join(METHODS)}")
    args = parser.parse_args()
    methods = [name for name in args.methods.split(",") if name]
    unknown = sorted(set(methods) - set(METHODS))
    if unknown or not methods:
        parser.error(f"--methods {args.methods}: choose from {', '.join(METHODS)}")
    torch.set_num_threads(args.threads)
    interactions, items = load_folder(args.data)
    data = build_sequences(interactions, catalogue=items["item_id"])
    E = data.align(np.load(args.data / args.embeddings).astype(np.float32))
    print(f"adapter tables on {args.data.name} ({data.n_items} items, {args.embeddings}), "
          f"hidden {args.hidden_size}, {args.threads} thread(s); forward + backward of the "
          f"whole table, median of {args.repeats}")
    print(f"{'method':11s} {'views':>5s} {'MLP':>15s} {'plain ms':>9s} {'ours ms':>8s} "
          f"{'speed-up':>8s} {'max rel. diff':>13s}")
    for name in methods:
        torch.manual_seed(0)
        table = build_table(name, E, data, args.hidden_size)
        grad_out = torch.randn(data.n_items + 1, args.hidden_size)
        widths = [table.mlp[0].in_features, table.mlp[0].out_features, args.hidden_size]
        ours = _step(table.forward, table, grad_out)
        reference = _step(lambda: plain(table), table, grad_out)
        diff = max(float((a - b).abs().max() / b.abs().max()) for a, b in zip(ours, reference))
        slow = _median_seconds(lambda: plain(table), table, grad_out, args.repeats)
        fast = _median_seconds(table.forward, table, grad_out, args.repeats)
        print(f"{name:11s} {table.views.shape[0]:5d} {' -> '.join(map(str, widths)):>15s} "
              f"{slow * 1e3:9.1f} {fast * 1e3:8.1f} {slow / fast:7.2f}x {diff:13.1e}")


if __name__ == "__main__":
    main()

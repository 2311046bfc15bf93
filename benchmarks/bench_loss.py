"""The training loss against its matmul floor and the plain autograd computation.

One training step's item scoring on Beauty: ``states (256 x 128) @ weights.T (128 x 12,102)``
and the full-softmax cross-entropy, forward and backward. Prints, in one run, the median time
of the plain computation (logits, ``-inf`` padding column, ``F.cross_entropy``), of
:func:`recmodels.models._loss.linear_cross_entropy`, and of the three matmuls alone (the
floor: forward logits, the states' and the weights' gradients), each as a multiple of the
floor.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_loss.py --threads 2
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

from recmodels.models._loss import linear_cross_entropy, reference_linear_cross_entropy  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=256, help="targets per step")
    parser.add_argument("--items", type=int, default=12_102)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(0)
    n_classes = args.items + 1
    weights = (torch.randn(n_classes, args.hidden, generator=generator) * 0.02).requires_grad_()
    states = torch.randn(args.rows, args.hidden, generator=generator)
    targets = torch.randint(1, n_classes, (args.rows,), generator=generator)
    blocked = torch.tensor([0])

    def step(loss_fn):
        def run():
            leaf = states.clone().requires_grad_()
            weights.grad = None
            loss_fn(leaf, weights, targets, n_classes=n_classes, blocked=blocked).backward()
        return run

    def matmuls():
        frozen = weights.detach()
        logits = states @ frozen.T
        logits @ frozen  # the states' gradient
        logits.T @ states  # the weights' gradient

    candidates = {"plain autograd + F.cross_entropy": step(reference_linear_cross_entropy),
                  "fused linear_cross_entropy": step(linear_cross_entropy),
                  "floor: the three matmuls": matmuls}
    times = {name: [] for name in candidates}
    for _ in range(args.repeats):  # interleaved, so drifting load hits all alike
        for name, run in candidates.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    floor = statistics.median(times["floor: the three matmuls"])
    print(f"loss forward + backward, {args.rows} x {args.hidden} states, {n_classes} items, "
          f"{args.threads} threads, median of {args.repeats}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"  {name:34s} {median * 1e3:8.1f} ms  {median / floor:5.2f}x floor")


if __name__ == "__main__":
    main()

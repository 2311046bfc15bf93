"""The item-logit products through torch's BLAS and through recmodels' CPU path, side by side.

Every backbone's training loss and full-sort evaluation multiply ``states (n x hidden)`` by
the item table's transpose ``(hidden x 12,102)``, and the loss's backward multiplies the
logits' gradient by the table (the states' gradient) and its transpose by the states (the
table's gradient). Prints, in one run, the median GFLOP/s of each product through
``torch.mm`` and through :func:`recmodels.models._blas.mm` (NumPy's BLAS, row blocks in
torch's thread count), next to ``torch.mm``'s square 1024 rate, the floor's reference. The
last column says which one the loss and evaluation use on the CPU (unless
``RECMODELS_CPU_LOGITS=torch``): the forward logits go through ``mm``, the backward's
products stay with ``torch.mm``. The two paths are timed alternately, so drifting load
hits both alike.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_logits.py --threads 2
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

from recmodels.models._blas import cpu_backend, mm  # noqa: E402


def products(rows: int, items: int, hidden: int) -> dict[str, tuple]:
    """``name: (a, b, what recmodels uses)`` for the logit products and the square one."""
    generator = torch.Generator().manual_seed(0)
    table = torch.randn(items, hidden, generator=generator)
    states = torch.randn(rows, hidden, generator=generator)
    grad_logits = torch.randn(rows, items, generator=generator)
    square = torch.randn(1024, 1024, generator=generator)
    return {f"logits {rows}x{hidden} @ {hidden}x{items}": (states, table.T, "mm"),
            f"states' gradient {rows}x{items} @ {items}x{hidden}": (grad_logits, table,
                                                                    "torch.mm"),
            f"table's gradient {items}x{rows} @ {rows}x{hidden}": (grad_logits.T, states,
                                                                   "torch.mm"),
            "square 1024": (square, square, "")}


def rate(a: torch.Tensor, b: torch.Tensor, seconds: float) -> float:
    return 2 * a.shape[0] * a.shape[1] * b.shape[1] / seconds / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="256,1024",
                        help="comma-separated row counts (targets a step, users a batch)")
    parser.add_argument("--items", type=int, default=12_102)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(),
                        help="torch's threads, and so the number of row blocks (default: "
                             "torch's own default)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{args.threads} thread(s); recmodels' CPU logits backend: {cpu_backend()}; "
          f"median of {args.repeats}, GFLOP/s")
    print(f"{'product':48s} {'torch.mm':>9s} {'mm':>9s} {'ratio':>6s}  recmodels uses")
    seen = set()
    for rows in (int(r) for r in args.rows.split(",")):
        for name, (a, b, used) in products(rows, args.items, args.hidden).items():
            if name in seen:
                continue
            seen.add(name)
            out = torch.empty(a.shape[0], b.shape[1])
            times = {"torch": [], "recmodels": []}
            for _ in range(args.repeats + 1):
                for label, multiply in (("torch", torch.mm), ("recmodels", mm)):
                    start = time.perf_counter()
                    multiply(a, b, out=out)
                    times[label].append(time.perf_counter() - start)
            ours, theirs = (rate(a, b, statistics.median(times[k][1:]))
                            for k in ("recmodels", "torch"))
            print(f"{name:48s} {theirs:9.1f} {ours:9.1f} {ours / theirs:5.2f}x  {used}")


if __name__ == "__main__":
    main()

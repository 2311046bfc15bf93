"""GRU forward and backward on the CPU: recmodels' recurrence against torch's nn.GRU.

Times ``gru(x)`` plus its backward for batch shapes GRU4Rec meets in training (length-sorted
windows: many short rows or a few long ones, about 256 targets a step) and evaluation, both
ways in one run, and prints the medians side by side with the largest difference of the
outputs and gradients.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_gru.py
    OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_gru.py --threads 1
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

from recmodels.models._gru import GRU, ONE_THREAD_ELEMENTS  # noqa: E402

SHAPES = "3x4,64x5,20x15,5x50,128x2,256x10,1024x50"


def _run(gru: torch.nn.GRU, inputs: torch.Tensor) -> torch.Tensor:
    return gru(inputs)[0]


def _time(run, gru, inputs, grad_out, repeats: int) -> float:
    times = []
    for _ in range(repeats + 1):  # the first is a warm-up
        start = time.perf_counter()
        run(gru, inputs).backward(grad_out)
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def _results(run, gru, inputs, grad_out):
    gru.zero_grad()
    inputs.grad = None
    states = run(gru, inputs)
    states.backward(grad_out)
    return [states.detach(), inputs.grad.clone()] + [p.grad.clone() for p in gru.parameters()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default=SHAPES, help="rows x steps, comma-separated")
    parser.add_argument("--input-size", type=int, default=128)
    parser.add_argument("--hidden-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    reference = torch.nn.GRU(args.input_size, args.hidden_size, batch_first=True, bias=False)
    ours = GRU(args.input_size, args.hidden_size, batch_first=True, bias=False)
    ours.load_state_dict(reference.state_dict())
    print(f"GRU {args.input_size} -> {args.hidden_size}, no bias, forward + backward, "
          f"{args.threads} thread(s), OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}; "
          f"median of {args.repeats}, ms")
    print(f"{'rows x steps':>12}  {'step threads':>12}  {'nn.GRU':>8}  {'recmodels':>9}  "
          f"{'speed-up':>8}  {'max |diff|':>10}")
    for shape in args.shapes.split(","):
        rows, steps = (int(v) for v in shape.split("x"))
        inputs = torch.randn(rows, steps, args.input_size, requires_grad=True)
        grad_out = torch.randn(rows, steps, args.hidden_size)
        diff = max(float((a - b).abs().max()) for a, b in zip(
            _results(_run, ours, inputs, grad_out), _results(_run, reference, inputs, grad_out)))
        theirs = _time(_run, reference, inputs, grad_out, args.repeats)
        mine = _time(_run, ours, inputs, grad_out, args.repeats)
        one = rows * 3 * args.hidden_size <= ONE_THREAD_ELEMENTS
        step_threads = 1 if one else args.threads
        print(f"{shape:>12}  {step_threads:>12}  {theirs * 1e3:8.2f}  {mine * 1e3:9.2f}  "
              f"{theirs / mine:7.2f}x  {diff:10.1e}")


if __name__ == "__main__":
    main()

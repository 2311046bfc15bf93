"""Cells side by side: one process with every core's thread against one process per core.

A comparison trains many independent cells (methods x seeds x learning rates). On a small
CPU the question is how to spend its cores: one cell at a time with a BLAS thread per core,
or one cell per core with one thread each. This trains the ID-only cell of ``ace-bench``
(``bench_train.py``'s ``ours`` worker: the paper's settings, Beauty) for ``--epochs``
epochs three ways, in one run:

* one process alone with ``--cores`` threads;
* one process alone with one thread;
* ``--cores`` processes at once, one thread each;

and prints each way's median seconds per epoch and training epochs per hour over the whole
machine (processes x 3600 / seconds per epoch), with the last two ways' throughput as a
multiple of the first's.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_parallel_cells.py --epochs 1
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

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def start(threads: int, args) -> subprocess.Popen:
    """One ``bench_train.py`` worker training our ID-only cell, started, not awaited."""
    command = [sys.executable, str(HERE / "bench_train.py"), "--worker", "ours",
               "--backbones", args.backbone, "--epochs", str(args.epochs),
               "--threads", str(threads), "--data", str(args.data), "--seed", "0"]
    command += [] if args.users is None else ["--users", str(args.users)]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads),
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)


def seconds_per_epoch(process: subprocess.Popen) -> float:
    """The median training epoch of a finished worker."""
    out, err = process.communicate()
    line = next((text for text in out.splitlines() if text.startswith("RESULT ")), None)
    if process.returncode or line is None:
        sys.exit(f"worker failed:\n{out[-2000:]}\n{err[-2000:]}")
    return statistics.median(json.loads(line[7:])["epoch_s"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="sasrec", choices=["sasrec", "gru4rec",
                                                                 "bert4rec"])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--cores", type=int, default=os.cpu_count())
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "beauty")
    parser.add_argument("--users", type=int, help="only the first N users (smoke check)")
    args = parser.parse_args()
    ways = [(f"1 process x {args.cores} threads", 1, args.cores),
            ("1 process x 1 thread", 1, 1),
            (f"{args.cores} processes x 1 thread, at once", args.cores, 1)]
    rows = []
    for label, processes, threads in ways:
        workers = [start(threads, args) for _ in range(processes)]
        epochs = [seconds_per_epoch(worker) for worker in workers]
        median = statistics.median(epochs)
        rows.append((label, median, processes * 3600 / median))
    print(f"{args.backbone}, ID-only, {args.data.name}, {args.epochs} epoch(s) per process, "
          f"{args.cores} cores")
    print(f"{'way':40s} {'s/epoch':>8s} {'epochs/hour':>12s} {'throughput':>11s}")
    for label, median, per_hour in rows:
        print(f"{label:40s} {median:8.1f} {per_hour:12.1f} {per_hour / rows[0][2]:10.2f}x")


if __name__ == "__main__":
    main()

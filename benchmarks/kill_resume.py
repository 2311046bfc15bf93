"""Kill ``ace-bench`` with SIGKILL at random points, resume it, compare with a straight run.

    python benchmarks/kill_resume.py                    # 2 methods on the built-in data

Other ``ace-bench`` options given after the script's own are passed on (``--data DIR
--embeddings FILE --k-core 1`` runs it on another data set).

Runs the same two-method ``ace-bench`` command on the built-in MovieLens data twice: once
without interruption, once killed (``kill -9`` of its whole process group) at a random
moment ``--kills`` times and started again after each kill. Prints both ``results.csv``
side by side and exits with status 1 unless every cell's metrics agree to 1e-6 and the
same cells (fingerprints) were produced.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

METRICS = ["recall@10", "ndcg@10", "recall@20", "ndcg@20", "recall@50", "ndcg@50"]


def bench_command(out: Path, args: argparse.Namespace) -> list[str]:
    return [sys.executable, "-m", "recmodels.comparison", "--methods", args.methods,
            "--backbones", "sasrec", "--seeds", "0", "--lr", "1e-3",
            "--max-epochs", str(args.max_epochs), "--hidden-size", str(args.hidden_size),
            "--window-stride", str(args.window_stride), "--out", str(out), *args.passed_on]


def run(out: Path, args: argparse.Namespace, kill_after: float | None = None) -> bool:
    """Run the command; with ``kill_after``, SIGKILL it then. True when it finished."""
    log = open(out.parent / f"{out.name}.log", "a")
    process = subprocess.Popen(bench_command(out, args), stdout=log, stderr=log,
                               start_new_session=True)
    try:
        process.wait(timeout=kill_after)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        return False
    finally:
        log.close()
    if process.returncode != 0:
        raise SystemExit(f"ace-bench failed ({process.returncode}); see {log.name}")
    return True


def last_progress(log: Path) -> str:
    """The last line the run printed (progress bars split on carriage returns)."""
    lines = [line.strip() for line in log.read_text().replace("\r", "\n").splitlines()]
    return next((line for line in reversed(lines) if line), "(nothing printed yet)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="id,ace")
    parser.add_argument("--max-epochs", type=int, default=4)
    parser.add_argument("--hidden-size", type=int, default=64)
    parser.add_argument("--window-stride", type=int, default=25)
    parser.add_argument("--kills", type=int, default=2)
    parser.add_argument("--seed", type=int, default=None, help="seed of the kill times")
    parser.add_argument("--workdir", type=Path, default=None)
    args, args.passed_on = parser.parse_known_args(argv)
    rng = random.Random(args.seed)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="kill-resume-"))
    workdir.mkdir(parents=True, exist_ok=True)
    straight, killed = workdir / "straight", workdir / "killed"

    started = time.perf_counter()
    run(straight, args)
    duration = time.perf_counter() - started
    print(f"straight run: {duration:.0f} s")
    for number in range(args.kills):
        # A resumed run skips what is cached or finished: later kills come sooner.
        delay = rng.uniform(0.1, 0.9) * duration / (number + 1)
        finished = run(killed, args, kill_after=delay)
        print(f"kill {number + 1}: SIGKILL after {delay:.1f} s, "
              + ("the run had already finished" if finished else
                 f"during: {last_progress(workdir / 'killed.log')}"))
        if finished:
            break
    run(killed, args)

    a, b = (pd.read_csv(folder / "results.csv") for folder in (straight, killed))
    key = ["fingerprint", "split"]
    merged = a.merge(b, on=key, suffixes=("_straight", "_killed"), how="outer",
                     indicator=True)
    shown = ["method", "split", "ndcg@10", "recall@20", "ndcg@20", "epochs"]
    print(pd.concat({"straight": a[shown], "killed and resumed": b[shown]}, axis=1)
          .to_string(index=False))
    same_cells = (merged["_merge"] == "both").all() and len(a) == len(b)
    deviation = max(float((merged[f"{m}_straight"] - merged[f"{m}_killed"]).abs().max())
                    for m in METRICS)
    epochs_equal = bool((merged["epochs_straight"] == merged["epochs_killed"]).all())
    equal = same_cells and deviation <= 1e-6 and epochs_equal
    print(f"same cells: {same_cells}; largest metric difference: {deviation:.2e}; "
          f"epochs equal: {epochs_equal} -> {'EQUAL' if equal else 'DIFFERENT'}")
    return 0 if equal else 1


if __name__ == "__main__":
    raise SystemExit(main())

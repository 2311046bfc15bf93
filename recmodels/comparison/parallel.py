"""Cells trained side by side, each in its own process (``ace-bench --jobs N``).

A comparison's cells are independent once their learning rate is known, and on a small CPU
one cell does not use its cores well: a 128-wide model gains little from a second BLAS
thread (``benchmarks/bench_parallel_cells.py``: two one-thread processes train 1.53x the
epochs an hour of one two-thread process on 2 cores). :func:`cell_pool` starts ``jobs``
worker processes, each with ``cores // jobs`` threads and its own copy of the data; the
parent keeps ``results.csv`` (one writer) and submits cells to them.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import sys
import threading
from concurrent.futures import ProcessPoolExecutor
from contextlib import redirect_stderr

import torch

#: The worker process's cells (a ``runner._Cells``), set by :func:`_start_worker`.
_WORKER = None


def threads_per_job(jobs: int) -> int:
    """Threads each of ``jobs`` worker processes gets: the parent's share, at least one.

    Examples
    --------
    >>> from recmodels.comparison.parallel import threads_per_job
    >>> threads_per_job(10**6)
    1
    """
    return max(1, torch.get_num_threads() // jobs)


def cell_pool(jobs: int, make_cells, arguments: tuple) -> ProcessPoolExecutor:
    """``jobs`` worker processes, each holding ``make_cells(*arguments, announce=False)``.

    Workers are spawned (never forked: the parent's BLAS threads do not survive a fork)
    and exit when the parent does, so that a killed run leaves no cell training on in the
    background; the killed cells resume from their checkpoints next time.
    """
    return ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_start_worker,
                               initargs=(make_cells, arguments, threads_per_job(jobs)))


def stop_workers(pool: ProcessPoolExecutor, finished: bool) -> None:
    """Shut ``pool`` down: after its work when ``finished``, else at once, its workers
    terminated mid-cell (as a kill would; each cell resumes from its last epoch)."""
    if finished:
        pool.shutdown(wait=True)
        return
    # The pool's own dict of processes (no public way to reach them before Python 3.14),
    # kept before the shutdown, which forgets it; terminated before and after, so that one
    # started meanwhile goes too. The pool then fails the futures of the cells they ran
    # (BrokenProcessPool): nobody waits on them for ever.
    processes = getattr(pool, "_processes", None) or {}
    for process in list(processes.values()):
        process.terminate()
    pool.shutdown(wait=False, cancel_futures=True)
    for process in list(processes.values()):
        process.terminate()


def train_in_worker(job: tuple, prefix: str):
    """Train one cell in a worker (``_Cells.train_cell(*job)``), its progress lines
    prefixed with ``prefix`` so that cells training at once can be told apart."""
    lines = PrefixedLines(sys.stderr, prefix)
    try:
        with redirect_stderr(lines):
            if _WORKER.verbose:
                print("started", file=sys.stderr, flush=True)
            return _WORKER.train_cell(*job)
    finally:
        lines.finish()


def _start_worker(make_cells, arguments: tuple, threads: int) -> None:
    global _WORKER
    torch.set_num_threads(threads)
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()
    _WORKER = make_cells(*arguments, announce=False)


def _exit_with(parent) -> None:
    parent.join()
    os._exit(1)


class PrefixedLines(io.TextIOBase):
    """A text stream that writes every whole line to ``stream`` after ``prefix``.

    Examples
    --------
    >>> import io
    >>> from recmodels.comparison.parallel import PrefixedLines
    >>> sink = io.StringIO()
    >>> lines = PrefixedLines(sink, "[ace s1] ")
    >>> lines.write("epoch 1\\nepoch"), lines.write(" 2\\n")
    (13, 3)
    >>> print(sink.getvalue(), end="")
    [ace s1] epoch 1
    [ace s1] epoch 2
    """

    def __init__(self, stream, prefix: str) -> None:
        self.stream, self.prefix, self._partial = stream, prefix, ""

    def write(self, text: str) -> int:
        *lines, self._partial = (self._partial + text).split("\n")
        if lines:
            self.stream.write("".join(f"{self.prefix}{line}\n" for line in lines))
            self.stream.flush()
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def finish(self) -> None:
        """Write a last line that has no newline yet."""
        if self._partial:
            self.write("\n")

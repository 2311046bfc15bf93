"""Intra-op threads of a CPU training step: small operators on one, the item logits on all.

A training step runs a few large operators (the item-logit products and the softmax over
the whole catalogue, in :mod:`recmodels.models._loss`) among hundreds of small ones: the
encoder's layers on a few hundred tokens, dropout masks, the optimizer's update of each
parameter. With ``OMP_WAIT_POLICY=PASSIVE`` every threaded operator first wakes a sleeping
thread, which on our 2-core machine cost more than the second core gave back to the small
ones: in a SASRec step on two threads, Adam took twice its one-thread time, dropout masks,
copies and sums 1.5-2.3x (``benchmarks/profile_step.py --threads 1`` against ``2``).
:func:`training_step_threads` therefore runs a thin step (at most ``ONE_THREAD_WORK``
padded tokens x hidden width: length-sorted windows, about 300-600 tokens) on one thread
and :func:`all_threads` gives the logits back the caller's count. Steps on wide batches
(BERT4Rec's prefix rows, up to 256 x 50 tokens) keep all threads: their encoder's products
need them (a BERT4Rec epoch took 45.6 s split that way against 40.7 s).

Set ``RECMODELS_CPU_THREADS=all`` (before import) to run every operator on all threads;
the default is ``split``. Only the thread count changes, never the arithmetic beyond float
rounding: a seed gives the same run at the same setting. Other devices are left alone.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import torch

MODES = ("split", "all")
_MODE = os.environ.get("RECMODELS_CPU_THREADS", "split")
if _MODE not in MODES:
    raise ValueError(f"RECMODELS_CPU_THREADS={_MODE!r} is not one of {MODES}; unset it or set "
                     "it to 'split' (small operators on one thread, the item logits on all) "
                     "or 'all' (every operator on all threads).")
# A step whose input has at most this many padded tokens x hidden width runs on one thread.
ONE_THREAD_WORK = 2**18
# Only an OpenMP intra-op pool takes a new count at every call; torch's native pool warns
# and keeps its size once started, so there the split is off.
SETTABLE = "parallel backend: OpenMP" in torch.__config__.parallel_info()
# With OpenMP the count is per OS thread (a Python thread that makes its first torch call
# while another is inside a thin step starts at one); so is the count to give back.
_step = threading.local()


def cpu_threads_mode() -> str:
    """How a CPU training step uses its threads: ``"split"`` or ``"all"``."""
    return _MODE


@contextmanager
def one_thread(thin: bool) -> Iterator[None]:
    """One intra-op thread inside when ``thin`` (and the pool takes it); restored after."""
    full = torch.get_num_threads()
    if not (thin and SETTABLE and full > 1):
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(full)


@contextmanager
def training_step_threads(device: torch.device | str, work: int) -> Iterator[None]:
    """One intra-op thread inside, for a thin training step on the CPU in ``"split"`` mode.

    Parameters
    ----------
    device : torch.device or str
        Where the step runs; only ``"cpu"`` changes anything.
    work : int
        The step's padded input tokens times the model's hidden width; above
        ``ONE_THREAD_WORK`` the count stays.

    Examples
    --------
    >>> import torch
    >>> before = torch.get_num_threads()
    >>> with training_step_threads("cpu", work=256 * 128):
    ...     inside = torch.get_num_threads()
    >>> inside == (1 if cpu_threads_mode() == "split" else before)
    True
    >>> torch.get_num_threads() == before
    True
    """
    full = torch.get_num_threads()
    thin = _MODE == "split" and torch.device(device).type == "cpu" and work <= ONE_THREAD_WORK
    outer = getattr(_step, "full", None)
    with one_thread(thin):
        if torch.get_num_threads() < full:
            _step.full = full
        try:
            yield
        finally:
            _step.full = outer


@contextmanager
def all_threads() -> Iterator[None]:
    """The count the enclosing :func:`training_step_threads` started with; else unchanged."""
    full = getattr(_step, "full", None)
    inner = torch.get_num_threads()
    if not full or full == inner:
        yield
        return
    torch.set_num_threads(full)
    try:
        yield
    finally:
        torch.set_num_threads(inner)

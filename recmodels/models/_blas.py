"""Item-logit products on the CPU through NumPy's BLAS, where torch's is the slower one.

The logits ``states @ weights.T`` have a short inner dimension (the hidden size) and a wide
output (every item). torch's CPU wheels multiply through MKL, which on the 2-core AMD EPYC
we develop on reaches about half its square-matrix rate at that shape (92-108 against 193
GFLOP/s), while NumPy's OpenBLAS, called in row blocks, reaches 118-158;
``benchmarks/bench_logits.py`` prints both on the machine at hand. The backward's products
(long inner dimension) run equally fast in both and stay with torch.

Which library multiplies is a fixed choice, never a timing race, so that a seed gives the
same run in every process at the same thread count; the two differ only by float rounding.
Set the environment variable ``RECMODELS_CPU_LOGITS=torch`` (before import) to keep torch's
BLAS, e.g. on a machine where ``bench_logits.py`` shows it the faster. On other devices,
for other dtypes and for products autograd would record, :func:`torch.mm` runs as before.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

BACKENDS = ("numpy", "torch")
_BACKEND = os.environ.get("RECMODELS_CPU_LOGITS", "numpy")
if _BACKEND not in BACKENDS:
    raise ValueError(f"RECMODELS_CPU_LOGITS={_BACKEND!r} is not one of {BACKENDS}; unset it "
                     "or set it to 'numpy' (NumPy's BLAS) or 'torch' (torch.mm).")
_SMALL_FLOPS = 2**22  # below this, one call in this thread; splitting costs more


def cpu_backend() -> str:
    """The library that multiplies float32 logits on the CPU: ``"numpy"`` or ``"torch"``."""
    return _BACKEND


class _RowSplitter:
    """Runs single-threaded BLAS calls on row blocks in ``torch.get_num_threads()`` threads.

    OpenBLAS's own worker threads spin for a while after each call, which took a core from
    the torch operations that follow (evaluation's encoder ran 60 % slower beside them).
    Called with one BLAS thread from Python threads (``np.dot`` releases the GIL), nothing
    spins, and the thread count follows torch's.
    """

    def __init__(self) -> None:
        self._forget()
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        # One product at a time: the BLAS thread count is process-wide, and so is the pool.
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._size = 0
        self._libraries: list | None = None

    def dot(self, a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
        with self._lock:
            if self._libraries is None:
                from threadpoolctl import ThreadpoolController

                # NumPy's BLAS (OpenBLAS in its wheels, MKL in some builds) and SciPy's;
                # the pip torch wheels link MKL statically, out of threadpoolctl's sight.
                self._libraries = ThreadpoolController().select(
                    user_api="blas").lib_controllers
            # One BLAS thread while the blocks run; the previous count comes back after.
            before = [library.num_threads for library in self._libraries]
            for library in self._libraries:
                library.set_num_threads(1)
            try:
                self._split(a, b, out)
            finally:
                for library, threads in zip(self._libraries, before):
                    library.set_num_threads(threads)

    def _split(self, a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
        parts = min(torch.get_num_threads(), a.shape[0])
        if parts <= 1 or 2 * a.shape[0] * a.shape[1] * b.shape[1] < _SMALL_FLOPS:
            np.dot(a, b, out=out)
            return
        if self._size < parts - 1:  # grown, never shrunk: idle threads cost nothing
            if self._pool is not None:
                self._pool.shutdown()
            self._pool = ThreadPoolExecutor(parts - 1, thread_name_prefix="recmodels-blas")
            self._size = parts - 1
        cuts = [a.shape[0] * i // parts for i in range(parts + 1)]
        pending = [self._pool.submit(np.dot, a[lo:hi], b, out[lo:hi])
                   for lo, hi in zip(cuts[1:-1], cuts[2:])]
        try:
            np.dot(a[: cuts[1]], b, out=out[: cuts[1]])
        finally:  # no block may still write into ``out`` once this returns
            for job in pending:
                job.result()


_SPLITTER = _RowSplitter()


def _numpy_ok(*tensors: torch.Tensor) -> bool:
    return _BACKEND == "numpy" and all(
        t.device.type == "cpu" and t.layout == torch.strided and t.dtype == torch.float32
        and t.dim() == 2 and not (t.requires_grad and torch.is_grad_enabled())
        for t in tensors)


def mm(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """``a @ b`` for 2-d tensors; float32 CPU operands multiply in NumPy's BLAS.

    Transposed views pass to BLAS as such, without a copy. ``out``, when given, must be a
    ``(a.shape[0], b.shape[1])`` tensor of the result's dtype that overlaps neither operand.
    Safe to call from several Python threads: their products run one at a time.

    Examples
    --------
    >>> import torch
    >>> a, b = torch.randn(3, 4), torch.randn(5, 4)
    >>> bool(torch.allclose(mm(a, b.T), a @ b.T, atol=1e-6))
    True
    """
    if not _numpy_ok(a, b) or (out is not None and not _numpy_ok(out)):
        return torch.mm(a, b) if out is None else torch.mm(a, b, out=out)
    if out is None:
        out = torch.empty((a.shape[0], b.shape[1]), dtype=torch.float32)
    elif not out.is_contiguous():
        return torch.mm(a, b, out=out)
    _SPLITTER.dot(a.detach().numpy(), b.detach().numpy(), out.numpy())
    return out

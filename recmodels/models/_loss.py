"""Softmax cross-entropy over the whole catalogue, fused with the scoring matmul.

The training loss of every backbone is ``cross_entropy(states @ weights.T + bias)`` over all
items, with a few columns (padding, items kept out of training) at ``-inf``. Written
plainly, autograd stores the logits, copies them for every in-place ``-inf`` write, builds a
full-size ``log_softmax`` and a zero-filled one-hot gradient, and scatters the gradient of
the sliced weight matrix into a fresh zero tensor: each a pass over an ``(n, n_items)``
array that costs about as much as a third of the matmul beside it. :func:`linear_cross_entropy`
does the same arithmetic in one autograd node: the forward turns the logits into
``exp(logits - max)`` in place and keeps that buffer, the backward turns it into
``softmax - onehot`` in place and applies the ``grad / n`` scale to the small outputs.
"""

from __future__ import annotations

import threading

import torch
import torch.nn.functional as F

from ._blas import mm
from ._threads import all_threads


class _SpareLogits:
    """One float32 CPU array for the logits, lent to a forward and given back by its backward.

    A fresh ``(targets, items)`` array each step (about 12 MB on Beauty) comes from new
    pages that the kernel must fault in and zero; reused, a GRU4Rec step's loss forward took
    8.1-8.4 ms instead of 8.6-9.3 over a whole epoch (docs/results.md). While the
    array is out (a second loss before the first one's backward, or a forward that is never
    backpropagated) a forward takes a new one, as before.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._spare: torch.Tensor | None = None

    def take(self, rows: int, columns: int) -> torch.Tensor:
        with self._lock:
            spare, self._spare = self._spare, None
        if spare is None or spare.numel() < rows * columns:
            spare = torch.empty(rows * columns, dtype=torch.float32)
        return spare[: rows * columns].view(rows, columns)

    def give_back(self, logits: torch.Tensor) -> None:
        flat = logits if logits._base is None else logits._base
        with self._lock:
            if self._spare is None or self._spare.numel() < flat.numel():
                self._spare = flat


_SPARE = _SpareLogits()


class _LinearCrossEntropy(torch.autograd.Function):
    """Mean cross-entropy of ``states @ weights[:n_classes].T (+ bias)``; blocked columns out."""

    @staticmethod
    @all_threads()  # the step's large operators: see recmodels.models._threads
    def forward(ctx, states, weights, bias, targets, blocked, n_classes):
        candidates = weights[:n_classes]
        cpu = states.device.type == "cpu"
        out = _SPARE.take(states.shape[0], n_classes) if cpu else None
        logits = mm(states, candidates.T, out=out)
        if bias is not None:
            logits.add_(bias)
        logits.index_fill_(1, blocked, float("-inf"))
        picked = logits.gather(1, targets[:, None]).squeeze(1)
        shift = logits.amax(dim=1)
        unnormalised = logits.sub_(shift[:, None]).exp_()  # the logits' buffer from here on
        normaliser = unnormalised.sum(dim=1)
        ctx.save_for_backward(states, weights, unnormalised, normaliser, targets)
        ctx.n_classes, ctx.has_bias, ctx.spare = n_classes, bias is not None, cpu
        return (shift + normaliser.log() - picked).mean()

    @staticmethod
    @all_threads()
    def backward(ctx, grad_output):
        states, weights, grad_logits, normaliser, targets = ctx.saved_tensors
        n_classes = ctx.n_classes
        # softmax - onehot, in the saved buffer; this node runs once (no double backward).
        grad_logits.div_(normaliser[:, None])
        grad_logits[torch.arange(targets.numel(), device=targets.device), targets] -= 1.0
        scale = grad_output / targets.numel()
        grad_states = grad_weights = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_states = torch.mm(grad_logits, weights[:n_classes]).mul_(scale)
        if ctx.needs_input_grad[1]:
            grad_weights = torch.empty_like(weights)
            torch.mm(grad_logits.T, states * scale, out=grad_weights[:n_classes])
            grad_weights[n_classes:] = 0.0
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_bias = grad_logits.sum(dim=0).mul_(scale)
        if ctx.spare:  # read for the last time above
            _SPARE.give_back(grad_logits)
        return grad_states, grad_weights, grad_bias, None, None, None


def reference_linear_cross_entropy(states, weights, targets, *, n_classes, blocked,
                                   bias=None) -> torch.Tensor:
    """The plain computation :func:`linear_cross_entropy` must equal: logits, ``-inf``, CE."""
    logits = states.float() @ weights[:n_classes].float().T
    if bias is not None:
        logits = logits + bias.float()
    logits = logits.index_fill(1, blocked, float("-inf"))
    return F.cross_entropy(logits, targets)


def linear_cross_entropy(states: torch.Tensor, weights: torch.Tensor, targets: torch.Tensor,
                         *, n_classes: int, blocked: torch.Tensor,
                         bias: torch.Tensor | None = None) -> torch.Tensor:
    """Mean softmax cross-entropy of ``states @ weights[:n_classes].T + bias`` over ``targets``.

    Parameters
    ----------
    states : Tensor of shape (n, hidden)
    weights : Tensor of shape (n_rows, hidden)
        Only the first ``n_classes`` rows are candidates; the others (a BERT4Rec mask token)
        get a zero gradient.
    targets : Tensor of shape (n,)
        Column of each row's target; never a blocked column.
    n_classes : int
    blocked : Tensor of int64
        Columns that get a ``-inf`` logit: padding and items kept out of training.
    bias : Tensor of shape (n_classes,), optional

    Returns
    -------
    Tensor
        The scalar mean loss; equal to :func:`reference_linear_cross_entropy` up to float
        rounding, with the same gradients. Low-precision inputs (autocast on a GPU) take the
        reference path, which keeps autocast's choice of matmul precision.

    Examples
    --------
    >>> import torch
    >>> states, weights = torch.randn(4, 8), torch.randn(11, 8)
    >>> targets, blocked = torch.tensor([1, 5, 9, 10]), torch.tensor([0])
    >>> fused = linear_cross_entropy(states, weights, targets, n_classes=11, blocked=blocked)
    >>> plain = reference_linear_cross_entropy(states, weights, targets, n_classes=11,
    ...                                        blocked=blocked)
    >>> bool(torch.isclose(fused, plain))
    True
    """
    plain = (states.dtype != torch.float32 or weights.dtype != torch.float32
             or (bias is not None and bias.dtype != torch.float32)
             or torch.is_autocast_enabled(states.device.type) or targets.numel() == 0)
    if plain:
        return reference_linear_cross_entropy(states, weights, targets, n_classes=n_classes,
                                              blocked=blocked, bias=bias)
    return _LinearCrossEntropy.apply(states, weights, bias, targets, blocked, n_classes)

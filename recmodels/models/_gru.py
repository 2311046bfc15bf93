"""GRU recurrence on the CPU: the time steps of thin batches on one thread.

A GRU step on a short-sequence batch multiplies a few rows by the recurrent weights and
runs a handful of gate operations on ``(rows, 3 x hidden)`` arrays: microseconds of work.
torch's ``nn.GRU`` on the CPU runs them as separate operators on the process's intra-op
threads, and with ``OMP_WAIT_POLICY=PASSIVE`` (which we recommend, so idle threads do not
steal the core from other work) every threaded operator wakes a sleeping thread first: on
2 cores a 5-row, 50-step forward and backward took 29 ms on two threads against 8 ms on one
(``benchmarks/bench_gru.py``). :class:`GRU`, an ``nn.GRU`` in everything else, runs the
steps of batches of at most ``ONE_THREAD_ELEMENTS`` gate values on one thread, and has its
own backward:
about 10 operators a step instead of autograd's ~25, with the input and weight gradients of
all steps in three matrix products after the loop instead of one per step.

It computes what ``nn.GRU(bias=False)`` computes, to float rounding, from the same
parameters; tests compare outputs and gradients. Set ``RECMODELS_CPU_GRU=torch`` (before
import) to keep ``nn.GRU``. On other devices (cuDNN), for other dtypes and under autocast,
``nn.GRU`` always runs.
"""

from __future__ import annotations

import os

import torch
from torch import nn

from ._threads import one_thread

BACKENDS = ("recmodels", "torch")
_BACKEND = os.environ.get("RECMODELS_CPU_GRU", "recmodels")
if _BACKEND not in BACKENDS:
    raise ValueError(f"RECMODELS_CPU_GRU={_BACKEND!r} is not one of {BACKENDS}; unset it or "
                     "set it to 'recmodels' (this module's recurrence) or 'torch' (nn.GRU).")
# Steps of at most this many gate values (rows x 3 x hidden) run on one thread: above it,
# the recurrent product gains from a second thread more than its wake-up costs.
ONE_THREAD_ELEMENTS = 3 * 128 * 128

_sigmoid_backward = torch.ops.aten.sigmoid_backward.grad_input
_tanh_backward = torch.ops.aten.tanh_backward.grad_input


def cpu_backend() -> str:
    """Which GRU runs on the CPU for float32: ``"recmodels"`` or ``"torch"``."""
    return _BACKEND


def _forward(inputs: torch.Tensor, weight_ih: torch.Tensor, weight_hh: torch.Tensor,
             keep: bool):
    """Time-major states ``(T, B, H)``; with ``keep``, also what the backward needs."""
    batch, steps, _ = inputs.shape
    hidden = weight_hh.shape[1]
    time_major = inputs.transpose(0, 1).contiguous()
    gates_in = torch.mm(time_major.view(steps * batch, -1), weight_ih.T)
    gates_in = gates_in.view(steps, batch, 3 * hidden)
    states = inputs.new_empty(steps, batch, hidden)
    reset_update = inputs.new_empty(steps if keep else 1, batch, 2 * hidden)
    candidate = inputs.new_empty(steps if keep else 1, batch, hidden)
    recurrent_new = inputs.new_empty(steps if keep else 1, batch, hidden)
    gates_h = inputs.new_empty(batch, 3 * hidden)
    state = inputs.new_zeros(batch, hidden)
    with one_thread(batch * 3 * hidden <= ONE_THREAD_ELEMENTS):
        for t in range(steps):
            s = t if keep else 0
            torch.mm(state, weight_hh.T, out=gates_h)
            torch.add(gates_in[t, :, : 2 * hidden], gates_h[:, : 2 * hidden],
                      out=reset_update[s]).sigmoid_()
            recurrent_new[s].copy_(gates_h[:, 2 * hidden:])
            torch.addcmul(gates_in[t, :, 2 * hidden:], reset_update[s, :, :hidden],
                          recurrent_new[s], out=candidate[s]).tanh_()
            # h = (1 - z) n + z h_prev = lerp(n, h_prev, z)
            torch.lerp(candidate[s], state, reset_update[s, :, hidden:], out=states[t])
            state = states[t]
    return states, (time_major, reset_update, candidate, recurrent_new)


class _GRULayer(torch.autograd.Function):
    """One ``nn.GRU(bias=False, batch_first=True)`` layer from a zero initial state."""

    @staticmethod
    def forward(ctx, inputs, weight_ih, weight_hh):
        states, kept = _forward(inputs, weight_ih, weight_hh, keep=True)
        ctx.save_for_backward(weight_ih, weight_hh, states, *kept)
        # A copy, not a view of a saved tensor: callers may change it in place, as nn.GRU's.
        return states.transpose(0, 1).contiguous()

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_states):
        weight_ih, weight_hh, states, time_major, reset_update, candidate, recurrent_new = (
            ctx.saved_tensors)
        steps, batch, hidden = states.shape
        grad = grad_states.transpose(0, 1)
        # Gradients of the recurrent product's output (r, z, n parts) and of the input
        # gates' candidate part; r and z are the same for the input gates.
        grad_gates_h = states.new_empty(steps, batch, 3 * hidden)
        grad_in_candidate = states.new_empty(steps, batch, hidden)
        grad_reset_update = states.new_empty(batch, 2 * hidden)
        grad_state = states.new_zeros(batch, hidden)
        zero = states.new_zeros(batch, hidden)
        with one_thread(batch * 3 * hidden <= ONE_THREAD_ELEMENTS):
            for t in range(steps - 1, -1, -1):
                grad_state.add_(grad[t])
                reset = reset_update[t, :, :hidden]
                update = reset_update[t, :, hidden:]
                previous = states[t - 1] if t > 0 else zero
                grad_candidate = torch.addcmul(grad_state, grad_state, update, value=-1.0)
                _tanh_backward(grad_candidate, candidate[t], grad_input=grad_in_candidate[t])
                torch.mul(grad_in_candidate[t], recurrent_new[t],
                          out=grad_reset_update[:, :hidden])
                torch.mul(grad_state, previous - candidate[t],
                          out=grad_reset_update[:, hidden:])
                _sigmoid_backward(grad_reset_update, reset_update[t],
                                  grad_input=grad_gates_h[t, :, : 2 * hidden])
                torch.mul(grad_in_candidate[t], reset, out=grad_gates_h[t, :, 2 * hidden:])
                if t > 0:
                    grad_state = torch.addmm(grad_state * update, grad_gates_h[t], weight_hh)
        grad_inputs = grad_weight_ih = grad_weight_hh = None
        grad_gates_in = torch.cat([grad_gates_h[:, :, : 2 * hidden], grad_in_candidate], dim=2)
        grad_gates_in = grad_gates_in.view(steps * batch, 3 * hidden)
        if ctx.needs_input_grad[0]:
            grad_inputs = torch.mm(grad_gates_in, weight_ih).view(steps, batch, -1)
            grad_inputs = grad_inputs.transpose(0, 1)
        if ctx.needs_input_grad[1]:
            grad_weight_ih = torch.mm(grad_gates_in.T, time_major.view(steps * batch, -1))
        if ctx.needs_input_grad[2]:
            # The first step's previous state is zero: it adds nothing.
            grad_weight_hh = torch.mm(grad_gates_h[1:].reshape(-1, 3 * hidden).T,
                                      states[:-1].reshape(-1, hidden))
        return grad_inputs, grad_weight_ih, grad_weight_hh


def runs_here(gru: nn.GRU, inputs: torch.Tensor) -> bool:
    """Whether :class:`GRU` runs ``gru(inputs)`` itself (CPU float32, no bias, batch first)."""
    return (_BACKEND == "recmodels" and isinstance(inputs, torch.Tensor)
            and inputs.device.type == "cpu" and inputs.dim() == 3
            and inputs.dtype == torch.float32 and gru.batch_first and not gru.bias
            and not gru.bidirectional and gru.proj_size == 0
            and (gru.num_layers == 1 or gru.dropout == 0.0 or not gru.training)
            and not torch.is_autocast_enabled("cpu") and min(inputs.shape[:2]) > 0
            and all(p.dtype == torch.float32 for p in gru.parameters()))


class GRU(nn.GRU):
    """:class:`torch.nn.GRU` whose CPU float32 forward and backward run :class:`_GRULayer`.

    Same constructor, parameters, ``state_dict`` and hooks as ``nn.GRU``; where
    :func:`runs_here` holds and no initial state is given, each layer runs this module's
    recurrence, elsewhere ``nn.GRU.forward``.

    Examples
    --------
    >>> import torch
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> gru = GRU(4, 3, batch_first=True, bias=False)
    >>> x = torch.randn(2, 5, 4)
    >>> states, last = gru(x)
    >>> reference = torch.nn.GRU(4, 3, batch_first=True, bias=False)
    >>> _ = reference.load_state_dict(gru.state_dict())
    >>> bool(torch.allclose(states, reference(x)[0], atol=1e-6)), tuple(last.shape)
    (True, (1, 2, 3))
    """

    def forward(self, input: torch.Tensor, hx: torch.Tensor | None = None):
        if hx is not None or not runs_here(self, input):
            return super().forward(input, hx)
        self.check_input(input, None)  # nn.GRU's errors for a wrong input size
        states, last = input, []
        for layer in range(self.num_layers):
            weight_ih = getattr(self, f"weight_ih_l{layer}")
            weight_hh = getattr(self, f"weight_hh_l{layer}")
            if torch.is_grad_enabled() and (states.requires_grad or weight_ih.requires_grad
                                            or weight_hh.requires_grad):
                states = _GRULayer.apply(states, weight_ih, weight_hh)
            else:
                states = _forward(states, weight_ih, weight_hh, keep=False)[0].transpose(0, 1)
            last.append(states[:, -1])
        return states, torch.stack(last)

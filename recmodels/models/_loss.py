"""Softmax cross-entropy over the whole catalogue, with a leaner backward pass."""

from __future__ import annotations

import torch


class _FullSoftmaxCrossEntropy(torch.autograd.Function):
    """Mean cross-entropy of ``(n, n_items)`` logits against integer targets.

    ``F.cross_entropy`` materialises a zero-filled one-hot gradient and a separate
    ``log_softmax`` output of the logits' size. With tens of thousands of items those
    full-size passes cost as much as the scoring matmul's neighbours, so here the forward keeps
    only the log-normaliser and the backward turns the logits into the gradient in place
    (``softmax - onehot``). The logits must be a temporary nobody else reads.
    """

    @staticmethod
    def forward(ctx, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        log_normalizer = torch.logsumexp(logits, dim=1)
        picked = logits.gather(1, targets[:, None]).squeeze(1)
        ctx.save_for_backward(logits, log_normalizer, targets)
        return (log_normalizer - picked).mean()

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        logits, log_normalizer, targets = ctx.saved_tensors
        grad = logits.sub_(log_normalizer[:, None]).exp_()
        grad[torch.arange(grad.shape[0], device=grad.device), targets] -= 1.0
        grad.mul_(grad_output / grad.shape[0])
        return grad, None


def full_softmax_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy; float32 logits that are a fresh temporary use the lean path."""
    if logits.dtype != torch.float32 or not logits.requires_grad or targets.numel() == 0:
        return torch.nn.functional.cross_entropy(logits.float(), targets)
    return _FullSoftmaxCrossEntropy.apply(logits, targets)

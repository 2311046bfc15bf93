"""Scaled dot-product attention for the transformer backbones, and queries packed by sequence.

Two costs this module avoids. On the CPU, attention with dropout runs PyTorch's math path,
whose mask comes from ``bernoulli_`` (see :mod:`.dropout`); :func:`attention` computes the
same softmax itself there and drops weights with :func:`~.dropout.dropout`. And a layer that
reads its outputs at a few positions per sequence (BERT4Rec's masked items, every model's
last item at evaluation) would copy each query's keys and values out of its sequence if it
attended query by query: :func:`pack_queries` places the queries of a sequence side by
side instead, so attention runs per sequence against its keys where they lie.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from .dropout import dropout

# On CUDA, attention may use any backend but cuDNN's: cuDNN builds an execution plan for
# every new input shape, and trimmed training batches bring a new shape at almost every
# step (benchmarks/profile_step.py --device cuda: a Beauty SASRec step took 140 ms, the
# GPU busy 0.8 ms of it; 7.4 ms without cuDNN's backend).
CUDA_ATTENTION_BACKENDS = [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION,
                           SDPBackend.MATH]


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
              attn_mask: torch.Tensor | None, dropout_p: float,
              is_causal: bool = False) -> torch.Tensor:
    """``F.scaled_dot_product_attention``; on the CPU with dropout, the same maths here.

    Parameters
    ----------
    q, k, v : Tensor of shape (batch, heads, length, head_size)
        Keys and values may be longer than the queries.
    attn_mask : Tensor of bool, optional
        True where a query may attend to a key; broadcast against
        ``(batch, heads, q_length, k_length)``.
    dropout_p : float
        Dropout on the attention weights.
    is_causal : bool, default=False

    Returns
    -------
    Tensor shaped like ``q``.

    Notes
    -----
    On CUDA the backends are restricted to :data:`CUDA_ATTENTION_BACKENDS`.

    Examples
    --------
    >>> q = torch.randn(2, 1, 3, 4)
    >>> torch.equal(attention(q, q, q, None, 0.0), F.scaled_dot_product_attention(q, q, q))
    True
    """
    if q.is_cuda:
        with sdpa_kernel(CUDA_ATTENTION_BACKENDS):
            return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask,
                                                  dropout_p=dropout_p, is_causal=is_causal)
    if dropout_p == 0.0:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=is_causal)
    return softmax_attention(q, k, v, attn_mask, dropout_p, is_causal)


def softmax_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                      attn_mask: torch.Tensor | None, dropout_p: float,
                      is_causal: bool = False) -> torch.Tensor:
    """What ``F.scaled_dot_product_attention`` computes, with :func:`~.dropout.dropout`.

    Same parameters as :func:`attention`; ``is_causal`` aligns the causal mask top-left
    (query ``i`` sees keys ``0..i``) and combines with ``attn_mask``. A query that may
    attend to no key gets a zero output and no gradient, as SDPA gives it.

    Examples
    --------
    >>> q, k = torch.randn(2, 1, 3, 4), torch.randn(2, 1, 5, 4)
    >>> expected = F.scaled_dot_product_attention(q, k, k, is_causal=True)
    >>> torch.allclose(softmax_attention(q, k, k, None, 0.0, is_causal=True), expected,
    ...                atol=1e-6)
    True
    """
    scores = torch.matmul(q, k.transpose(-2, -1)).mul_(q.shape[-1] ** -0.5)
    if is_causal:
        causal = torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool, device=q.device).tril()
        attn_mask = causal if attn_mask is None else attn_mask & causal
    empty = None
    if attn_mask is not None:
        # A row with no key left would be NaN after the softmax, and NaN reaches every
        # gradient through it; such rows keep finite scores here and are zeroed below.
        empty = ~attn_mask.any(dim=-1, keepdim=True)
        scores = scores.masked_fill_(~(attn_mask | empty), float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    if empty is not None and bool(empty.any()):
        weights = weights.masked_fill(empty, 0.0)
    return torch.matmul(dropout(weights, dropout_p), v)


def pack_queries(rows: torch.Tensor, n_rows: int) -> tuple[torch.Tensor, int]:
    """Each selected query's slot among its sequence's queries, and the most in one sequence.

    Parameters
    ----------
    rows : Tensor of int64, shape (n,)
        Sequence of each query, in any order.
    n_rows : int
        Number of sequences.

    Returns
    -------
    slots : Tensor of int64, shape (n,)
        ``0, 1, ...`` over the queries of each sequence, in their order in ``rows``; so
        ``(rows, slots)`` addresses a ``(n_rows, width)`` grid without collisions.
    width : int
        One more than the largest slot (0 when there are no queries).

    Examples
    --------
    >>> pack_queries(torch.tensor([2, 0, 2, 2, 0]), 3)
    (tensor([0, 0, 1, 2, 1]), 3)
    """
    if rows.numel() == 0:
        return torch.zeros_like(rows), 0
    order = torch.argsort(rows, stable=True)
    counts = torch.bincount(rows, minlength=n_rows)
    first = torch.cumsum(counts, 0) - counts
    slots = torch.empty_like(rows)
    slots[order] = torch.arange(rows.numel(), device=rows.device) - first[rows[order]]
    return slots, int(counts.max())

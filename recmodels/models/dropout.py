"""Dropout whose CPU mask is drawn from uniform numbers instead of ``bernoulli_``.

On the CPU, ``torch.nn.functional.dropout`` draws its mask with ``bernoulli_``, which takes
about four times as long here as ``torch.rand`` for the same number of elements (one
Bernoulli draw per element through the generator, against a vectorised uniform fill): a
BERT4Rec training step spent 9 % of its time there (``benchmarks/profile_step.py``). A
uniform draw ``u`` in ``[0, 1)`` kept where ``u >= p`` is a Bernoulli mask with keep
probability ``1 - p`` (to float32's resolution, as ``bernoulli_`` is), so the result has the
same distribution; only the random stream differs. CUDA keeps PyTorch's dropout, which is
fast there.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """Zero each element with probability ``p`` and scale the rest by ``1 / (1 - p)``.

    Parameters
    ----------
    x : Tensor
    p : float
        Probability of an element being zeroed, in ``[0, 1)``.
    training : bool, default=True
        Returns ``x`` unchanged when False.

    Returns
    -------
    Tensor shaped like ``x``. Its gradient is the same mask and scale.

    Examples
    --------
    >>> import torch
    >>> x = torch.ones(1000)
    >>> y = dropout(x, 0.5)
    >>> sorted(set(y.tolist())) == [0.0, 2.0]
    True
    >>> torch.equal(dropout(x, 0.5, training=False), x)
    True
    """
    if not training or p == 0.0:
        return x
    if x.is_cuda or not 0.0 < p < 1.0:
        return F.dropout(x, p, training=True)  # p = 1 and bad values: PyTorch's answer
    # Drawn in float32 whatever x holds: bfloat16's 8 bits would bias the kept share.
    keep = torch.rand_like(x, dtype=torch.float32).ge_(p).to(x.dtype).mul_(1.0 / (1.0 - p))
    return x * keep


class Dropout(nn.Dropout):
    """:class:`torch.nn.Dropout` drawing its CPU mask with :func:`dropout`.

    Same parameters and settings as :class:`torch.nn.Dropout` (``inplace`` is not
    honoured on the CPU: the mask needs a buffer anyway).

    Examples
    --------
    >>> import torch
    >>> layer = Dropout(0.3).eval()
    >>> torch.equal(layer(torch.ones(4)), torch.ones(4))
    True
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.p, self.training)

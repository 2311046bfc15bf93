"""Full-sort ranking metrics, vectorised: one top-k at the largest cut-off per batch."""

from __future__ import annotations

from collections.abc import Sequence

import torch

DEFAULT_KS = (1, 5, 10, 20, 50)


def mask_history(scores: torch.Tensor, history: torch.Tensor, targets: torch.Tensor) -> None:
    """Set the scores of items already seen to ``-inf`` in place, except each target's own.

    ``history`` is ``(batch, h)`` 0-padded; item 0 (padding) is already ``-inf``.
    """
    target_scores = scores.gather(1, targets[:, None])
    scores.scatter_(1, history, float("-inf"))
    scores.scatter_(1, targets[:, None], target_scores)


def ranking_metric_sums(scores: torch.Tensor, targets: torch.Tensor,
                        ks: Sequence[int] = DEFAULT_KS) -> dict[str, torch.Tensor]:
    """Sums over the batch of Recall@K and NDCG@K for one held-out target per row.

    Parameters
    ----------
    scores : Tensor of shape (batch, n_items + 1)
        Scores of every item; masked items hold ``-inf``.
    targets : Tensor of shape (batch,)
        The held-out item of each row.
    ks : sequence of int
        Cut-offs.

    Returns
    -------
    dict
        ``"recall@K"`` and ``"ndcg@K"`` sums (divide by the number of rows once, at the end).

    Examples
    --------
    >>> import torch
    >>> scores = torch.tensor([[float("-inf"), 0.9, 0.1, 0.5]])
    >>> sums = ranking_metric_sums(scores, torch.tensor([3]), ks=(1, 2))
    >>> float(sums["recall@1"]), round(float(sums["ndcg@2"]), 4)
    (0.0, 0.6309)
    """
    largest = max(ks)
    top = scores.topk(min(largest, scores.shape[1]), dim=1).indices
    hits = top == targets[:, None]
    discount = 1.0 / torch.log2(torch.arange(2, top.shape[1] + 2, device=scores.device,
                                             dtype=torch.float32))
    gains = hits.float() * discount
    sums = {}
    for k in ks:
        sums[f"recall@{k}"] = hits[:, :k].any(dim=1).float().sum()
        sums[f"ndcg@{k}"] = gains[:, :k].sum()
    return sums

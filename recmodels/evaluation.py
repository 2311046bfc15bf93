"""Full-sort evaluation of a model on the validation or test split."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .batching import eval_batch
from .data import SequenceData
from .metrics import DEFAULT_KS, mask_history, ranking_metric_sums
from .models.base import SequentialRecommender


@torch.no_grad()
def evaluate(model: SequentialRecommender, data: SequenceData, split: str = "valid", *,
             ks: Sequence[int] = DEFAULT_KS, mask_seen: bool = False,
             batch_size: int = 1024, device: str | torch.device = "cpu") -> dict[str, float]:
    """Recall@K and NDCG@K over all users, ranking every item (full sort).

    Parameters
    ----------
    model : SequentialRecommender
        Model on ``device``.
    data : SequenceData
        The data set; each user's ``split`` target is ranked against all items.
    split : {"valid", "test"}, default="valid"
    ks : sequence of int, default=(1, 5, 10, 20, 50)
    mask_seen : bool, default=False
        Exclude items already in the user's history (the seed paper does not).
    batch_size : int, default=1024
    device : str or torch.device, default="cpu"

    Returns
    -------
    dict of str to float
        ``"recall@K"`` and ``"ndcg@K"`` means over users.

    Examples
    --------
    >>> from recmodels import build_sequences
    >>> from recmodels.datasets import make_interactions
    >>> log = make_interactions()
    >>> from recmodels import SASRec, TrainableTable, evaluate
    >>> data = build_sequences(log, k_core=1)
    >>> model = SASRec(TrainableTable(data.n_items, 16), max_len=5, inner_size=16)
    >>> metrics = evaluate(model, data, "valid", ks=(1, 10))
    >>> sorted(metrics), metrics["recall@10"]
    (['ndcg@1', 'ndcg@10', 'recall@1', 'recall@10'], 1.0)
    """
    batch = eval_batch(data, split, model.context_len)
    inputs = torch.from_numpy(batch.inputs)
    lengths = torch.from_numpy(batch.lengths)
    targets = torch.from_numpy(batch.targets)
    history = torch.from_numpy(batch.history)
    was_training = model.training
    model.eval()
    weights = model.item_weights()
    totals: dict[str, torch.Tensor] = {}
    # Users of similar length share a batch, so each batch is trimmed to little padding.
    by_length = torch.argsort(lengths, stable=True)
    for start in range(0, data.n_users, batch_size):
        rows = by_length[start : start + batch_size]
        batch_targets = targets[rows].to(device)
        states = model.user_states(inputs[rows].to(device), lengths[rows].to(device), weights)
        scores = model.score(states, weights).float()
        if mask_seen:
            mask_history(scores, history[rows].to(device), batch_targets)
        for name, value in ranking_metric_sums(scores, batch_targets, ks).items():
            totals[name] = totals.get(name, 0.0) + value
    model.train(was_training)
    return {name: float(value) / data.n_users for name, value in totals.items()}

"""Full-sort evaluation of a model on the validation or test split."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ._validation import check_counts, check_ks, check_same_items
from .batching import eval_batch
from .data import SequenceData
from .metrics import DEFAULT_KS, mask_history, per_user_metrics, target_ranks
from .models.base import SequentialRecommender


def model_device(model: torch.nn.Module) -> torch.device:
    """The device of the model's first parameter or buffer (the CPU for an empty model)."""
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


@torch.no_grad()
def rank_targets(model: SequentialRecommender, data: SequenceData, split: str = "valid", *,
                 mask_seen: bool = False, batch_size: int = 1024,
                 device: str | torch.device | None = None,
                 users: np.ndarray | None = None) -> np.ndarray:
    """0-based rank of every user's ``split`` target among all items, in user order.

    Scores are computed in float32 even under a bfloat16 autocast (a bf16 score matmul
    ties thousands of items); ties count against the target (see :mod:`recmodels.metrics`).

    Parameters
    ----------
    model : SequentialRecommender
    data : SequenceData
    split : {"valid", "test"}, default="valid"
    mask_seen : bool, default=False
        Exclude items already in the user's history (the seed paper does not).
    batch_size : int, default=1024
    device : str or torch.device, optional
        Where to score; by default the model's own device.
    users : ndarray of int, optional
        Rank only these users, scored in this order in batches of ``batch_size``; the result
        then has one rank per entry. By default every user, in :func:`scoring_order`. A
        slice of that order starting at a multiple of ``batch_size`` is scored in the same
        batches, so bit for bit as in a full call (what distributed evaluation relies on).

    Returns
    -------
    ndarray of shape (n_users,) or (len(users),), int64

    Examples
    --------
    >>> from recmodels import SASRec, TrainableTable, build_sequences
    >>> from recmodels.datasets import make_interactions
    >>> from recmodels.evaluation import rank_targets
    >>> data = build_sequences(make_interactions(), k_core=1)
    >>> model = SASRec(TrainableTable(data.n_items, 16), max_len=5, inner_size=16)
    >>> ranks = rank_targets(model, data, "test")
    >>> ranks.shape == (data.n_users,), bool((ranks < data.n_items).all())
    (True, True)
    """
    check_same_items(model, data)
    check_counts(batch_size=batch_size)
    device = model_device(model) if device is None else torch.device(device)
    batch = eval_batch(data, split, model.context_len, with_history=mask_seen)
    inputs = torch.from_numpy(batch.inputs)
    lengths = torch.from_numpy(batch.lengths)
    targets = torch.from_numpy(batch.targets)
    was_training = model.training
    model.eval()
    weights = model.item_weights()
    order = (torch.from_numpy(_length_order(batch.lengths)) if users is None
             else torch.as_tensor(np.asarray(users, dtype=np.int64)))
    ranks = torch.empty(order.numel(), dtype=torch.int64)
    buffer = torch.empty(min(batch_size, order.numel()), model.n_items + 1,
                         dtype=torch.float32, device=device)
    for start in range(0, order.numel(), batch_size):
        rows = order[start : start + batch_size]
        batch_targets = targets[rows].to(device)
        states = model.user_states(inputs[rows].to(device), lengths[rows].to(device), weights)
        with torch.autocast(device_type=device.type, enabled=False):
            scores = model.score(states.float(), weights.float(), out=buffer[: rows.numel()])
        if mask_seen:
            history = torch.from_numpy(batch.history[rows.numpy()]).to(device)
            mask_history(scores, history, batch_targets)
        ranks[start : start + batch_size] = target_ranks(scores, batch_targets).cpu()
    model.train(was_training)
    if users is not None:
        return ranks.numpy()
    in_user_order = torch.empty_like(ranks)
    in_user_order[order] = ranks
    return in_user_order.numpy()


def _length_order(lengths: np.ndarray) -> np.ndarray:
    # Users of similar length share a batch, so each batch is trimmed to little padding.
    return np.argsort(lengths, kind="stable")


def scoring_order(data: SequenceData, split: str, context_len: int) -> np.ndarray:
    """The order in which :func:`rank_targets` scores users: by input length, ties by user.

    Examples
    --------
    >>> from recmodels import build_sequences
    >>> from recmodels.datasets import make_interactions
    >>> from recmodels.evaluation import scoring_order
    >>> data = build_sequences(make_interactions(), k_core=1)
    >>> sorted(scoring_order(data, "test", context_len=5).tolist()) == list(range(data.n_users))
    True
    """
    return _length_order(eval_batch(data, split, context_len).lengths)


def evaluate(model: SequentialRecommender, data: SequenceData, split: str = "valid", *,
             ks: Sequence[int] = DEFAULT_KS, mask_seen: bool = False,
             batch_size: int = 1024,
             device: str | torch.device | None = None) -> dict[str, float]:
    """Recall@K and NDCG@K over all users, ranking every item (full sort).

    Parameters
    ----------
    model : SequentialRecommender
    data : SequenceData
        The data set; each user's ``split`` target is ranked against all items.
    split : {"valid", "test"}, default="valid"
    ks : sequence of int, default=(1, 5, 10, 20, 50)
    mask_seen : bool, default=False
        Exclude items already in the user's history (the seed paper does not).
    batch_size : int, default=1024
    device : str or torch.device, optional
        Where to score; by default the model's own device.

    Returns
    -------
    dict of str to float
        ``"recall@K"`` and ``"ndcg@K"`` means over users. Ties count against the target
        and scores are float32 (see :func:`rank_targets`).

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
    check_ks(ks)
    ranks = rank_targets(model, data, split, mask_seen=mask_seen, batch_size=batch_size,
                         device=device)
    return mean_metrics(ranks, ks)


def mean_metrics(ranks: np.ndarray, ks: Sequence[int] = DEFAULT_KS) -> dict[str, float]:
    """Means over users of :func:`~recmodels.metrics.per_user_metrics`."""
    return {name: float(values.mean()) for name, values in per_user_metrics(ranks, ks).items()}

"""Data-parallel training under ``torchrun``: ranks, sharding and gathering.

Everything here works unchanged in one process, where it does nothing: a world of one rank,
every batch and every user on rank 0, gathers that return their input. Under
``torchrun --nproc_per_node=N`` (or a process group the script initialised itself) the
:class:`~recmodels.Trainer` uses these helpers so that

* every rank builds the same shuffled batch list and trains every ``N``-th batch of it,
  the same number of steps on every rank (:func:`shard_batches`);
* DistributedDataParallel averages the gradients (:func:`training_loss`);
* every rank scores a contiguous share of the users and receives every user's rank
  exactly once, as one process would compute it (:func:`rank_targets`).
"""

from __future__ import annotations

import atexit
import gc
import math
import os
from collections.abc import Callable, Sequence
from typing import TypeVar

import numpy as np
import torch
from torch import distributed as dist
from torch import nn

from .data import SequenceData
from .evaluation import rank_targets as rank_all_targets
from .evaluation import model_device, scoring_order
from .models.base import SequentialRecommender

T = TypeVar("T")


def _is_up() -> bool:
    return dist.is_available() and dist.is_initialized()


def world_size() -> int:
    """Number of ranks in the process group; 1 without one.

    Examples
    --------
    >>> from recmodels import distributed
    >>> distributed.world_size()
    1
    """
    return dist.get_world_size() if _is_up() else 1


def rank() -> int:
    """This process's rank in the process group; 0 without one.

    Examples
    --------
    >>> from recmodels import distributed
    >>> distributed.rank()
    0
    """
    return dist.get_rank() if _is_up() else 0


def is_main() -> bool:
    """Whether this process is rank 0, the one that logs and writes checkpoints.

    Examples
    --------
    >>> from recmodels import distributed
    >>> distributed.is_main()
    True
    """
    return rank() == 0


def barrier() -> None:
    """Wait until every rank gets here (nothing to wait for in one process).

    Examples
    --------
    >>> from recmodels import distributed
    >>> distributed.barrier()
    """
    if world_size() > 1:
        dist.barrier()


def setup(device: torch.device) -> torch.device:
    """Join the process group ``torchrun`` describes and pick this rank's device.

    When the environment names a world of more than one process (``WORLD_SIZE``, as
    ``torchrun`` sets it) and no process group is up yet, one is initialised from the
    environment: NCCL for a CUDA ``device``, gloo otherwise; it is destroyed at exit. A
    group the script initialised itself is used as it is. A CUDA device without an index
    becomes ``cuda:LOCAL_RANK``.

    Parameters
    ----------
    device : torch.device
        The device asked for.

    Returns
    -------
    torch.device
        The device this rank trains on.

    Examples
    --------
    >>> import torch
    >>> from recmodels import distributed
    >>> distributed.setup(torch.device("cpu"))
    device(type='cpu')
    """
    wanted = int(os.environ.get("WORLD_SIZE", "1"))
    if wanted > 1 and not dist.is_available():
        raise RuntimeError(f"WORLD_SIZE={wanted} but this torch has no torch.distributed.")
    if wanted > 1 and not dist.is_initialized():
        if device.type == "cuda":
            local = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            dist.init_process_group("nccl", device_id=local)
        else:
            dist.init_process_group("gloo")
        atexit.register(_destroy)
    if device.type == "cuda" and device.index is None and world_size() > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    if device.type == "cuda" and world_size() > 1:
        # NCCL collectives and all_gather_object use the current device.
        torch.cuda.set_device(device)
    return device


def _destroy() -> None:
    if dist.is_initialized():
        # A DDP wrapper lives in a reference cycle: left to the collector at interpreter
        # exit, its reducer would be freed after the group is gone, and gloo aborts then.
        gc.collect()
        dist.destroy_process_group()


def seed_rank(seed: int) -> None:
    """Give each rank past 0 its own stream of dropout draws.

    Called after the initial weights are drawn (the same on every rank). Rank 0 keeps the
    stream of a single-process run; the others would otherwise draw the same dropout masks.

    Examples
    --------
    >>> import torch
    >>> from recmodels import distributed
    >>> _ = torch.manual_seed(0); distributed.seed_rank(0); a = torch.rand(1)
    >>> _ = torch.manual_seed(0); b = torch.rand(1)
    >>> bool(a == b)
    True
    """
    if rank() > 0:
        torch.manual_seed(seed * 1_000_003 + 7_919 * rank())


def shard_batches(batches: Sequence[T], rank_index: int | None = None,
                  n_ranks: int | None = None) -> list[T]:
    """This rank's batches of an epoch: every ``n_ranks``-th one, the same count on all.

    Rank ``r`` takes batches ``r, r + W, r + 2W, ...`` of the list every rank built
    identically. When ``W`` does not divide the number of batches, the list is first
    padded by repeating its first batches (at most ``W - 1`` of them, as torch's
    ``DistributedSampler`` pads), so every rank takes ``ceil(n / W)`` steps: DDP needs the
    same number of backward passes on every rank, and every example is still trained at
    least once per epoch.

    Parameters
    ----------
    batches : sequence
        The epoch's batches, in the same order on every rank.
    rank_index, n_ranks : int, optional
        This rank and the number of ranks; by default those of the process group.

    Returns
    -------
    list

    Examples
    --------
    >>> from recmodels.distributed import shard_batches
    >>> [shard_batches(list("abcde"), r, 2) for r in (0, 1)]
    [['a', 'c', 'e'], ['b', 'd', 'a']]
    >>> shard_batches(list("abc"))
    ['a', 'b', 'c']
    """
    index = rank() if rank_index is None else rank_index
    world = world_size() if n_ranks is None else n_ranks
    if world == 1:
        return list(batches)
    steps = math.ceil(len(batches) / world)
    padded = [batches[i % len(batches)] for i in range(steps * world)] if batches else []
    return padded[index::world]


def user_shards(n_users: int, batch_size: int, n_ranks: int) -> list[slice]:
    """Contiguous shares of the scoring order, one per rank, cut at batch boundaries.

    Cutting at multiples of ``batch_size`` puts every user in the same evaluation batch
    as in one process, so its score, and rank, are the same bit for bit. Every user is
    in exactly one share; a rank may get an empty share when there are fewer batches
    than ranks.

    Parameters
    ----------
    n_users : int
    batch_size : int
        The evaluation batch size.
    n_ranks : int

    Returns
    -------
    list of slice
        ``n_ranks`` slices of ``range(n_users)``, in rank order.

    Examples
    --------
    >>> from recmodels.distributed import user_shards
    >>> user_shards(10, batch_size=3, n_ranks=2)
    [slice(0, 6, None), slice(6, 10, None)]
    """
    n_batches = math.ceil(n_users / batch_size)
    cuts = [min(n_users, (r * n_batches // n_ranks) * batch_size)
            for r in range(n_ranks + 1)]
    return [slice(cuts[r], cuts[r + 1]) for r in range(n_ranks)]


def join_shards(padded: Sequence[np.ndarray], shards: Sequence[slice]) -> np.ndarray:
    """Trim each rank's padded result to its share and put the shares end to end.

    Parameters
    ----------
    padded : sequence of ndarray
        One array per rank, each at least as long as the rank's share.
    shards : sequence of slice
        The shares, as :func:`user_shards` gives them.

    Returns
    -------
    ndarray
        The results of every share, in scoring order (no padding left).

    Examples
    --------
    >>> import numpy as np
    >>> from recmodels.distributed import join_shards, user_shards
    >>> shards = user_shards(5, batch_size=2, n_ranks=2)
    >>> shards
    [slice(0, 2, None), slice(2, 5, None)]
    >>> join_shards([np.array([7, 8, -1]), np.array([6, 5, 4])], shards)
    array([7, 8, 6, 5, 4])
    """
    return np.concatenate([part[: shard.stop - shard.start]
                           for part, shard in zip(padded, shards, strict=True)])


def _all_gather_padded(local: np.ndarray, length: int, device: torch.device) -> list[np.ndarray]:
    # all_gather needs equal shapes; -1 fills the shorter shares and is trimmed away.
    tensor = torch.full((length,), -1, dtype=torch.int64, device=device)
    tensor[: local.size] = torch.from_numpy(local).to(device)
    parts = [torch.empty_like(tensor) for _ in range(world_size())]
    dist.all_gather(parts, tensor)
    return [part.cpu().numpy() for part in parts]


def rank_targets(model: SequentialRecommender, data: SequenceData, split: str = "valid", *,
                 mask_seen: bool = False, batch_size: int = 1024,
                 device: torch.device | None = None) -> np.ndarray:
    """:func:`recmodels.evaluation.rank_targets` with the users shared among the ranks.

    Each rank scores a contiguous share of the users (:func:`user_shards`); the shares are
    gathered, padded to equal length and trimmed (no user is counted twice, as a padding
    sampler would), so every rank returns every user's rank exactly once, equal to one
    process's result. In one process this is the plain function.

    Parameters
    ----------
    model, data, split, mask_seen, batch_size, device
        As for :func:`recmodels.evaluation.rank_targets`.

    Returns
    -------
    ndarray of shape (n_users,), int64

    Examples
    --------
    >>> from recmodels import SASRec, TrainableTable, build_sequences
    >>> from recmodels.datasets import make_interactions
    >>> from recmodels import distributed, evaluation
    >>> data = build_sequences(make_interactions(), k_core=1)
    >>> model = SASRec(TrainableTable(data.n_items, 16), max_len=5, inner_size=16)
    >>> ranks = distributed.rank_targets(model, data, "test", batch_size=3)
    >>> bool((ranks == evaluation.rank_targets(model, data, "test", batch_size=3)).all())
    True
    """
    kwargs = {"mask_seen": mask_seen, "batch_size": batch_size, "device": device}
    if world_size() == 1:
        return rank_all_targets(model, data, split, **kwargs)
    order = scoring_order(data, split, model.context_len)
    shards = user_shards(data.n_users, batch_size, world_size())
    local = rank_all_targets(model, data, split, users=order[shards[rank()]], **kwargs)
    longest = max(shard.stop - shard.start for shard in shards)
    gathered = _all_gather_padded(local, longest, device or model_device(model))
    ranks = np.empty(data.n_users, dtype=np.int64)
    ranks[order] = join_shards(gathered, shards)
    return ranks


def mean_over_ranks(value: float, device: torch.device) -> float:
    """The mean of ``value`` over all ranks (``value`` itself in one process).

    Examples
    --------
    >>> import torch
    >>> from recmodels.distributed import mean_over_ranks
    >>> mean_over_ranks(0.5, torch.device("cpu"))
    0.5
    """
    if world_size() == 1:
        return value
    tensor = torch.tensor(value, dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return float(tensor) / world_size()


class LossForward(nn.Module):
    """A module whose ``forward`` is the model's ``loss``, for DDP to wrap.

    DistributedDataParallel hooks ``forward``; the trainer calls ``loss``. The model stays
    an attribute, so its ``state_dict`` (and the checkpoints) keep their keys.

    Examples
    --------
    >>> import torch
    >>> from recmodels import SASRec, TrainableTable
    >>> from recmodels.distributed import LossForward
    >>> model = SASRec(TrainableTable(7, 16), max_len=5, inner_size=16)
    >>> items, targets = torch.tensor([[1, 2, 0, 0, 0]]), torch.tensor([[2, 3, 0, 0, 0]])
    >>> _ = torch.manual_seed(0); a = LossForward(model)(items, targets)
    >>> _ = torch.manual_seed(0); b = model.loss(items, targets)
    >>> bool(a == b)
    True
    """

    def __init__(self, model: SequentialRecommender) -> None:
        super().__init__()
        self.model = model

    def forward(self, items: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return self.model.loss(items, targets)


def training_loss(model: SequentialRecommender,
                  device: torch.device) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The function that computes a training loss: ``model.loss``, under DDP when distributed.

    Build it after the model is on ``device`` and holds its (loaded) weights: DDP copies
    rank 0's parameters to every rank when it is built.

    Examples
    --------
    >>> import torch
    >>> from recmodels import SASRec, TrainableTable
    >>> from recmodels.distributed import training_loss
    >>> model = SASRec(TrainableTable(7, 16), max_len=5, inner_size=16)
    >>> training_loss(model, torch.device("cpu")) == model.loss
    True
    """
    if world_size() == 1:
        return model.loss
    # Buffers (frozen item tables) never change in training: broadcasting them every step
    # would only copy a possibly large table.
    return nn.parallel.DistributedDataParallel(
        LossForward(model), device_ids=[device.index] if device.type == "cuda" else None,
        broadcast_buffers=False,
    )

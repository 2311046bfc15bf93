"""The cold-start protocol: items no training step has seen, ranked at evaluation.

A share of the catalogue is *new*. Their interactions train nothing: they are removed from
the training part of every sequence (as targets and as context), the reshapers are fitted
without their embedding rows, and the training loss never offers them as candidates
(:meth:`~recmodels.SequentialRecommender.exclude_from_training`). At evaluation they join
the catalogue with rows made from their text alone; :mod:`recmodels.warm_map` carries
them into a fine-tuned table. Everything is vectorised over users and items.

What is kept of an interaction with a new item, exactly:

* in the training part of a sequence (everything before the validation target): nothing;
  it is dropped from the sequence, which closes up, so it appears neither in training
  windows nor in the evaluation inputs built from that part;
* as a validation or test target: kept, ranked against the whole catalogue;
* as the validation target inside the test input (the test input ends with the
  validation item): kept.

A user left with no warm training interaction is dropped (the standard protocol needs one
too).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .batching import SPLIT_HOLDOUT
from .data import SequenceData
from .warm_map import DEFAULT_MAP_REG, WarmMap, fit_warm_map, map_new_rows

__all__ = ["DEFAULT_MAP_REG", "ColdStartSplit", "WarmMap", "choose_new_items",
           "cold_start_split", "first_seen_times", "fit_warm_map", "map_new_rows"]

CHOICES = ("latest", "random")
MAX_SHARE = 0.5


def first_seen_times(interactions: pd.DataFrame, data: SequenceData) -> np.ndarray:
    """Time of each model item's first interaction in ``interactions``.

    The whole log counts, interactions that k-core filtering removed included: the item
    entered the catalogue when it was first interacted with.

    Parameters
    ----------
    interactions : DataFrame
        The log ``data`` was built from, with ``item_id`` and ``timestamp`` (numeric or
        datetime).
    data : SequenceData

    Returns
    -------
    ndarray of shape (n_items,), float64
        Entry ``i`` belongs to model item ``i + 1``.

    Examples
    --------
    >>> import pandas as pd
    >>> from recmodels import build_sequences
    >>> from recmodels.cold_start import first_seen_times
    >>> log = pd.DataFrame({"user_id": list("aaabbb"), "item_id": list("xyzxzy"),
    ...                     "timestamp": [1, 5, 6, 2, 3, 4]})
    >>> first_seen_times(log, build_sequences(log, k_core=1)).tolist()
    [1.0, 4.0, 3.0]
    >>> first_seen_times(log.rename(columns={"timestamp": "position"}), None)
    Traceback (most recent call last):
    ...
    ValueError: choosing the latest items needs a 'timestamp' column; ...
    """
    if "timestamp" not in interactions.columns:
        raise ValueError(
            "choosing the latest items needs a 'timestamp' column; this log has "
            f"{list(interactions.columns)}. A 'position' column orders each user's own "
            "interactions only, with no clock shared between users, so it can not tell which "
            "items appeared last: choose the new items at random instead, or add timestamps.")
    times = interactions["timestamp"]
    if pd.api.types.is_datetime64_any_dtype(times):
        values = times.to_numpy().astype("datetime64[ns]").astype(np.int64).astype(np.float64)
    else:
        values = pd.to_numeric(times, errors="coerce").to_numpy(dtype=np.float64)
    first = pd.Series(values).groupby(interactions["item_id"].astype(str).to_numpy()).min()
    found = first.reindex(np.asarray(data.item_ids).astype(str)).to_numpy()
    missing = np.flatnonzero(np.isnan(found))
    if missing.size:
        example = data.item_ids[missing[0]]
        raise ValueError(f"{missing.size} item(s) of the data, e.g. {example!r}, have no "
                         "timestamped interaction in this log; pass the log the data was "
                         "built from.")
    return found


def choose_new_items(data: SequenceData, share: float = 0.1, choice: str = "latest", *,
                     first_seen: np.ndarray | None = None, seed: int = 0) -> np.ndarray:
    """The new items of the cold-start protocol, as sorted model indices.

    Parameters
    ----------
    data : SequenceData
    share : float, default=0.1
        Share of the items that is new, in ``(0, 0.5]``; ``round(share * n_items)`` items.
    choice : {"latest", "random"}, default="latest"
        ``"latest"``: the items whose first interaction is latest (``first_seen``); among
        equal times, the later model index (item id in sorted order) counts as later.
        ``"random"``: a uniform draw without replacement from ``seed``.
    first_seen : ndarray of shape (n_items,), optional
        Required by ``"latest"``: :func:`first_seen_times`.
    seed : int, default=0
        Seed of the ``"random"`` draw.

    Returns
    -------
    ndarray of int64
        Model item indices (``1..n_items``), sorted.

    Examples
    --------
    >>> import numpy as np
    >>> from recmodels import build_sequences
    >>> from recmodels.datasets import make_interactions
    >>> from recmodels.cold_start import choose_new_items
    >>> data = build_sequences(make_interactions(), k_core=1)
    >>> first_seen = np.array([0, 9, 1, 8, 2, 3, 4.0])
    >>> choose_new_items(data, 0.3, first_seen=first_seen).tolist()
    [2, 4]
    >>> choose_new_items(data, 0.3, "random").shape
    (2,)
    >>> choose_new_items(data, 0.6, "random")
    Traceback (most recent call last):
    ...
    ValueError: share=0.6 must be in (0, 0.5]: ...
    """
    share = float(share)
    if not 0.0 < share <= MAX_SHARE:
        raise ValueError(f"share={share:g} must be in (0, {MAX_SHARE:g}]: the share of items "
                         "that is new; most items must stay warm for the reshapers and the "
                         "model to learn from. Try 0.1.")
    if choice not in CHOICES:
        raise ValueError(f"choice={choice!r} must be one of {list(CHOICES)}.")
    n_new = int(round(share * data.n_items))
    if n_new < 1:
        raise ValueError(f"share={share:g} of {data.n_items} items selects no item; raise "
                         f"share to at least {1 / data.n_items:.3g}.")
    if choice == "random":
        picked = np.random.default_rng(seed).choice(data.n_items, n_new, replace=False)
    else:
        if first_seen is None:
            raise ValueError("choice='latest' needs first_seen (first_seen_times(interactions, "
                             "data)); pass it, or use choice='random'.")
        first_seen = np.asarray(first_seen, dtype=np.float64)
        if first_seen.shape != (data.n_items,):
            raise ValueError(f"first_seen has shape {first_seen.shape}; it needs one time per "
                             f"item, shape ({data.n_items},).")
        picked = np.argsort(first_seen, kind="stable")[-n_new:]
    return np.sort(picked).astype(np.int64) + 1


@dataclass(frozen=True)
class ColdStartSplit:
    """The sequences of the cold-start protocol and which items are new.

    Attributes
    ----------
    data : SequenceData
        Every kept user's sequence with the new items removed from its training part;
        validation and test targets as in the original data. Train and evaluate on it.
    new_items : ndarray of int64
        Sorted model indices of the new items (the same catalogue as the original data).
    removed_interactions : int
        Interactions with new items taken out of training parts.
    dropped_users : int
        Users left without a warm training interaction, and dropped.

    Examples
    --------
    >>> import numpy as np
    >>> from recmodels import build_sequences
    >>> from recmodels.datasets import make_interactions
    >>> from recmodels.cold_start import cold_start_split
    >>> data = build_sequences(make_interactions(), k_core=1)
    >>> split = cold_start_split(data, [2, 4])
    >>> train_len = split.data.lengths - 2
    >>> training_parts = np.split(split.data.items, split.data.offsets[1:-1])
    >>> any(np.isin(part[:n], [2, 4]).any() for part, n in zip(training_parts, train_len))
    False
    >>> split.warm_rows.tolist()
    [True, False, True, False, True, True, True]
    """

    data: SequenceData
    new_items: np.ndarray
    removed_interactions: int
    dropped_users: int

    @property
    def warm_rows(self) -> np.ndarray:
        """Boolean mask over embedding-matrix rows in model order: True for warm items."""
        warm = np.ones(self.data.n_items, dtype=bool)
        warm[self.new_items - 1] = False
        return warm

    def target_is_new(self, split: str = "test") -> np.ndarray:
        """Boolean mask over the users of :attr:`data`: is their ``split`` target new?"""
        if split not in SPLIT_HOLDOUT:
            raise ValueError(f"split={split!r} must be one of {sorted(SPLIT_HOLDOUT)}.")
        targets = self.data.items[self.data.offsets[1:] - SPLIT_HOLDOUT[split]]
        return np.isin(targets, self.new_items)

    def __str__(self) -> str:
        data = self.data
        return (f"cold start: {self.new_items.size}/{data.n_items} items are new; "
                f"{self.removed_interactions} training interactions with them removed, "
                f"{self.dropped_users} user(s) without a warm training interaction dropped; "
                f"a new item is the validation target of {int(self.target_is_new('valid').sum())}"
                f" and the test target of {int(self.target_is_new('test').sum())} of "
                f"{data.n_users} users")


def cold_start_split(data: SequenceData, new_items) -> ColdStartSplit:
    """Remove the new items from every training part; keep held-out targets as they are.

    Parameters
    ----------
    data : SequenceData
        Leave-one-out sequences of the standard protocol.
    new_items : array-like of int
        Model item indices (``1..n_items``), e.g. from :func:`choose_new_items`.

    Returns
    -------
    ColdStartSplit
        See the module's description for exactly what is kept.

    Examples
    --------
    >>> import pandas as pd
    >>> from recmodels import build_sequences
    >>> from recmodels.cold_start import cold_start_split
    >>> log = pd.DataFrame({"user_id": ["a"] * 5, "item_id": list("vwxyz"),
    ...                     "position": range(5)})
    >>> data = build_sequences(log, k_core=1)      # items v..z are 1..5
    >>> split = cold_start_split(data, [2, 4])    # w and y are new
    >>> split.data.items.tolist()   # w left the training part, y stays the validation target
    [1, 3, 4, 5]
    >>> split.removed_interactions, split.target_is_new("valid").tolist()
    (1, [True])
    """
    new = np.unique(np.asarray(new_items, dtype=np.int64).ravel())
    if new.size == 0 or new[0] < 1 or new[-1] > data.n_items or new.size >= data.n_items:
        raise ValueError(f"new_items must be 1 to {data.n_items - 1} distinct model item "
                         f"indices in 1..{data.n_items}; got {new.size} from "
                         f"{new[:1].tolist()} to {new[-1:].tolist()}.")
    is_new = np.zeros(data.n_items + 1, dtype=bool)
    is_new[new] = True
    owner = np.repeat(np.arange(data.n_users), data.lengths)
    position = np.arange(data.items.size) - data.offsets[:-1][owner]
    in_training = position < (data.lengths - SPLIT_HOLDOUT["valid"])[owner]
    dropped = in_training & is_new[data.items]
    warm_training = np.bincount(owner, weights=in_training & ~dropped, minlength=data.n_users)
    kept_users = warm_training > 0
    keep = ~dropped & kept_users[owner]
    counts = np.bincount(owner[keep], minlength=data.n_users)[kept_users]
    view = SequenceData(
        user_ids=data.user_ids[kept_users], item_ids=data.item_ids,
        embedding_rows=data.embedding_rows,
        offsets=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        items=data.items[keep], report=data.report)
    return ColdStartSplit(view, new, int(dropped.sum()), int((~kept_users).sum()))

"""Vectorised construction of training windows and evaluation batches.

Causal training (SASRec, GRU4Rec) follows the prefix protocol exactly: target ``j`` of a
training sequence is predicted from ``seq[max(0, j - L):j]``. The first window of each user
serves every target up to position ``L`` in one causal pass; each later target gets its own
window whose last position carries the only loss. BERT4Rec trains on every training
prefix (:func:`prefix_windows`), as RecBole does. No loop runs over users.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .data import SequenceData

SPLIT_HOLDOUT = {"valid": 2, "test": 1}


@dataclass(frozen=True)
class EvalBatch:
    """Inputs and targets of one evaluation split, one row per user."""

    inputs: np.ndarray  # (n_users, context) left-aligned, 0-padded
    lengths: np.ndarray  # (n_users,)
    targets: np.ndarray  # (n_users,)
    # (n_users, longest history) every item before the target, 0-padded; None unless asked
    # for (only masking seen items reads it, and it is the largest array here).
    history: np.ndarray | None = None


def _gather(items: np.ndarray, index: np.ndarray, valid: np.ndarray) -> np.ndarray:
    return np.where(valid, items[np.where(valid, index, 0)], 0)


def causal_windows(data: SequenceData, max_len: int,
                   stride: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Input and target windows for next-item training over every training position.

    Parameters
    ----------
    data : SequenceData
    max_len : int
        Window length ``L``.
    stride : int, default=1
        Targets past position ``L`` trained per extra window. 1 gives each of them exactly
        the prefix protocol's context (``L`` items); ``s > 1`` trains ``s`` targets per window
        with at least ``L - s + 1`` items of context, ``s`` times less encoder work on long
        sequences.

    Returns
    -------
    inputs, targets : ndarray of shape (n_windows, max_len)
        ``targets[w, t]`` is the item that follows ``inputs[w, :t + 1]``; 0 means no loss.
    """
    if not 1 <= stride <= max_len:
        raise ValueError(f"stride={stride} must be in [1, max_len={max_len}].")
    starts = data.offsets[:-1]
    train_len = data.lengths - SPLIT_HOLDOUT["valid"]
    first_targets = np.clip(np.minimum(train_len - 1, max_len), 0, None)
    column = np.arange(max_len)
    valid = column < first_targets[:, None]
    index = starts[:, None] + column
    inputs = _gather(data.items, index, valid)
    targets = _gather(data.items, index + 1, valid)
    keep = first_targets > 0
    inputs, targets = inputs[keep], targets[keep]

    extra = np.clip(train_len - 1 - max_len, 0, None)
    n_windows = -(-extra // stride)
    if n_windows.sum():
        owner = np.repeat(np.arange(data.n_users), n_windows)
        rank = np.arange(owner.size) - np.repeat(np.cumsum(n_windows) - n_windows, n_windows)
        end = np.minimum(max_len + (rank + 1) * stride, train_len[owner] - 1)
        count = end - (max_len + rank * stride)
        window_start = starts[owner] + end - max_len
        extra_inputs = data.items[window_start[:, None] + column]
        trained = column >= (max_len - count)[:, None]
        extra_targets = _gather(data.items, window_start[:, None] + column + 1, trained)
        inputs = np.concatenate([inputs, extra_inputs])
        targets = np.concatenate([targets, extra_targets])
    return inputs, targets


def prefix_windows(data: SequenceData, max_len: int) -> np.ndarray:
    """Every training prefix, as RecBole's sequential data augmentation builds them.

    Each training target (position ``j >= 1`` of a user's training part) gives one
    sequence: the items before it, ``seq[max(0, j - max_len):j]``, left-aligned. RecBole
    trains every sequential model on these; BERT4Rec draws its cloze masks on each. There
    are as many as there are next-item training targets.

    Parameters
    ----------
    data : SequenceData
    max_len : int
        Longest sequence kept (the most recent items).

    Returns
    -------
    ndarray of shape (n_training_targets, max_len)
        Left-aligned, 0-padded; users in order, each user's prefixes by growing length.
    """
    owner, begin, end = _prefix_bounds(data, max_len)
    column = np.arange(max_len)
    return _gather(data.items, (data.offsets[owner] + begin)[:, None] + column,
                   column < (end - begin)[:, None])


def _prefix_bounds(data: SequenceData, max_len: int):
    """Per training target: its user, and the start and end of its prefix in the user's
    sequence (the target is the item at ``end``)."""
    train_len = data.lengths - SPLIT_HOLDOUT["valid"]
    counts = np.clip(train_len - 1, 0, None)
    owner = np.repeat(np.arange(data.n_users), counts)
    end = np.arange(owner.size) - np.repeat(np.cumsum(counts) - counts, counts) + 1
    return owner, np.maximum(end - max_len, 0), end


def causal_prefixes(data: SequenceData, max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Every training prefix with its one target, as RecBole trains SASRec and GRU4Rec.

    The same targets as :func:`causal_windows` with ``stride=1``, each in a row of its own:
    the encoder then runs once per target instead of once per window, and each target
    draws its own dropout masks (in a window, all its targets share one).

    Returns
    -------
    inputs, targets : ndarray of shape (n_training_targets, max_len)
        ``inputs`` as :func:`prefix_windows`; ``targets`` is 0 except at each row's last
        input position, which holds the item that follows the prefix.
    """
    inputs = prefix_windows(data, max_len)
    owner, begin, end = _prefix_bounds(data, max_len)
    targets = np.zeros_like(inputs)
    targets[np.arange(owner.size), end - begin - 1] = data.items[data.offsets[owner] + end]
    return inputs, targets


def cloze_windows(data: SequenceData, max_len: int) -> np.ndarray:
    """Training sequences cut from their end into windows of ``max_len``, left-aligned."""
    starts = data.offsets[:-1]
    train_len = data.lengths - SPLIT_HOLDOUT["valid"]
    n_windows = -(-train_len // max_len)
    owner = np.repeat(np.arange(data.n_users), n_windows)
    rank_from_end = np.arange(owner.size) - np.repeat(np.cumsum(n_windows) - n_windows, n_windows)
    end = starts[owner] + train_len[owner] - rank_from_end * max_len
    begin = np.maximum(end - max_len, starts[owner])
    column = np.arange(max_len)
    return _gather(data.items, begin[:, None] + column, column < (end - begin)[:, None])


def eval_batch(data: SequenceData, split: str, context: int, *,
               with_history: bool = False) -> EvalBatch:
    """The last ``context`` items before each user's ``split`` target, and the target.

    ``with_history`` also gathers every earlier item of each user (``EvalBatch.history``),
    which masking seen items needs.
    """
    if split not in SPLIT_HOLDOUT:
        raise ValueError(f"split={split!r} must be one of {sorted(SPLIT_HOLDOUT)}.")
    starts = data.offsets[:-1]
    history_len = data.lengths - SPLIT_HOLDOUT[split]
    targets = data.items[starts + history_len]
    lengths = np.minimum(history_len, context)
    column = np.arange(context)
    inputs = _gather(
        data.items, (starts + history_len - lengths)[:, None] + column, column < lengths[:, None]
    )
    if not with_history:
        return EvalBatch(inputs, lengths, targets)
    longest = np.arange(int(history_len.max()))
    history = _gather(data.items, starts[:, None] + longest, longest < history_len[:, None])
    return EvalBatch(inputs, lengths, targets, history)

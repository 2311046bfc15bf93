"""Checks of a :class:`~recmodels.trainer.Trainer`'s and of evaluation's arguments and device,
before any work."""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Integral, Real

import torch


#: The largest seed ``np.random.seed`` takes (``Trainer.fit`` seeds NumPy and torch).
MAX_SEED = 2**32 - 1


def is_seed(value) -> bool:
    """Whether ``value`` is an integer seed NumPy and torch both take: 0 to :data:`MAX_SEED`."""
    return (not isinstance(value, bool) and isinstance(value, Integral)
            and 0 <= value <= MAX_SEED)


def check_trainer_arguments(model, data, *, lr: float, batch_size: int, max_epochs: int,
                            patience: int, ks: Sequence[int], weight_decay: float,
                            eval_batch_size: int, window_stride: int, seed: int = 0) -> None:
    """Raise ``ValueError`` naming the argument, the problem and the fix.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> model, data = SimpleNamespace(n_items=5), SimpleNamespace(n_items=5)
    >>> check_trainer_arguments(model, data, lr=0.0, batch_size=256, max_epochs=1,
    ...                         patience=1, ks=(10,), weight_decay=0.0, eval_batch_size=1,
    ...                         window_stride=1)
    Traceback (most recent call last):
    ...
    ValueError: lr=0.0 must be a finite number above 0, e.g. lr=1e-3.
    """
    check_same_items(model, data)
    if not isinstance(lr, Real) or not math.isfinite(lr) or lr <= 0:
        raise ValueError(f"lr={lr!r} must be a finite number above 0, e.g. lr=1e-3.")
    if not isinstance(weight_decay, Real) or not math.isfinite(weight_decay) or weight_decay < 0:
        raise ValueError(f"weight_decay={weight_decay!r} must be a finite number of at least 0.")
    check_counts(batch_size=batch_size, max_epochs=max_epochs, patience=patience,
                 eval_batch_size=eval_batch_size, window_stride=window_stride)
    if not is_seed(seed):
        raise ValueError(f"seed={seed!r} must be an integer from 0 to 2**32 - 1.")
    check_ks(ks)


def check_same_items(model, data) -> None:
    """Refuse a model whose item table has more or fewer rows than ``data`` has items."""
    if model.n_items != data.n_items:
        raise ValueError(
            f"the model's item table has {model.n_items} items but the data has "
            f"{data.n_items}: every item must have one row, no more, or the ranking would "
            f"leave items out or rank items that do not exist; build the table with "
            f"data.n_items rows (e.g. TrainableTable(data.n_items, hidden_size)) from "
            f"data.align(matrix).")


def check_counts(**counts) -> None:
    """Refuse any of ``counts`` (name=value) that is not a positive integer."""
    for name, value in counts.items():
        if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
            raise ValueError(f"{name}={value!r} must be a positive integer.")


def check_ks(ks: Sequence[int]) -> None:
    """Refuse cut-offs that are not positive integers, or none."""
    if not ks or any(isinstance(k, bool) or not isinstance(k, Integral) or k < 1 for k in ks):
        raise ValueError(f"ks={tuple(ks)!r} must be positive integers, e.g. ks=(10, 20).")


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` picks CUDA when present, else the CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def usable_device(device: str | torch.device) -> torch.device:
    """:func:`resolve_device`, refusing a CUDA device this torch can not reach.

    Examples
    --------
    >>> usable_device("cpu")
    device(type='cpu')
    """
    resolved = resolve_device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={str(device)!r}: this torch ({torch.__version__}) sees no "
                         "CUDA device; use 'cpu' or 'auto', or install a CUDA build of torch "
                         "(docs: install).")
    return resolved

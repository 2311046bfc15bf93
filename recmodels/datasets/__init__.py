"""Data carried with the package: MovieLens latest-small, the built-in example."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["example_folder", "make_interactions"]


def example_folder() -> Path:
    """Folder of the built-in example, MovieLens latest-small, in the data-folder format.

    It holds ``interactions.csv.gz`` (``user_id,item_id,timestamp``), ``items.csv.gz``
    (``item_id,title,genres``) and GroupLens' licence text; read it with
    :func:`~recmodels.load_folder`.

    Examples
    --------
    >>> from recmodels import load_folder
    >>> from recmodels.datasets import example_folder
    >>> interactions, items = load_folder(example_folder())
    >>> interactions.columns.tolist()[:2], len(items)
    (['user_id', 'item_id'], 8570)
    """
    return Path(__file__).resolve().parent / "ml-latest-small"


def make_interactions(n_users: int = 8, n_items: int = 7, length: int = 6) -> pd.DataFrame:
    """A tiny deterministic interaction log for examples and tests.

    User ``u`` walks through the items in order starting at item ``u % n_items``:
    ``u, u + 1, ..., u + length - 1`` (modulo ``n_items``), so the next item is always
    predictable from the last one.

    Parameters
    ----------
    n_users : int, default=8
    n_items : int, default=7
    length : int, default=6
        Interactions per user.

    Returns
    -------
    DataFrame with columns ``user_id``, ``item_id`` and ``position`` (integers).

    Examples
    --------
    >>> from recmodels.datasets import make_interactions
    >>> log = make_interactions(n_users=2, n_items=3, length=4)
    >>> log.groupby("user_id")["item_id"].apply(list).to_dict()
    {0: [0, 1, 2, 0], 1: [1, 2, 0, 1]}
    """
    users = np.repeat(np.arange(n_users), length)
    positions = np.tile(np.arange(length), n_users)
    return pd.DataFrame({"user_id": users, "item_id": (users + positions) % n_items,
                         "position": positions})

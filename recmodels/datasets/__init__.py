"""Data carried with the package: MovieLens latest-small, the built-in example."""

from __future__ import annotations

from pathlib import Path

__all__ = ["example_folder"]


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

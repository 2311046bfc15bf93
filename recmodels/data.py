"""Interaction logs to chronological item sequences: checks, k-core filtering, splits.

Item index convention: model index ``i + 1`` is ``item_ids[i]`` and embedding row
``embedding_rows[i]`` of the matrix the user passed; index 0 is padding.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

ORDER_COLUMNS = ("timestamp", "position")


@dataclass(frozen=True)
class FilterReport:
    """What k-core filtering removed, so that nothing is dropped silently.

    Examples
    --------
    >>> import pandas as pd
    >>> from recmodels import build_sequences
    >>> log = pd.DataFrame({"user_id": [0, 0, 0, 1, 1, 1, 2],
    ...                     "item_id": [1, 2, 3, 1, 2, 3, 9],
    ...                     "position": [0, 1, 2, 0, 1, 2, 0]})
    >>> print(build_sequences(log, k_core=2).report)
    2-core filtering (... iterations) kept 6/7 interactions, 2/3 users, 3/4 items
    """

    k_core: int
    iterations: int
    interactions_before: int
    interactions_after: int
    users_before: int
    users_after: int
    items_before: int
    items_after: int
    max_history: int | None = None

    def __str__(self) -> str:
        latest = ("" if self.max_history is None
                  else f"each user's latest {self.max_history} interactions, then ")
        return (
            f"{latest}{self.k_core}-core filtering ({self.iterations} iterations) kept "
            f"{self.interactions_after}/{self.interactions_before} interactions, "
            f"{self.users_after}/{self.users_before} users, "
            f"{self.items_after}/{self.items_before} items"
        )


@dataclass(frozen=True)
class SequenceData:
    """Chronological item sequences of every user, with a leave-one-out split.

    Attributes
    ----------
    user_ids : ndarray of shape (n_users,)
        Original user ids.
    item_ids : ndarray of shape (n_items,)
        Original item ids; model index ``i + 1`` is ``item_ids[i]``.
    embedding_rows : ndarray of shape (n_items,)
        Row of the user's embedding matrix for each item (``arange`` when no catalogue was
        given).
    offsets : ndarray of shape (n_users + 1,)
        User ``u``'s sequence is ``items[offsets[u]:offsets[u + 1]]``.
    items : ndarray of shape (n_interactions,)
        Model item indices (1-based), chronological within each user.
    report : FilterReport
        What filtering removed.

    Examples
    --------
    >>> from recmodels import build_sequences
    >>> from recmodels.datasets import make_interactions
    >>> log = make_interactions()
    >>> data = build_sequences(log, k_core=1)
    >>> data.n_users, data.n_items, data.lengths[:3].tolist()
    (8, 7, [6, 6, 6])
    >>> data.align(np.arange(7.0)[:, None]).ravel().tolist() == data.embedding_rows.tolist()
    True
    """

    user_ids: np.ndarray
    item_ids: np.ndarray
    embedding_rows: np.ndarray
    offsets: np.ndarray
    items: np.ndarray
    report: FilterReport = field(repr=False)

    @property
    def n_users(self) -> int:
        return self.user_ids.size

    @property
    def n_items(self) -> int:
        return self.item_ids.size

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def align(self, matrix: np.ndarray) -> np.ndarray:
        """Rows of ``matrix`` (one per catalogue item) in model order, for the item table.

        Examples
        --------
        >>> import numpy as np
        >>> from recmodels import build_sequences
        >>> from recmodels.datasets import make_interactions
        >>> data = build_sequences(make_interactions(), k_core=1)
        >>> data.align(np.ones((data.n_items, 4), dtype=np.float32)).shape
        (7, 4)
        >>> data.align(np.ones(data.n_items))
        Traceback (most recent call last):
        ...
        ValueError: The item matrix has shape (7,); pass a 2-D matrix, one row per catalogue item.
        """
        matrix = np.asarray(matrix)
        if matrix.ndim != 2:
            raise ValueError(f"The item matrix has shape {matrix.shape}; pass a 2-D matrix, one "
                             "row per catalogue item.")
        needed = int(self.embedding_rows.max()) + 1
        if matrix.shape[0] < needed:
            raise ValueError(
                f"The item matrix has shape {matrix.shape}, but the data set refers to "
                f"embedding row {needed - 1}: some items lack an embedding row. Pass one "
                "row per catalogue item, in the order of build_sequences(catalogue=...)."
            )
        aligned = matrix[self.embedding_rows]
        if np.issubdtype(aligned.dtype, np.inexact):
            bad = ~np.isfinite(aligned).all(axis=1)
            if bad.any():
                raise ValueError(
                    f"The item matrix has {int(bad.sum())} interacted item(s) with NaN or "
                    f"infinite values, e.g. embedding row {int(self.embedding_rows[bad][0])}; "
                    "re-encode those items before building a table from it.")
        return aligned

    def train_sequences(self) -> list[np.ndarray]:
        """Training part of each sequence as row indices of :meth:`align`'s output.

        Validation and test targets are left out, so a co-occurrence graph built from these
        never sees held-out interactions.
        """
        ends = self.offsets[1:] - 2
        rows = self.items - 1
        return np.split(rows, np.stack([self.offsets[:-1], ends], axis=1).ravel())[1::2]


def _first_bad(frame: pd.DataFrame, bad: np.ndarray) -> str:
    """``"row 12 (user 'u3')"`` for the first flagged row, with its index label if different."""
    position = int(np.flatnonzero(bad)[0])
    label = frame.index[position]
    label = label.item() if isinstance(label, np.generic) else label
    notes = [] if label == position else [f"index label {label!r}"]
    user = frame["user_id"].iloc[position] if "user_id" in frame.columns else None
    if not pd.isna(user):
        notes.append(f"user {str(user)!r}")
    return f"row {position}" + (f" ({', '.join(notes)})" if notes else "")


def _check_log(frame: pd.DataFrame, order: str, source: str) -> pd.Series:
    """Raise on missing ids or missing / non-numeric order values; return the order column.

    ``source`` starts each message: a file path, or a description of the DataFrame. The
    returned order column is numeric (or datetime), so that ``"10"`` sorts after ``"9"``.
    """
    for column in ("user_id", "item_id"):
        bad = frame[column].isna().to_numpy()
        if bad.any():
            raise ValueError(
                f"{source}: column {column!r} has {int(bad.sum())} missing value(s), first at "
                f"{_first_bad(frame, bad)}; fill or drop those rows."
            )
    values = frame[order]
    if not (pd.api.types.is_numeric_dtype(values) or pd.api.types.is_datetime64_any_dtype(values)):
        values = pd.to_numeric(values, errors="coerce")
    bad = values.isna().to_numpy()
    if bad.any():
        raise ValueError(
            f"{source}: column {order!r} has {int(bad.sum())} missing or non-numeric value(s), "
            f"first at {_first_bad(frame, bad)}; fill or drop those rows (each user's "
            f"interactions are ordered by {order!r})."
        )
    return values


def _kcore(frame: pd.DataFrame, k: int) -> tuple[pd.DataFrame, int]:
    iterations = 0
    while True:
        iterations += 1
        user_counts = frame["user_id"].map(frame["user_id"].value_counts())
        item_counts = frame["item_id"].map(frame["item_id"].value_counts())
        keep = (user_counts >= k) & (item_counts >= k)
        if keep.all():
            return frame, iterations
        frame = frame[keep]


def build_sequences(
    interactions: pd.DataFrame,
    *,
    catalogue: pd.Series | np.ndarray | None = None,
    k_core: int = 5,
    min_length: int = 3,
    max_history: int | None = None,
) -> SequenceData:
    """Filter, order and index an interaction log.

    Parameters
    ----------
    interactions : DataFrame
        Columns ``user_id``, ``item_id`` and ``timestamp`` or ``position`` (``timestamp``
        when both are present), all without missing values; the order column numeric or
        datetime.
    catalogue : array-like of item ids, optional
        Item id of each row of the embedding matrix. Every interacted item must be in it.
    k_core : int, default=5
        Iterative k-core: keep users and items with at least ``k_core`` interactions.
    min_length : int, default=3
        Users need a training item, a validation and a test target.
    max_history : int, optional
        Keep only each user's latest ``max_history`` interactions (by the order column),
        before the k-core filter; the report counts what this removed. None keeps all.

    Returns
    -------
    SequenceData

    Examples
    --------
    >>> from recmodels import build_sequences
    >>> from recmodels.datasets import make_interactions
    >>> log = make_interactions()
    >>> data = build_sequences(log, catalogue=[str(i) for i in range(9)], k_core=1)
    >>> data.n_items, data.item_ids.tolist() == [str(i) for i in range(7)]
    (7, True)
    >>> build_sequences(log, catalogue=["0", "1"], k_core=1)
    Traceback (most recent call last):
    ...
    ValueError: ...
    """
    missing = [c for c in ("user_id", "item_id") if c not in interactions.columns]
    order = next((c for c in ORDER_COLUMNS if c in interactions.columns), None)
    if missing or order is None:
        raise ValueError(
            "interactions need columns user_id, item_id and timestamp or position; "
            f"got {list(interactions.columns)}."
        )
    for name, value, least, why in (
            ("k_core", k_core, 1, "1 keeps every user and item"),
            ("min_length", min_length, 3, "each user needs a training, validation and test item")):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
            raise ValueError(f"{name}={value!r} must be an integer of at least {least} ({why}).")
    frame = interactions[["user_id", "item_id", order]].copy()
    frame[order] = _check_log(frame, order, "interactions")
    frame["item_id"] = frame["item_id"].astype(str)
    frame["user_id"] = frame["user_id"].astype(str)

    if catalogue is not None:
        catalogue = pd.Index(np.asarray(catalogue).astype(str))
        if catalogue.has_duplicates:
            dup = catalogue[catalogue.duplicated()].unique()
            raise ValueError(
                f"the item catalogue has {dup.size} duplicate id(s), e.g. {list(dup[:3])}; "
                "each item needs exactly one embedding row."
            )
        unknown = ~frame["item_id"].isin(catalogue)
        if unknown.any():
            examples = frame.loc[unknown, "item_id"].unique()[:3].tolist()
            raise ValueError(
                f"{int(unknown.sum())} interactions name items with no embedding row, e.g. "
                f"{examples}; encode those items or drop their interactions first."
            )

    before = (len(frame), frame["user_id"].nunique(), frame["item_id"].nunique())
    if max_history is not None:
        if isinstance(max_history, bool) or not isinstance(max_history, (int, np.integer)) \
                or max_history < min_length:
            raise ValueError(f"max_history={max_history!r} must be an integer of at least "
                             f"min_length={min_length} (a training, validation and test item).")
        frame = frame.sort_values(["user_id", order], kind="stable")
        frame = frame.groupby("user_id", sort=False).tail(int(max_history))
    frame, iterations = _kcore(frame, k_core)
    lengths = frame.groupby("user_id").size()
    frame = frame[frame["user_id"].map(lengths) >= min_length]
    if frame.empty:
        raise ValueError(
            f"no interactions are left after {k_core}-core filtering (from {before[0]}); "
            "lower k_core or check the user and item columns."
        )
    report = FilterReport(
        k_core, iterations, before[0], len(frame), before[1], frame["user_id"].nunique(),
        before[2], frame["item_id"].nunique(), max_history,
    )
    if report.interactions_after < report.interactions_before:
        logger.warning("%s", report)

    frame = frame.sort_values(["user_id", order], kind="stable")
    user_codes, user_ids = pd.factorize(frame["user_id"], sort=True)
    item_codes, item_ids = pd.factorize(frame["item_id"], sort=True)
    if catalogue is None:
        embedding_rows = np.arange(item_ids.size)
    else:
        embedding_rows = catalogue.get_indexer(item_ids)
    counts = np.bincount(user_codes, minlength=user_ids.size)
    return SequenceData(
        user_ids=np.asarray(user_ids),
        item_ids=np.asarray(item_ids),
        embedding_rows=np.asarray(embedding_rows, dtype=np.int64),
        offsets=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        items=(item_codes + 1).astype(np.int64),
        report=report,
    )

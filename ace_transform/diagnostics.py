"""Anisotropy and semantic-preservation diagnostics for embedding matrices.

All functions take plain arrays of shape ``(n_items, n_features)``. Spectra come from the
``d x d`` covariance, so they cost one pass over the matrix.
"""

from __future__ import annotations

import numpy as np
from sklearn.utils import check_array, check_random_state

from ._spectral import MomentStatistics
from ._validation import assert_all_finite_rows

__all__ = [
    "anisotropy_report",
    "effective_rank",
    "mean_pairwise_cosine",
    "neighbor_overlap",
    "normalized_spectrum",
    "top_direction_share",
]


def _as_matrix(X, name="X"):
    X = check_array(X, dtype=(np.float64, np.float32), ensure_all_finite=False,
                    ensure_min_samples=2, input_name=name)
    assert_all_finite_rows(X, name)
    return X


def normalized_spectrum(X, *, center=True):
    """Covariance eigenvalues divided by their sum, in descending order.

    Parameters
    ----------
    X : array-like of shape (n_items, n_features)
        Embedding matrix.
    center : bool, default=True
        Use the covariance (True) or the uncentred second moment (False).

    Returns
    -------
    spectrum : ndarray of shape (n_features,)
        Non-negative, sums to 1 (all zeros for a constant matrix).

    Examples
    --------
    >>> import numpy as np
    >>> from ace_transform import normalized_spectrum
    >>> X = np.random.default_rng(0).standard_normal((1000, 3)) * [3.0, 1.0, 1.0]
    >>> normalized_spectrum(X).round(1)
    array([0.8, 0.1, 0.1])
    """
    X = _as_matrix(X)
    stats = MomentStatistics.from_matrix(X)
    eigenvalues = np.linalg.eigvalsh(stats.scatter(center))[::-1].clip(0.0)
    total = eigenvalues.sum()
    return eigenvalues / total if total > 0 else eigenvalues


def effective_rank(X, *, center=True):
    """Exponential of the entropy of the normalised spectrum (Roy and Vetterli, 2007).

    Equals ``n_features`` for perfectly isotropic data and 1 when one direction holds all
    the variance.

    Parameters
    ----------
    X : array-like of shape (n_items, n_features)
        Embedding matrix.
    center : bool, default=True
        Centre before computing the spectrum.

    Returns
    -------
    rank : float

    Examples
    --------
    >>> import numpy as np
    >>> from ace_transform import effective_rank
    >>> X = np.random.default_rng(0).standard_normal((5000, 4))
    >>> round(effective_rank(X), 1)
    4.0
    """
    return _entropy_rank(normalized_spectrum(X, center=center))


def _entropy_rank(spectrum: np.ndarray) -> float:
    positive = spectrum[spectrum > 0]
    return float(np.exp(-(positive * np.log(positive)).sum()))


def top_direction_share(X, *, center=True):
    """Share of the total variance along the first principal direction.

    Parameters
    ----------
    X : array-like of shape (n_items, n_features)
        Embedding matrix.
    center : bool, default=True
        Centre before computing the spectrum.

    Returns
    -------
    share : float in [0, 1]

    Examples
    --------
    >>> import numpy as np
    >>> from ace_transform import top_direction_share
    >>> X = np.random.default_rng(0).standard_normal((2000, 2)) * [2.0, 1.0]
    >>> round(top_direction_share(X), 1)
    0.8
    """
    return float(normalized_spectrum(X, center=center)[0])


def mean_pairwise_cosine(X):
    """Mean cosine similarity over all pairs of distinct rows.

    Computed exactly in ``O(n_items * n_features)`` from the sum of the normalised rows,
    ``(||sum_i x_i/||x_i|| ||^2 - n) / (n (n - 1))``, so no sampling is needed.
    Values near 1 mean a strongly anisotropic (cone-shaped) embedding.

    Parameters
    ----------
    X : array-like of shape (n_items, n_features)
        Embedding matrix without all-zero rows.

    Returns
    -------
    cosine : float in [-1, 1]

    Examples
    --------
    >>> import numpy as np
    >>> from ace_transform import mean_pairwise_cosine
    >>> X = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    >>> round(mean_pairwise_cosine(X), 4)
    0.4714
    """
    X = _as_matrix(X)
    norms = np.linalg.norm(X, axis=1)
    if np.any(norms == 0):
        raise ValueError(
            f"X has {int((norms == 0).sum())} all-zero row(s), first at row "
            f"{int(np.flatnonzero(norms == 0)[0])}; cosine similarity is undefined for them. "
            "Drop those rows first."
        )
    n = X.shape[0]
    total = (X / norms[:, None]).sum(axis=0, dtype=np.float64)
    return float((total @ total - n) / (n * (n - 1)))


def _top_neighbors(X, queries, n_neighbors, chunk_rows=1024):
    unit = X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-30)
    found = np.empty((queries.size, n_neighbors), dtype=np.int64)
    for start in range(0, queries.size, chunk_rows):
        rows = queries[start : start + chunk_rows]
        similarity = unit[rows] @ unit.T
        similarity[np.arange(rows.size), rows] = -np.inf
        found[start : start + rows.size] = np.argpartition(
            -similarity, n_neighbors - 1, axis=1
        )[:, :n_neighbors]
    return found


def neighbor_overlap(X_before, X_after, *, n_neighbors=10, max_queries=2000, random_state=0):
    """Mean overlap of each item's top cosine neighbours in two embeddings of the same items.

    1.0 means the transform kept every item's neighbourhood; values near
    ``n_neighbors / n_items`` mean it kept none. For large catalogues a random sample of
    ``max_queries`` items is scored against all items (chunked, never an ``n x n`` matrix).

    Parameters
    ----------
    X_before, X_after : array-like of shape (n_items, n_features_*)
        Two embeddings of the same items, row for row; widths may differ.
    n_neighbors : int, default=10
        Size of each neighbourhood.
    max_queries : int or None, default=2000
        Number of query items sampled; None scores every item.
    random_state : int, RandomState instance or None, default=0
        Seed for the query sample.

    Returns
    -------
    overlap : float in [0, 1]

    Examples
    --------
    >>> import numpy as np
    >>> from ace_transform import neighbor_overlap
    >>> X = np.random.default_rng(0).standard_normal((300, 16))
    >>> neighbor_overlap(X, 2.0 * X)
    1.0
    """
    X_before, X_after = _as_matrix(X_before, "X_before"), _as_matrix(X_after, "X_after")
    n_items = X_before.shape[0]
    if X_after.shape[0] != n_items:
        raise ValueError(
            f"X_before has {n_items} rows but X_after has {X_after.shape[0]}; pass two "
            "embeddings of the same items in the same order."
        )
    if not 1 <= n_neighbors < n_items:
        raise ValueError(f"n_neighbors={n_neighbors} must be in [1, n_items - 1={n_items - 1}].")
    if max_queries is None or max_queries >= n_items:
        queries = np.arange(n_items)
    else:
        queries = check_random_state(random_state).choice(n_items, max_queries, replace=False)
    before = _top_neighbors(X_before, queries, n_neighbors)
    after = _top_neighbors(X_after, queries, n_neighbors)
    shared = (before[:, :, None] == after[:, None, :]).any(axis=2).sum(axis=1)
    return float(shared.mean() / n_neighbors)


def anisotropy_report(X, *, center=True):
    """All anisotropy diagnostics of a matrix in one dictionary.

    Parameters
    ----------
    X : array-like of shape (n_items, n_features)
        Embedding matrix.
    center : bool, default=True
        Centre before computing the spectrum.

    Returns
    -------
    report : dict
        ``effective_rank``, ``top_direction_share``, ``mean_pairwise_cosine`` and the
        ``spectrum`` (normalised eigenvalues, descending).

    Examples
    --------
    >>> import numpy as np
    >>> from ace_transform import anisotropy_report
    >>> report = anisotropy_report(np.random.default_rng(0).standard_normal((100, 5)) + 3)
    >>> sorted(report)
    ['effective_rank', 'mean_pairwise_cosine', 'spectrum', 'top_direction_share']
    >>> report["mean_pairwise_cosine"] > 0.9
    True
    """
    spectrum = normalized_spectrum(X, center=center)
    return {
        "effective_rank": _entropy_rank(spectrum),
        "top_direction_share": float(spectrum[0]),
        "mean_pairwise_cosine": mean_pairwise_cosine(X),
        "spectrum": spectrum,
    }

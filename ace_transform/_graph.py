"""Item co-occurrence graphs built from interaction sequences."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import sparse


def cooccurrence_graph(sequences: Sequence, n_items: int, *, window: int = 3):
    """Symmetric item-item co-occurrence counts within a sliding window.

    Two items are linked each time they occur at most ``window`` positions apart in the
    same sequence. Self-links are dropped. The pairs are found for each offset at once over
    the concatenation of all sequences, with no loop over users.

    Parameters
    ----------
    sequences : sequence of array-like of int
        One sequence of item row indices (``0 <= index < n_items``) per user, in order.
    n_items : int
        Number of items, the size of the graph.
    window : int, default=3
        Largest distance between two positions that still counts as co-occurrence.

    Returns
    -------
    adjacency : scipy.sparse.csr_matrix of shape (n_items, n_items)
        Symmetric, float64 counts.

    Examples
    --------
    >>> from ace_transform import cooccurrence_graph
    >>> A = cooccurrence_graph([[0, 1, 2], [2, 1]], n_items=4, window=1)
    >>> A.toarray()
    array([[0., 1., 0., 0.],
           [1., 0., 2., 0.],
           [0., 2., 0., 0.],
           [0., 0., 0., 0.]])
    """
    if window < 1:
        raise ValueError(f"window={window} must be >= 1.")
    arrays = [np.asarray(seq).ravel() for seq in sequences]
    for i, array in enumerate(arrays):
        if array.size and not np.issubdtype(array.dtype, np.integer):
            raise ValueError(f"sequences[{i}] holds {array.dtype} values, e.g. {array[0]}; "
                             "pass integer item indices (embedding rows).")
    arrays = [array.astype(np.int64, copy=False) for array in arrays]
    lengths = np.array([a.size for a in arrays], dtype=np.int64)
    flat = np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.int64)
    if flat.size and (flat.min() < 0 or flat.max() >= n_items):
        bad = flat[(flat < 0) | (flat >= n_items)][0]
        raise ValueError(
            f"sequences name item index {bad}, but the embedding matrix has {n_items} rows "
            f"(valid indices 0..{n_items - 1}). Map item ids to embedding rows first, and "
            "drop interactions with items that have no embedding."
        )
    owner = np.repeat(np.arange(lengths.size), lengths)
    heads, tails = [], []
    for offset in range(1, window + 1):
        same_user = owner[offset:] == owner[:-offset]
        heads.append(flat[:-offset][same_user])
        tails.append(flat[offset:][same_user])
    head = np.concatenate(heads) if heads else flat[:0]
    tail = np.concatenate(tails) if tails else flat[:0]
    distinct = head != tail
    head, tail = head[distinct], tail[distinct]
    counts = sparse.coo_matrix(
        (np.ones(head.size), (head, tail)), shape=(n_items, n_items)
    ).tocsr()
    return (counts + counts.T).tocsr()


def normalized_laplacian(adjacency):
    """``L = I_c - D^-1/2 A D^-1/2``, with ``I_c`` the identity on connected items only.

    Isolated items get a zero row, so the graph penalty leaves them alone.
    """
    degree = np.asarray(adjacency.sum(axis=1)).ravel()
    connected = degree > 0
    inverse_root = np.zeros_like(degree)
    inverse_root[connected] = 1.0 / np.sqrt(degree[connected])
    scaling = sparse.diags(inverse_root)
    normalized = scaling @ adjacency @ scaling
    return sparse.diags(connected.astype(np.float64)) - normalized

"""Dask arrays: moment statistics by a blockwise tree reduction, and lazy transforms.

dask is an optional dependency. Nothing here imports it before a dask array is passed in,
so ``ace_transform`` imports and runs without it.

Fitting reads every block once: each block gives its row count, column sums, float64 Gram
matrix and a count of non-finite rows, and these are summed pairwise up a tree of
``SPLIT_EVERY``-way merges on whatever scheduler is active (threads by default, the
cluster of a ``distributed.Client`` when one is connected). Only the ``d x d`` result
reaches the client, which solves the small eigenproblem. ``transform`` maps every block
with the fitted projection and returns a lazy dask array, so an output larger than memory
can be written to disk chunk by chunk.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass

import numpy as np

from ._compat import _check_feature_names, _check_n_features
from ._spectral import MomentStatistics
from ._validation import non_finite_message, raise_if_not_finite_rows

# Number of block summaries merged by one task of the tree reduction. Each summary holds
# one d x d float64 Gram matrix (8 MB for d = 1,024, 128 MB for d = 4,096).
SPLIT_EVERY = 8


def is_dask_array(X) -> bool:
    """Whether ``X`` is a ``dask.array.Array`` (False, without importing dask, if unused)."""
    module = sys.modules.get("dask.array")
    return module is not None and isinstance(X, module.Array)


def check_dask_embeddings(estimator, X, *, reset: bool):
    """Validate a dask embedding matrix without computing it.

    Checks what is known from the metadata (2-D, a real dtype, at least one column, the
    width against ``n_features_in_``) and sets ``n_features_in_`` when ``reset``. Finiteness
    is checked as part of the same pass over the data that fits or transforms it. The
    columns are rechunked to one chunk, so that row blocks are the only chunking.
    """
    if X.ndim != 2:
        raise ValueError(
            f"Expected a 2-D dask array of shape (n_samples, n_features), got ndim={X.ndim} "
            f"(shape={X.shape}); reshape it to one row per item."
        )
    dtype = X.dtype
    if dtype.kind == "f" and dtype.itemsize <= 2:
        X = X.astype(np.float32)
    elif dtype.kind in "biu" or (dtype.kind == "f" and dtype not in (np.float32, np.float64)):
        X = X.astype(np.float64)
    elif dtype not in (np.float32, np.float64):
        raise ValueError(
            f"Unsupported dtype {dtype} of the dask array; embeddings must be real numbers "
            "(float32 or float64)."
        )
    n_samples, n_features = X.shape
    if math.isnan(n_features):
        raise ValueError(
            "The number of columns of the dask array is unknown; call "
            "X.compute_chunk_sizes() first."
        )
    for count, what in ((n_samples, "sample"), (n_features, "feature")):
        if count == 0:
            raise ValueError(
                f"Found array with 0 {what}(s) (shape={X.shape}) while a minimum of 1 is "
                "required."
            )
    _check_feature_names(estimator, X, reset=reset)
    _check_n_features(estimator, X, reset=reset)
    if X.numblocks[1] > 1:
        X = X.rechunk({1: -1})
    return X


@dataclass(frozen=True)
class _Summary:
    """Moment statistics of some rows, with how many were not finite and the first one."""

    stats: MomentStatistics
    n_bad_rows: int = 0
    first_bad_row: int | None = None  # None when unknown (unknown chunk sizes) or no bad row
    first_bad_kind: str = ""


def _summarise_block(block: np.ndarray, row_offset: float) -> _Summary:
    """One block's statistics; non-finite rows are counted and left out."""
    bad = None
    if not np.isfinite(block.sum()):
        bad = ~np.isfinite(block).all(axis=1)
        if not bad.any():  # the sum overflowed, the entries are finite
            bad = None
    if bad is None:
        return _Summary(MomentStatistics.from_matrix(block))
    bad_rows = np.flatnonzero(bad)
    kind = "NaN" if np.isnan(block[bad_rows[0]]).any() else "inf"
    first = None if math.isnan(row_offset) else int(row_offset) + int(bad_rows[0])
    stats = MomentStatistics.from_matrix(block[~bad])
    return _Summary(stats, int(bad_rows.size), first, kind)


def _merge_summaries(*parts: _Summary) -> _Summary:
    """Summary of the union of disjoint row sets, given in row order."""
    stats = parts[0].stats
    for part in parts[1:]:
        stats = stats.merge(part.stats)
    bad = [part for part in parts if part.n_bad_rows]
    if not bad:
        return _Summary(stats)
    first = bad[0]
    return _Summary(
        stats, sum(part.n_bad_rows for part in bad), first.first_bad_row, first.first_bad_kind
    )


def _row_offsets(X) -> list[float]:
    """Index of the first row of each row block (NaN where the chunk sizes are unknown)."""
    sizes = np.asarray(X.chunks[0], dtype=np.float64)
    return list(np.concatenate([[0.0], np.cumsum(sizes)[:-1]]))


def moment_statistics(X) -> MomentStatistics:
    """Moment statistics of a (validated) dask array, by a tree reduction over its blocks.

    Raises the same ValueError as the NumPy path when ``X`` holds NaN or inf; the row
    number is omitted when the chunk sizes are unknown.
    """
    import dask

    summarise = dask.delayed(_summarise_block, pure=True)
    merge = dask.delayed(_merge_summaries, pure=True)
    blocks = X.to_delayed().ravel()
    parts = [summarise(block, offset) for block, offset in zip(blocks, _row_offsets(X))]
    while len(parts) > 1:
        parts = [merge(*parts[i : i + SPLIT_EVERY]) for i in range(0, len(parts), SPLIT_EVERY)]
    (summary,) = dask.compute(parts[0])
    if summary.n_bad_rows:
        raise ValueError(
            non_finite_message("X", summary.first_bad_kind, summary.n_bad_rows,
                               summary.first_bad_row)
        )
    if summary.stats.n_samples == 0:
        raise ValueError(
            f"Found array with 0 sample(s) (shape=(0, {X.shape[1]})) while a minimum of 1 "
            "is required."
        )
    return summary.stats


def _project_block(block, projection, offset, block_info=None):
    """``block @ projection - offset``, after checking that the block is finite."""
    location = None if block_info is None else block_info[0]["array-location"][0]
    start, stop = (math.nan, math.nan) if location is None else location
    if math.isnan(start) or math.isnan(stop):
        raise_if_not_finite_rows(block, "X", row_offset=None, within=" of one block")
    else:
        raise_if_not_finite_rows(block, "X", row_offset=int(start),
                                 within=f" of the block of rows {int(start)} to {int(stop) - 1}")
    out = block @ projection
    if offset is not None:
        out -= offset
    return out


def project(X, projection: np.ndarray, offset: np.ndarray | None):
    """Lazy ``X @ projection - offset``, block by block, in ``X``'s dtype.

    The projection enters the graph once (as one key), not once per block.
    """
    import dask

    projection = np.ascontiguousarray(projection, dtype=X.dtype)
    offset = None if offset is None else offset.astype(X.dtype)
    width = projection.shape[1]
    return X.map_blocks(
        _project_block, dask.delayed(projection), offset,
        dtype=X.dtype, chunks=(X.chunks[0], (width,)), meta=np.empty((0, 0), X.dtype),
    )

"""Moment statistics and small symmetric eigenproblems shared by the reshapers.

Every reshaper in this package is an affine map of the embedding matrix whose coefficients
depend on ``X`` only through its first two moments. The moments are accumulated in one
chunked pass (float32 products per chunk, summed in float64), so a tall ``n x d`` matrix
costs about one ``X.T @ X`` and ``d x d`` extra memory, never a thin SVD of ``X``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import linalg

from ._compat import (
    _is_numpy_namespace,
    _max_precision_float_dtype,
    get_namespace_and_device,
    move_to,
)

# Rows per chunk of the Gram pass. Each chunk's product is one float32 BLAS call (which
# sums in float32, accurate to about 1e-6 over this many rows) added to a float64 total.
# Smaller chunks make the pass measurably slower than a single E.T @ E, from the per-chunk
# d x d allocations, symmetrisations and float64 conversions.
GRAM_CHUNK_ROWS = 32768
# Rows per block of the column sums: a BLAS vector-matrix product in the input's dtype is
# several times faster than a float64 reduction, and float32 partial sums over this many
# rows stay accurate to about 1e-6 before they are added up in float64.
COLUMN_SUM_BLOCK_ROWS = 4096
# From this width on, eigenproblems are solved in float32 and refined in float64.
FLOAT32_SOLVE_MIN_FEATURES = 1024


@dataclass(frozen=True)
class MomentStatistics:
    """Sufficient statistics of a set of rows: count, column sums and Gram matrix.

    Attributes
    ----------
    n_samples : int
        Number of rows accumulated.
    column_sum : ndarray of shape (n_features,), float64
        Sum of the rows.
    gram : ndarray of shape (n_features, n_features), float64
        ``X.T @ X`` over the rows (not centred).
    """

    n_samples: int
    column_sum: np.ndarray
    gram: np.ndarray

    @classmethod
    def from_matrix(cls, X) -> "MomentStatistics":
        """Accumulate the statistics of ``X`` in row chunks.

        ``X`` is a NumPy array, a dask array (reduced blockwise on the active dask
        scheduler, see ``_dask.moment_statistics``) or an array API array (accumulated on
        its device; only the ``d x d`` result is copied to the host).
        """
        from ._dask import is_dask_array, moment_statistics

        if is_dask_array(X):
            return moment_statistics(X)
        xp, _, device = get_namespace_and_device(X)
        if not _is_numpy_namespace(xp):
            return cls._from_array_api(X, xp, device)
        n_samples, n_features = X.shape
        gram = np.zeros((n_features, n_features), dtype=np.float64)
        for start in range(0, n_samples, GRAM_CHUNK_ROWS):
            chunk = X[start : start + GRAM_CHUNK_ROWS]
            gram += chunk.T @ chunk
        column_sum = np.zeros(n_features, dtype=np.float64)
        ones = np.ones(min(COLUMN_SUM_BLOCK_ROWS, n_samples), dtype=X.dtype)
        for start in range(0, n_samples, COLUMN_SUM_BLOCK_ROWS):
            block = X[start : start + COLUMN_SUM_BLOCK_ROWS]
            column_sum += ones[: block.shape[0]] @ block
        return cls(int(n_samples), column_sum, gram)

    @classmethod
    def _from_array_api(cls, X, xp, device) -> "MomentStatistics":
        """The chunked pass of :meth:`from_matrix` in namespace ``xp``, on ``X``'s device."""
        n_samples, n_features = X.shape
        # float64 sums where the device has float64 (not on Apple's MPS, for one).
        total_dtype = _max_precision_float_dtype(xp, device)
        gram = xp.zeros((n_features, n_features), dtype=total_dtype, device=device)
        column_sum = xp.zeros((n_features,), dtype=total_dtype, device=device)
        for start in range(0, n_samples, GRAM_CHUNK_ROWS):
            chunk = X[start : min(start + GRAM_CHUNK_ROWS, n_samples), ...]
            gram = gram + xp.astype(chunk.T @ chunk, total_dtype)
            column_sum = column_sum + xp.sum(chunk, axis=0, dtype=total_dtype)
        gram, column_sum = move_to(gram, column_sum, xp=np, device="cpu")
        return cls(
            int(n_samples),
            np.asarray(column_sum, dtype=np.float64),
            np.asarray(gram, dtype=np.float64),
        )

    def merge(self, other: "MomentStatistics") -> "MomentStatistics":
        """Statistics of the union of two disjoint sets of rows."""
        return MomentStatistics(
            self.n_samples + other.n_samples,
            self.column_sum + other.column_sum,
            self.gram + other.gram,
        )

    @property
    def mean(self) -> np.ndarray:
        """Column means, float64."""
        return self.column_sum / self.n_samples

    def scatter(self, center: bool) -> np.ndarray:
        """``X.T @ X`` about the column means (``center=True``) or about zero."""
        if not center:
            return self.gram
        mean = self.mean
        return self.gram - self.n_samples * np.outer(mean, mean)


def top_eigenpairs(symmetric: np.ndarray, n_components: int):
    """Largest ``n_components`` eigenpairs of a symmetric matrix, in descending order.

    Only the requested eigenpairs are computed (LAPACK ``syevr`` with an index range). For
    large matrices the tridiagonal reduction dominates and runs twice as fast in float32, so
    the solve is done in float32 and followed by one float64 Rayleigh-Ritz step on the found
    subspace, which restores float64 eigenvalues (relative error ~1e-12 on 3,072 x 3,072).

    Returns
    -------
    eigenvalues : ndarray of shape (n_components,)
    eigenvectors : ndarray of shape (n_features, n_components)
    """
    n_features = symmetric.shape[0]
    subset = [n_features - n_components, n_features - 1]
    if n_features < FLOAT32_SOLVE_MIN_FEATURES:
        eigenvalues, eigenvectors = linalg.eigh(
            symmetric, subset_by_index=subset, check_finite=False
        )
        return eigenvalues[::-1].copy(), eigenvectors[:, ::-1].copy()
    _, rough = linalg.eigh(
        symmetric.astype(np.float32, order="F"), subset_by_index=subset, check_finite=False,
        overwrite_a=True,
    )
    # ``rough`` is orthonormal to float32 precision, so a Cholesky QR (one k x k factor)
    # makes it orthonormal in float64 at a fraction of the cost of a Householder QR.
    basis = rough.astype(np.float64)
    factor = linalg.cholesky(basis.T @ basis, check_finite=False)
    basis = linalg.solve_triangular(factor, basis.T, trans="T", check_finite=False).T
    reduced = basis.T @ (symmetric @ basis)
    eigenvalues, rotation = np.linalg.eigh((reduced + reduced.T) / 2)
    return eigenvalues[::-1].copy(), (basis @ rotation)[:, ::-1].copy()


def orient_components(eigenvectors: np.ndarray, column_sum: np.ndarray) -> np.ndarray:
    """Fix the sign of each eigenvector so that results are reproducible.

    Convention: each output coordinate ``X @ v`` has a non-negative sum over the fitted rows.
    Where that sum is zero up to rounding (centred data), the loading of largest magnitude
    of ``v`` is made positive instead, as scikit-learn's ``svd_flip`` does for components.
    """
    projected_sum = column_sum @ eigenvectors
    reference = np.abs(column_sum) @ np.abs(eigenvectors)
    undecided = np.abs(projected_sum) <= 1e-8 * np.maximum(reference, 1e-300)
    largest = eigenvectors[np.argmax(np.abs(eigenvectors), axis=0), np.arange(eigenvectors.shape[1])]
    signs = np.where(undecided, np.sign(largest), np.sign(projected_sum))
    signs[signs == 0] = 1.0
    return eigenvectors * signs


def output_std(stats: MomentStatistics, mean: np.ndarray | None, projection: np.ndarray) -> float:
    """Standard deviation (ddof 0) of all entries of ``(X - mean) @ projection`` on the rows.

    Computed from the moment statistics alone, so ``partial_fit`` over chunks gives the same
    scale as ``fit`` on the whole matrix.
    """
    n, width = stats.n_samples, projection.shape[1]
    offset = np.zeros_like(stats.column_sum) if mean is None else mean
    # tr(P^T S P) for the shifted scatter S = G - o c^T - c o^T + n o o^T, expanded so that
    # no d x d temporary is formed: only G @ P (d x k) and a few length-k vectors.
    projected_offset = offset @ projection
    projected_sum = stats.column_sum @ projection
    trace = (
        np.einsum("ij,ij->", projection, stats.gram @ projection)
        - 2.0 * projected_offset @ projected_sum
        + n * projected_offset @ projected_offset
    )
    entry_mean = (projected_sum - n * projected_offset).sum() / (n * width)
    mean_square = trace / (n * width)
    return float(np.sqrt(max(mean_square - entry_mean**2, 0.0)))

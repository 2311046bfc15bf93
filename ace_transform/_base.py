"""Base classes: every reshaper is the affine map ``X -> X @ projection_ - offset_``."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from ._compat import _fit_context
from ._spectral import MomentStatistics
from ._validation import check_embeddings


class _AffineReshaper(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Shared transform, dtype handling and feature names.

    Subclasses call ``_set_map(mean, projection)`` at the end of fitting. The mean is folded
    into an output offset so that transforming never copies the input.
    """

    def _set_map(self, mean: np.ndarray | None, projection: np.ndarray) -> None:
        self.mean_ = mean
        self.projection_ = projection
        self.offset_ = np.zeros(projection.shape[1]) if mean is None else mean @ projection

    def _project(self, X: np.ndarray) -> np.ndarray:
        out = X @ self.projection_.astype(X.dtype, copy=False)
        if self.mean_ is not None:
            out -= self.offset_.astype(X.dtype, copy=False)
        return out

    def transform(self, X):
        """Map rows, fitted or new, into the reshaped space.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Embeddings from the same encoder as the fitted matrix.

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_components_out)
            Same floating dtype as ``X`` (float32 stays float32).
        """
        check_is_fitted(self)
        X = check_embeddings(self, X, reset=False)
        return self._project(X)

    @property
    def _n_features_out(self) -> int:
        return self.projection_.shape[1]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags


class _MomentReshaper(_AffineReshaper):
    """A reshaper fitted from the first two moments of ``X``; supports ``partial_fit``.

    Subclasses implement ``_fit_statistics(stats)``, which returns ``(mean, projection)``.
    """

    def _fit_statistics(self, stats: MomentStatistics):
        raise NotImplementedError

    def _fit(self, X: np.ndarray) -> None:
        # Keep the statistics: a later partial_fit adds its rows to these, as scikit-learn's
        # incremental estimators do; a later fit replaces them.
        self._set_statistics(MomentStatistics.from_matrix(X))

    def _set_statistics(self, stats: MomentStatistics) -> None:
        mean, projection = self._fit_statistics(stats)
        self._partial_statistics = stats
        self.n_samples_seen_ = stats.n_samples
        self._set_map(mean, projection)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit the reshaper on an embedding matrix.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            One row per item. float32 input is processed as float32.
        y : None
            Ignored.

        Returns
        -------
        self : object
            Fitted estimator.
        """
        X = check_embeddings(self, X, reset=True)
        self._fit(X)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def fit_transform(self, X, y=None):
        """Fit on ``X`` and return its reshaped rows, validating ``X`` once.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            One row per item.
        y : None
            Ignored.

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_components_out)
            Equal to ``fit(X).transform(X)``.
        """
        X = check_embeddings(self, X, reset=True)
        self._fit(X)
        return self._project(X)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None):
        """Add a chunk of rows to the fit, for matrices that do not fit in memory.

        The moment statistics are summed over chunks, so after the last chunk the estimator
        equals one fitted on all rows at once. After ``fit(A)``, ``partial_fit(B)`` continues
        from ``A``'s statistics and equals ``fit`` on the rows of ``A`` and ``B`` together;
        ``fit`` always starts over. Each call re-solves a ``d x d`` eigenproblem; pass large
        chunks.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            A chunk of rows.
        y : None
            Ignored.

        Returns
        -------
        self : object
            Estimator fitted on every chunk seen so far.
        """
        first_call = not hasattr(self, "_partial_statistics")
        X = check_embeddings(self, X, reset=first_call)
        stats = MomentStatistics.from_matrix(X)
        if not first_call:
            stats = self._partial_statistics.merge(stats)
        self._set_statistics(stats)
        return self

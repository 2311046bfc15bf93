"""Base classes: every reshaper is the affine map ``X -> X @ projection_ - offset_``."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from ._compat import (
    _fit_context,
    _is_numpy_namespace,
    check_same_namespace,
    get_namespace_and_device,
    move_to,
)
from ._dask import is_dask_array
from ._dask import project as dask_project
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

    def _project(self, X):
        if is_dask_array(X):
            projection, offset = move_to(self.projection_, self.offset_, xp=np, device="cpu")
            return dask_project(X, projection, None if self.mean_ is None else offset)
        xp, _, _ = get_namespace_and_device(X)
        if not _is_numpy_namespace(xp):
            out = X @ xp.astype(self.projection_, X.dtype)
            if self.mean_ is not None:
                out = out - xp.astype(self.offset_, X.dtype)
            return out
        out = X @ self.projection_.astype(X.dtype, copy=False)
        if self.mean_ is not None:
            out -= self.offset_.astype(X.dtype, copy=False)
        return out

    def _move_fitted_arrays_like(self, X) -> None:
        """Put the fitted array attributes in ``X``'s array namespace and on its device.

        scikit-learn's array API convention: an estimator fitted on torch tensors on the
        GPU holds torch tensors on the GPU, so ``transform`` never leaves the device.
        NumPy and dask input keep NumPy attributes.
        """
        if is_dask_array(X):
            return
        xp, is_array_api, device = get_namespace_and_device(X)
        if not is_array_api or _is_numpy_namespace(xp):
            return
        for name, value in vars(self).items():
            if name.endswith("_") and not name.startswith("_") and isinstance(value, np.ndarray):
                setattr(self, name, move_to(value, xp=xp, device=device))

    def transform(self, X):
        """Map rows, fitted or new, into the reshaped space.

        Parameters
        ----------
        X : array-like or dask array of shape (n_samples, n_features)
            Embeddings from the same encoder as the fitted matrix. Under
            ``sklearn.set_config(array_api_dispatch=True)``, an array API array (a torch
            tensor, say) in the namespace and on the device the estimator was fitted on.

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_components_out)
            Same floating dtype as ``X`` (float32 stays float32). A lazy dask array, mapped
            block by block, for a dask ``X``; an array of ``X``'s namespace on ``X``'s
            device for an array API ``X``.
        """
        check_is_fitted(self)
        if not is_dask_array(X):
            check_same_namespace(X, self, attribute="projection_", method="transform")
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

    Subclasses implement ``_fit_statistics(stats)``, which returns ``(mean, projection)``
    as NumPy arrays. The statistics come from NumPy arrays, dask arrays (a blockwise tree
    reduction on the active dask scheduler) or array API arrays (summed on their device);
    in every case only the ``d x d`` statistics reach ``_fit_statistics``.
    """

    def _fit_statistics(self, stats: MomentStatistics):
        raise NotImplementedError

    def _fit(self, X) -> None:
        # Keep the statistics: a later partial_fit adds its rows to these, as scikit-learn's
        # incremental estimators do; a later fit replaces them.
        self._set_statistics(MomentStatistics.from_matrix(X))
        self._move_fitted_arrays_like(X)

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
        X : array-like or dask array of shape (n_samples, n_features)
            One row per item. float32 input is processed as float32. A dask array is
            reduced block by block on the active dask scheduler (a ``distributed.Client``
            when one is connected) and never gathered.
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
        X : array-like or dask array of shape (n_samples, n_features)
            One row per item.
        y : None
            Ignored.

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_components_out)
            Equal to ``fit(X).transform(X)``; a lazy dask array for a dask ``X``.
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
        X : array-like or dask array of shape (n_samples, n_features)
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
        self._move_fitted_arrays_like(X)
        return self

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.array_api_support = True
        return tags

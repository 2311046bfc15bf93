"""Rec-PCA (TF-LLMER): PCA that penalises variation over an item co-occurrence graph."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from scipy import sparse

from ._base import _AffineReshaper
from ._compat import Interval, _fit_context
from ._dask import is_dask_array
from ._graph import cooccurrence_graph, normalized_laplacian
from ._spectral import MomentStatistics, orient_components, output_std, top_eigenpairs
from ._validation import check_embeddings, check_n_components


class RecPCA(_AffineReshaper):
    """Dimensionality reduction that keeps semantic variance and is smooth on co-occurrence.

    TF-LLMER's Rec-PCA. The input should be row-normalised first (TF-LLMER's other
    component): put :class:`sklearn.preprocessing.Normalizer` in front of it in a
    :class:`~sklearn.pipeline.Pipeline`. The projection ``W`` maximises
    ``tr(W^T Xc^T Xc W) - beta * tr(W^T Xc^T L Xc W)`` with ``W^T W = I``, where ``Xc`` is
    the centred input and ``L`` the normalised Laplacian of the item co-occurrence graph
    built from the training sequences passed to ``fit``. Without sequences it is PCA.

    Read more in the :ref:`User Guide <baselines>`.

    Parameters
    ----------
    n_components : int, default=128
        Output width.
    beta : float, default=0.5
        Weight of the graph penalty. ``beta <= 0.5`` keeps the objective positive
        semi-definite (the normalised Laplacian's eigenvalues lie in ``[0, 2]``).
    window : int, default=3
        Items at most this many positions apart in a sequence count as co-occurring.
    target_std : float or None, default=None
        If set, rescale the output so its entries have this standard deviation.

    Attributes
    ----------
    components_ : ndarray of shape (n_components, n_features)
        Rows of ``W^T``, sign-fixed (largest loading positive).
    eigenvalues_ : ndarray of shape (n_components,)
        Top eigenvalues of ``Xc^T (I - beta L) Xc``.
    n_edges_ : int
        Number of undirected item pairs in the co-occurrence graph.
    scale_ : float
        Global output factor (1.0 when ``target_std`` is None).
    projection_ : ndarray of shape (n_features, n_components)
        ``components_.T * scale_``.
    mean_ : ndarray of shape (n_features,)
        Column means of the fitted matrix.
    offset_ : ndarray of shape (n_components,)
        ``mean_ @ projection_``.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape ``(n_features_in_,)``
        Names of features seen during fit, when ``X`` has string column names.

    Notes
    -----
    The TF-LLMER authors' code was not available; this is our formulation, consistent with
    the paper's abstract. It uses ``sum_ij A_ij ||z_i - z_j||^2 = 2 tr(Z^T L Z)``, so the
    penalty is the total variation of the projected items over the graph. The solution is
    given by the top eigenvectors of the ``d x d`` matrix ``Xc^T (I - beta L) Xc``.

    Unlike the moment-based reshapers, ``fit`` needs all rows in memory as one NumPy
    array: the graph term ``Xc^T L Xc`` couples every item with its neighbours, so it is
    not a sum over row blocks. Fitting on a dask array or, under
    ``array_api_dispatch=True``, on a non-NumPy array raises a TypeError. ``transform``
    of a fitted estimator accepts a dask array (and returns a lazy one).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import Normalizer
    >>> from ace_transform import RecPCA
    >>> rng = np.random.default_rng(0)
    >>> E = rng.standard_normal((50, 8))
    >>> sequences = [rng.integers(0, 50, size=10) for _ in range(20)]
    >>> pipe = make_pipeline(Normalizer(), RecPCA(n_components=4))
    >>> pipe.fit_transform(E, recpca__sequences=sequences).shape
    (50, 4)
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "beta": [Interval(Real, 0, None, closed="left")],
        "window": [Interval(Integral, 1, None, closed="left")],
        "target_std": [Interval(Real, 0, None, closed="neither"), None],
    }

    def __init__(self, n_components=128, *, beta=0.5, window=3, target_std=None):
        self.n_components = n_components
        self.beta = beta
        self.window = window
        self.target_std = target_std

    def _check_fit_input(self, X):
        """Validate ``X`` for fitting: a NumPy matrix, not a dask or other array API array."""
        if is_dask_array(X):
            raise TypeError(
                "RecPCA.fit needs the whole matrix in memory (its co-occurrence graph couples "
                "items across row blocks) and does not accept a dask array; pass X.compute(), "
                "or fit a moment-based reshaper (ACETransformer, PCAInit, ...) on dask. "
                "transform accepts dask arrays."
            )
        X = check_embeddings(self, X, reset=True)
        if not isinstance(X, np.ndarray):
            raise TypeError(
                f"RecPCA.fit works on NumPy arrays only, got {type(X).__module__}."
                f"{type(X).__name__}; convert X to NumPy or fit with array_api_dispatch "
                "disabled."
            )
        return X

    def _fit(self, X, sequences):
        n_samples, n_features = X.shape
        check_n_components(self.n_components, n_samples, n_features)
        if sequences is None:
            adjacency = sparse.csr_matrix((n_samples, n_samples))
        elif sparse.issparse(sequences):
            if sequences.shape != (n_samples, n_samples):
                raise ValueError(
                    f"The co-occurrence matrix has shape {sequences.shape}, but X has "
                    f"{n_samples} rows; pass an (n_items, n_items) matrix."
                )
            adjacency = sparse.csr_matrix(sequences, dtype=np.float64)
        else:
            adjacency = cooccurrence_graph(sequences, n_samples, window=self.window)

        stats = MomentStatistics.from_matrix(X)
        mean = stats.mean
        centred = X.astype(np.float64) - mean
        objective = stats.scatter(True)
        if adjacency.nnz and self.beta:
            smoothed = normalized_laplacian(adjacency) @ centred
            objective = objective - self.beta * (centred.T @ smoothed)
        objective = (objective + objective.T) / 2

        eigenvalues, eigenvectors = top_eigenpairs(objective, self.n_components)
        eigenvectors = orient_components(eigenvectors, np.zeros(n_features))
        self.components_ = eigenvectors.T
        self.eigenvalues_ = eigenvalues
        self.n_edges_ = int(sparse.triu(adjacency, k=1).nnz)
        self.scale_ = 1.0
        if self.target_std is not None:
            spread = output_std(stats, mean, eigenvectors)
            self.scale_ = float(self.target_std / spread) if spread > 0 else 1.0
        self._set_map(mean, eigenvectors * self.scale_)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, sequences=None):
        """Fit the projection.

        Parameters
        ----------
        X : array-like of shape (n_items, n_features)
            Row-normalised item embeddings.
        y : None
            Ignored.
        sequences : sequence of array-like of int, sparse matrix, or None, default=None
            Training sequences of item row indices, or a ready ``(n_items, n_items)``
            co-occurrence matrix. None fits plain PCA.

        Returns
        -------
        self : object
            Fitted estimator.
        """
        X = self._check_fit_input(X)
        self._fit(X, sequences)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def fit_transform(self, X, y=None, sequences=None):
        """Fit and return the projected rows.

        Parameters
        ----------
        X : array-like of shape (n_items, n_features)
            Row-normalised item embeddings.
        y : None
            Ignored.
        sequences : sequence of array-like of int, sparse matrix, or None, default=None
            As in :meth:`fit`.

        Returns
        -------
        X_new : ndarray of shape (n_items, n_components)
            Equal to ``fit(X, sequences=...).transform(X)``.
        """
        X = self._check_fit_input(X)
        self._fit(X, sequences)
        return self._project(X)

"""AlphaFuse: a frozen standardised semantic table with trainable null-space slots."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np

from ._base import _MomentReshaper
from ._compat import Interval
from ._spectral import MomentStatistics, orient_components, top_eigenpairs
from ._validation import check_n_components


class AlphaFuseSplitter(_MomentReshaper):
    """Standardised principal coordinates plus the slots that AlphaFuse trains (AlphaFuse).

    AlphaFuse keeps the item table's semantic part frozen: the top ``n_components``
    principal coordinates of the centred embeddings, each scaled to unit variance. The
    last ``null_dim`` coordinates (the weakest directions, the "null space") receive a
    trainable ID embedding added by the backbone. This estimator computes the frozen table
    and says which columns are those slots; :mod:`recmodels` owns the trainable part.

    Read more in the :ref:`User Guide <baselines>`.

    Parameters
    ----------
    n_components : int, default=128
        Width of the table.
    null_dim : int, default=64
        Number of trailing columns that are trainable slots. Ignored when ``null_thres``
        is set.
    null_thres : float or None, default=None
        If set, the number of slots is the number of kept covariance eigenvalues (among the
        top ``n_components``) below this threshold.
    cover : bool, default=False
        If True the slot columns are zeroed, so the trainable ID part replaces them
        (concatenation) instead of being added to them.

    Attributes
    ----------
    null_dim_ : int
        Number of trainable slots.
    null_slots_ : ndarray of shape ``(null_dim_,)``
        Column indices of the trainable slots (the last ``null_dim_`` columns).
    semantic_slots_ : ndarray of shape ``(n_components - null_dim_,)``
        Column indices of the purely semantic columns.
    explained_variance_ : ndarray of shape (n_components,)
        Covariance eigenvalues (ddof 1), descending.
    components_ : ndarray of shape (n_components, n_features)
        Principal directions, sign-fixed (largest loading positive).
    projection_ : ndarray of shape (n_features, n_components)
        ``components_.T / sqrt(explained_variance_)``, slot columns zeroed if ``cover``.
    mean_ : ndarray of shape (n_features,)
        Column means of the fitted matrix.
    offset_ : ndarray of shape (n_components,)
        ``mean_ @ projection_``.
    n_samples_seen_ : int
        Number of rows the fit used.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape ``(n_features_in_,)``
        Names of features seen during fit, when ``X`` has string column names.

    Notes
    -----
    The authors multiply ``E`` by 40 before the decomposition; the standardisation cancels
    that factor, so it is omitted. Directions with (numerically) zero variance map to zero.

    Larger than memory or on the GPU: ``fit`` and ``transform`` take dask arrays (a blockwise
    fit on the active dask scheduler, a lazy transform) and, under
    ``sklearn.set_config(array_api_dispatch=True)``, torch tensors that stay on their
    device; see :ref:`scaling`.

    References
    ----------
    .. [1] Hu et al., "AlphaFuse: Learn ID embeddings for sequential recommendation in null
       space of language embeddings", SIGIR 2025.

    Examples
    --------
    >>> import numpy as np
    >>> from ace_transform import AlphaFuseSplitter
    >>> rng = np.random.default_rng(0)
    >>> E = rng.standard_normal((300, 12)) * np.linspace(2, 0.2, 12)
    >>> splitter = AlphaFuseSplitter(n_components=6, null_dim=2).fit(E)
    >>> Z = splitter.transform(E)
    >>> splitter.null_slots_
    array([4, 5])
    >>> bool(np.allclose(Z.std(axis=0, ddof=1), 1.0))
    True
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "null_dim": [Interval(Integral, 0, None, closed="left")],
        "null_thres": [Interval(Real, 0, None, closed="left"), None],
        "cover": ["boolean"],
    }

    def __init__(self, n_components=128, *, null_dim=64, null_thres=None, cover=False):
        self.n_components = n_components
        self.null_dim = null_dim
        self.null_thres = null_thres
        self.cover = cover

    def _fit_statistics(self, stats: MomentStatistics):
        n_samples, k = stats.n_samples, self.n_components
        if n_samples < 2:
            raise ValueError(
                f"AlphaFuseSplitter needs a covariance (ddof=1), got n_samples={n_samples}; "
                "fit on at least 2 rows."
            )
        check_n_components(k, n_samples, stats.gram.shape[0])
        eigenvalues, eigenvectors = top_eigenpairs(stats.scatter(True), k)
        eigenvalues = np.clip(eigenvalues, 0.0, None) / (n_samples - 1)
        eigenvectors = orient_components(eigenvectors, np.zeros_like(stats.column_sum))

        if self.null_thres is not None:
            null_dim = int(np.count_nonzero(eigenvalues < self.null_thres))
        else:
            if self.null_dim > k:
                raise ValueError(
                    f"null_dim={self.null_dim} must be <= n_components={k}; lower null_dim "
                    "or raise n_components."
                )
            null_dim = int(self.null_dim)

        positive = eigenvalues > np.finfo(np.float64).eps * max(eigenvalues[0], 1e-300)
        inverse_root = np.where(positive, 1.0 / np.sqrt(np.where(positive, eigenvalues, 1.0)), 0.0)
        projection = eigenvectors * inverse_root
        if self.cover and null_dim:
            projection[:, k - null_dim :] = 0.0

        self.null_dim_ = null_dim
        self.null_slots_ = np.arange(k - null_dim, k)
        self.semantic_slots_ = np.arange(k - null_dim)
        self.explained_variance_ = eigenvalues
        self.components_ = eigenvectors.T
        return stats.mean, projection

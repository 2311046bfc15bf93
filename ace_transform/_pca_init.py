"""LLM2X: centred PCA scores as a trainable item-table initialisation."""

from __future__ import annotations

from numbers import Integral, Real

from ._base import _MomentReshaper
from ._compat import Interval
from ._spectral import MomentStatistics, orient_components, output_std, top_eigenpairs
from ._validation import check_n_components


class PCAInit(_MomentReshaper):
    """Centred PCA scores of an embedding matrix, for initialising an item table (LLM2X).

    Projects the centred rows on the top ``n_components`` principal directions, keeping the
    variance of each direction (``U_k S_k``). Optionally rescales all entries to a target
    standard deviation, so the table starts at the size the backbone expects.

    Read more in the :ref:`User Guide <baselines>`.

    Parameters
    ----------
    n_components : int, default=128
        Number of principal directions kept.
    target_std : float or None, default=None
        If set, multiply the scores by one global factor so that their entries have this
        standard deviation on the fitted rows.

    Attributes
    ----------
    components_ : ndarray of shape (n_components, n_features)
        Principal directions, sign-fixed (largest loading positive).
    explained_variance_ : ndarray of shape (n_components,)
        Variance (ddof 0) of the data along each direction.
    scale_ : float
        Global factor applied to the scores (1.0 when ``target_std`` is None).
    projection_ : ndarray of shape (n_features, n_components)
        ``components_.T * scale_``.
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

    See Also
    --------
    ACETransformer : Shrinks the same spectrum instead of keeping it.
    sklearn.decomposition.PCA : The same scores (up to signs) without the rescale.

    Notes
    -----
    Larger than memory or on the GPU: ``fit`` and ``transform`` take dask arrays (a blockwise
    fit on the active dask scheduler, a lazy transform) and, under
    ``sklearn.set_config(array_api_dispatch=True)``, torch tensors that stay on their
    device; see :ref:`scaling`.

    References
    ----------
    .. [1] Boz et al., "Improving sequential recommendations with LLMs", 2024 (LLM2X).

    Examples
    --------
    >>> import numpy as np
    >>> from ace_transform import PCAInit
    >>> rng = np.random.default_rng(0)
    >>> E = rng.standard_normal((100, 10))
    >>> scores = PCAInit(n_components=3, target_std=0.5).fit_transform(E)
    >>> scores.shape
    (100, 3)
    >>> bool(np.allclose(scores.mean(axis=0), 0)), round(float(scores.std()), 3)
    (True, 0.5)
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "target_std": [Interval(Real, 0, None, closed="neither"), None],
    }

    def __init__(self, n_components=128, *, target_std=None):
        self.n_components = n_components
        self.target_std = target_std

    def _fit_statistics(self, stats: MomentStatistics):
        check_n_components(self.n_components, stats.n_samples, stats.gram.shape[0])
        eigenvalues, eigenvectors = top_eigenpairs(stats.scatter(True), self.n_components)
        eigenvectors = orient_components(eigenvectors, stats.column_sum * 0.0)
        mean = stats.mean
        self.components_ = eigenvectors.T
        self.explained_variance_ = eigenvalues.clip(0.0) / stats.n_samples
        self.scale_ = 1.0
        if self.target_std is not None:
            spread = output_std(stats, mean, eigenvectors)
            self.scale_ = float(self.target_std / spread) if spread > 0 else 1.0
        return mean, eigenvectors * self.scale_

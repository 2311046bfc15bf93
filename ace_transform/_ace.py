"""ACE: anisotropy-controllable embedding by spectral shrinkage."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np

from ._base import _MomentReshaper
from ._compat import Interval
from ._spectral import MomentStatistics, orient_components, output_std, top_eigenpairs
from ._validation import check_n_components


class ACETransformer(_MomentReshaper):
    """Shrink the spectrum of an embedding matrix to control its anisotropy (ACE).

    LLM item embeddings are anisotropic: a few directions hold most of the variance, so item
    tables initialised from them start ill-conditioned. ACE keeps the top ``n_components``
    singular directions of ``E`` and gives direction ``j`` the weight
    ``g(s_j) = sqrt(s_j^2 / (s_j^2 + lam))``, the square-root factor of the ridge linear
    autoencoder ``(E E^T + lam I)^-1 E E^T``. ``lam=0`` whitens the kept directions;
    large ``lam`` keeps the shape of the PCA scores. The result is rescaled so that its
    entries have standard deviation ``gamma``. Use the output to initialise a trainable item
    table (see :mod:`recmodels`).

    Read more in the :ref:`User Guide <ace>`.

    Parameters
    ----------
    n_components : int, default=128
        Number of singular directions kept, the width of the output.
    lam : float, default=50.0
        Shrinkage strength, compared with squared singular values of the (raw, unscaled)
        matrix. For unit-norm rows ``sum(s^2) = n_samples``.
    gamma : float, default=0.1
        Target standard deviation of the output entries on the fitted rows.
    center : bool, default=False
        Subtract the column means before the decomposition. The seed paper's SASRec and
        BERT4Rec code does not centre.

    Attributes
    ----------
    components_ : ndarray of shape (n_components, n_features)
        Right singular vectors ``V_k^T`` of the (optionally centred) fitted matrix.
    singular_values_ : ndarray of shape (n_components,)
        Singular values ``s_1 >= ... >= s_k`` of the fitted matrix.
    shrinkage_ : ndarray of shape (n_components,)
        Shrinkage factors ``g(s_j)`` in ``[0, 1]``.
    scale_ : float
        ``gamma / std(U_k diag(g))``, fixed at fit time and applied to new rows too.
    projection_ : ndarray of shape (n_features, n_components)
        The map applied by ``transform``: ``V_k diag(g(s) / s) * scale_``.
    mean_ : ndarray of shape (n_features,) or None
        Column means subtracted before projecting; None when ``center=False``.
    offset_ : ndarray of shape (n_components,)
        ``mean_ @ projection_`` (zeros when ``center=False``).
    n_samples_seen_ : int
        Number of rows the fit used.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape ``(n_features_in_,)``
        Names of features seen during fit, when ``X`` has string column names.

    See Also
    --------
    PCAInit : Centred PCA scores (LLM2X), ACE's large-``lam`` limit up to centring.
    WhiteningTransformer : Full or group-wise whitening, ACE's ``lam=0`` limit when centred.

    Notes
    -----
    With ``E = U diag(s) V^T`` the output on the fitted rows is
    ``X = U_k diag(g(s_k)) * gamma / std(U_k diag(g(s_k)))``, std over all entries, ddof 0.
    It is computed without a thin SVD of ``E``: one chunked pass accumulates ``E^T E`` in
    float64, and only its top ``n_components`` eigenpairs are solved for. Because
    ``U_k = E V_k diag(1/s_k)``, the same projection maps rows not seen in fit (cold-start
    items) consistently and reproduces the fitted rows exactly.

    Sign convention: each singular vector is oriented so that its output column has a
    non-negative sum over the fitted rows (for centred data, where every column sums to
    zero, the largest loading is made positive). The global ``std`` of the reference formula
    subtracts the mean of all entries, which depends on these signs; with this convention
    the scale is reproducible.

    Larger than memory or on the GPU: ``fit`` and ``transform`` take dask arrays (a blockwise
    fit on the active dask scheduler, a lazy transform) and, under
    ``sklearn.set_config(array_api_dispatch=True)``, torch tensors that stay on their
    device; see :ref:`scaling`.

    References
    ----------
    .. [1] "ACE: Anisotropy-Controllable Embeddings for LLM-initialised sequential
       recommenders", SIGIR 2026 (the seed paper of this package).

    Examples
    --------
    >>> import numpy as np
    >>> from ace_transform import ACETransformer
    >>> rng = np.random.default_rng(0)
    >>> E = (rng.standard_normal((200, 16)) * np.linspace(3, 0.1, 16)).astype(np.float32)
    >>> ace = ACETransformer(n_components=8, lam=5.0, gamma=0.1)
    >>> X = ace.fit_transform(E)
    >>> X.shape, X.dtype
    ((200, 8), dtype('float32'))
    >>> round(float(X.std()), 4)
    0.1
    >>> bool(np.allclose(ace.transform(E[:5]), X[:5], atol=1e-6))
    True
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "lam": [Interval(Real, 0, None, closed="left")],
        "gamma": [Interval(Real, 0, None, closed="neither")],
        "center": ["boolean"],
    }

    def __init__(self, n_components=128, *, lam=50.0, gamma=0.1, center=False):
        self.n_components = n_components
        self.lam = lam
        self.gamma = gamma
        self.center = center

    def _fit_statistics(self, stats: MomentStatistics):
        check_n_components(self.n_components, stats.n_samples, stats.gram.shape[0])
        eigenvalues, eigenvectors = top_eigenpairs(
            stats.scatter(self.center), self.n_components
        )
        squared = np.clip(eigenvalues, 0.0, None)
        mean = stats.mean if self.center else None
        centred_sum = np.zeros_like(stats.column_sum) if self.center else stats.column_sum
        eigenvectors = orient_components(eigenvectors, centred_sum)

        # g(s) / s = 1 / sqrt(s^2 + lam): finite even for s = 0 when lam > 0.
        denominator = np.sqrt(squared + self.lam)
        tiny = denominator <= np.sqrt(np.finfo(np.float64).eps) * max(denominator[0], 1e-300)
        per_direction = np.where(tiny, 0.0, 1.0 / np.where(tiny, 1.0, denominator))
        unscaled = eigenvectors * per_direction
        spread = output_std(stats, mean, unscaled)
        self.components_ = eigenvectors.T
        self.singular_values_ = np.sqrt(squared)
        self.shrinkage_ = np.sqrt(squared / np.where(tiny, 1.0, squared + self.lam))
        self.scale_ = float(self.gamma / spread) if spread > 0 else 1.0
        return mean, unscaled * self.scale_

"""Full and group-wise (relaxed) whitening: WhitenRec and WhitenRec+."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from scipy.linalg import block_diag

from ._base import _MomentReshaper
from ._compat import Interval, StrOptions
from ._spectral import MomentStatistics
from ._validation import check_n_components


class WhiteningTransformer(_MomentReshaper):
    """Whiten an embedding matrix, fully or within groups of columns (WhitenRec, WhitenRec+).

    Full whitening centres the rows and maps them to coordinates with identity covariance,
    removing anisotropy entirely. ``method="pca"`` keeps the principal coordinates (and can
    truncate to ``n_components``); ``method="zca"`` rotates back to the original axes.
    Relaxed whitening (``n_groups=G``) splits the columns into ``G`` contiguous groups and
    whitens each group on its own, which keeps some of the original correlation structure.
    WhitenRec+ feeds both a full and a group-whitened table through one adapter.

    Read more in the :ref:`User Guide <baselines>`.

    Parameters
    ----------
    n_components : int or None, default=None
        Keep only the top principal directions (full whitening only). None keeps all.
    method : {"pca", "zca"}, default="pca"
        Principal-coordinate whitening, or ZCA (rotated back to the input axes).
    n_groups : int or None, default=None
        Number of contiguous column groups whitened separately. None (or 1) whitens the
        whole matrix. Must divide ``n_features``.
    eps : float, default=1e-6
        Added to each covariance eigenvalue before the inverse square root, so that
        directions without variance are not blown up.

    Attributes
    ----------
    n_groups_ : int
        Number of groups used (1 for full whitening).
    eigenvalues_ : ndarray of shape ``(n_groups_, n_features // n_groups_)``
        Covariance eigenvalues (ddof 0) of each group, descending.
    projection_ : ndarray of shape (n_features, n_features_out)
        Block-diagonal whitening map.
    mean_ : ndarray of shape (n_features,)
        Column means of the fitted matrix.
    offset_ : ndarray of shape (n_features_out,)
        ``mean_ @ projection_``.
    n_samples_seen_ : int
        Number of rows the fit used.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape ``(n_features_in_,)``
        Names of features seen during fit, when ``X`` has string column names.

    See Also
    --------
    ACETransformer : Partial whitening controlled by ``lam``.

    Notes
    -----
    Larger than memory or on the GPU: ``fit`` and ``transform`` take dask arrays (a blockwise
    fit on the active dask scheduler, a lazy transform) and, under
    ``sklearn.set_config(array_api_dispatch=True)``, torch tensors that stay on their
    device; see :ref:`scaling`.

    References
    ----------
    .. [1] Zhang et al., "Empowering sequential recommendation from collaborative signals
       and semantic relatedness" (WhitenRec), ICDE 2024.

    Examples
    --------
    >>> import numpy as np
    >>> from ace_transform import WhiteningTransformer
    >>> rng = np.random.default_rng(0)
    >>> E = rng.standard_normal((500, 8)) @ rng.standard_normal((8, 8))
    >>> Z = WhiteningTransformer(eps=0.0).fit_transform(E)
    >>> bool(np.allclose(np.cov(Z.T, ddof=0), np.eye(8), atol=1e-8))
    True
    >>> Zg = WhiteningTransformer(method="zca", n_groups=2, eps=0.0).fit_transform(E)
    >>> bool(np.allclose(np.cov(Zg[:, :4].T, ddof=0), np.eye(4), atol=1e-8))
    True
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left"), None],
        "method": [StrOptions({"pca", "zca"})],
        "n_groups": [Interval(Integral, 1, None, closed="left"), None],
        "eps": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(self, n_components=None, *, method="pca", n_groups=None, eps=1e-6):
        self.n_components = n_components
        self.method = method
        self.n_groups = n_groups
        self.eps = eps

    def _fit_statistics(self, stats: MomentStatistics):
        n_features = stats.gram.shape[0]
        n_groups = 1 if self.n_groups is None else self.n_groups
        if n_features % n_groups:
            divisors = [g for g in range(1, n_features + 1) if n_features % g == 0]
            raise ValueError(
                f"n_groups={n_groups} does not divide n_features={n_features}; choose one of "
                f"{divisors[:12]}{' ...' if len(divisors) > 12 else ''}."
            )
        if self.n_components is not None:
            if n_groups > 1:
                raise ValueError(
                    "n_components truncates full whitening only; set n_components=None when "
                    f"n_groups={n_groups}."
                )
            check_n_components(self.n_components, stats.n_samples, n_features)

        width = n_features // n_groups
        covariance = stats.scatter(True) / stats.n_samples
        group = np.arange(n_groups)
        blocks = covariance.reshape(n_groups, width, n_groups, width)[group, :, group, :]
        eigenvalues, eigenvectors = np.linalg.eigh(blocks)
        eigenvalues, eigenvectors = eigenvalues[:, ::-1], eigenvectors[:, :, ::-1]
        if self.n_components is not None:
            eigenvalues = eigenvalues[:, : self.n_components]
            eigenvectors = eigenvectors[:, :, : self.n_components]
        largest = np.take_along_axis(
            eigenvectors, np.abs(eigenvectors).argmax(axis=1)[:, None, :], axis=1
        )
        eigenvectors = eigenvectors * np.where(largest < 0, -1.0, 1.0)

        with np.errstate(divide="ignore"):
            inverse_root = 1.0 / np.sqrt(np.clip(eigenvalues, 0.0, None) + self.eps)
        inverse_root[~np.isfinite(inverse_root)] = 0.0
        maps = eigenvectors * inverse_root[:, None, :]
        if self.method == "zca":
            maps = maps @ eigenvectors.transpose(0, 2, 1)

        self.n_groups_ = n_groups
        self.eigenvalues_ = np.clip(eigenvalues, 0.0, None)
        return stats.mean, block_diag(*maps)

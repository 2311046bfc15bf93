"""Tune reshapers the scikit-learn way: intrinsic scorers, a splitter and a ``lam`` path.

The scorers are callables ``scorer(estimator, X, y=None) -> float`` (greater is better), so
they go straight into :class:`~sklearn.model_selection.GridSearchCV`'s ``scoring``. They
transform the rows they are given with the fitted estimator, so an ordinary
:class:`~sklearn.model_selection.KFold` over items scores held-out items. A scorer that
trains a recommender lives in :mod:`recmodels.tuning`.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.utils import Bunch
from sklearn.utils.validation import check_is_fitted

from ._ace import ACETransformer
from .diagnostics import (
    effective_rank,
    mean_pairwise_cosine,
    neighbor_overlap,
    normalized_spectrum,
    top_direction_share,
)

__all__ = [
    "CombinedScorer",
    "IsotropyScorer",
    "ScaledPreservationScorer",
    "SemanticPreservationScorer",
    "WholeCatalogueSplit",
    "get_scorer",
    "lam_path",
]


def _transformed(estimator, X) -> tuple[np.ndarray, np.ndarray]:
    check_is_fitted(estimator, msg=(
        f"This {type(estimator).__name__} is not fitted yet; a scorer needs a fitted "
        "estimator. Call fit first, or pass the scorer to GridSearchCV, which fits it."
    ))
    X = np.asarray(X)
    return X, np.asarray(estimator.transform(X))


class IsotropyScorer:
    """Score how evenly a transform spreads variance: effective rank over output width.

    ``exp(entropy)`` of the normalised eigenvalue spectrum of the transformed rows, divided
    by the number of output columns: 1.0 for a perfectly whitened output, ``1 / width`` when
    one direction holds all the variance.

    Parameters
    ----------
    center : bool, default=True
        Centre the transformed rows before taking the spectrum.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.model_selection import GridSearchCV
    >>> from ace_transform import ACETransformer
    >>> from ace_transform.model_selection import IsotropyScorer
    >>> rng = np.random.default_rng(0)
    >>> E = rng.standard_normal((400, 32)) * np.geomspace(1, 0.01, 32)
    >>> search = GridSearchCV(ACETransformer(8), {"lam": [0.0, 100.0, 1000.0]},
    ...                       scoring=IsotropyScorer(), cv=3).fit(E)
    >>> search.best_params_
    {'lam': 0.0}
    """

    def __init__(self, *, center: bool = True) -> None:
        self.center = center

    def __call__(self, estimator, X, y=None) -> float:
        _, Y = _transformed(estimator, X)
        return effective_rank(Y, center=self.center) / Y.shape[1]

    def __repr__(self) -> str:
        return f"IsotropyScorer(center={self.center})"


class SemanticPreservationScorer:
    """Score how well a transform keeps each item's cosine neighbours.

    The mean overlap of the top ``n_neighbors`` cosine neighbours of each (sampled) row
    before and after the transform, as in :func:`~ace_transform.neighbor_overlap`.

    Parameters
    ----------
    n_neighbors : int, default=10
    max_queries : int or None, default=1000
        Rows sampled as queries (each scored against all rows given to the scorer).
    random_state : int, default=0

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.model_selection import GridSearchCV
    >>> from ace_transform import ACETransformer
    >>> from ace_transform.model_selection import SemanticPreservationScorer
    >>> rng = np.random.default_rng(0)
    >>> E = rng.standard_normal((400, 32)) * np.geomspace(1, 0.01, 32)
    >>> search = GridSearchCV(ACETransformer(8), {"lam": [0.0, 100.0, 1000.0]},
    ...                       scoring=SemanticPreservationScorer(), cv=3).fit(E)
    >>> search.best_params_
    {'lam': 1000.0}
    """

    def __init__(self, *, n_neighbors: int = 10, max_queries: int | None = 1000,
                 random_state: int = 0) -> None:
        self.n_neighbors, self.max_queries = n_neighbors, max_queries
        self.random_state = random_state

    def __call__(self, estimator, X, y=None) -> float:
        return self._score(*_transformed(estimator, X))

    def _score(self, X, Y) -> float:
        return neighbor_overlap(X, Y, n_neighbors=self.n_neighbors,
                                max_queries=self.max_queries, random_state=self.random_state)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(n_neighbors={self.n_neighbors}, "
                f"max_queries={self.max_queries})")


class CombinedScorer:
    """Trade isotropy against semantic preservation: ``iso**weight * sem**(1 - weight)``.

    A weighted geometric mean, so a transform must do well on both to score well, and
    ``weight`` moves the optimum from "keep the neighbours" (0) to "whiten" (1).

    Parameters
    ----------
    weight : float in [0, 1], default=0.5
        Weight of isotropy.
    n_neighbors, max_queries, random_state
        Passed to :class:`SemanticPreservationScorer`.

    Examples
    --------
    >>> import numpy as np
    >>> from ace_transform import ACETransformer
    >>> from ace_transform.model_selection import CombinedScorer
    >>> E = np.random.default_rng(0).standard_normal((300, 16)) * np.geomspace(1, 0.01, 16)
    >>> ace = ACETransformer(8, lam=1.0).fit(E)
    >>> 0.0 < CombinedScorer(weight=0.5)(ace, E) < 1.0
    True
    """

    def __init__(self, *, weight: float = 0.5, n_neighbors: int = 10,
                 max_queries: int | None = 1000, random_state: int = 0) -> None:
        if not isinstance(weight, Real) or not 0.0 <= weight <= 1.0:
            raise ValueError(f"weight={weight!r} must be a number in [0, 1].")
        self.weight = float(weight)
        self.isotropy = IsotropyScorer()
        self.preservation = SemanticPreservationScorer(
            n_neighbors=n_neighbors, max_queries=max_queries, random_state=random_state)

    def __call__(self, estimator, X, y=None) -> float:
        X, Y = _transformed(estimator, X)
        isotropy = effective_rank(Y) / Y.shape[1]
        kept = self.preservation._score(X, Y)
        return float(isotropy**self.weight * kept ** (1.0 - self.weight))

    def __repr__(self) -> str:
        return f"CombinedScorer(weight={self.weight})"


class ScaledPreservationScorer(SemanticPreservationScorer):
    """Semantic preservation discounted by the initial logit scale of the table.

    ``overlap / (1 + s**2)`` with ``overlap`` the neighbour overlap of
    :class:`SemanticPreservationScorer` and ``s = std(Y) * sqrt(width)``, the standard
    deviation of a dot product between a unit-variance state and a row of the table: the
    spread of a backbone's first logits when the table initialises its tied output layer.
    The isotropy and preservation scores ignore ``gamma`` (a global scale); this one
    prefers tables that keep neighbourhoods *and* start with soft logits. We proposed it
    after the Beauty grid of ``benchmarks/tune_ace.py``, where ``gamma`` mattered most
    (see the results page); treat it as a hypothesis to check on your data.

    Parameters
    ----------
    n_neighbors : int, default=10
    max_queries : int or None, default=1000
    random_state : int, default=0

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.model_selection import GridSearchCV
    >>> from ace_transform import ACETransformer
    >>> from ace_transform.model_selection import ScaledPreservationScorer
    >>> E = np.random.default_rng(0).standard_normal((400, 32)) * np.geomspace(1, 0.01, 32)
    >>> search = GridSearchCV(ACETransformer(8), {"lam": [0.0, 1000.0], "gamma": [0.1, 1.0]},
    ...                       scoring=ScaledPreservationScorer(), cv=3).fit(E)
    >>> search.best_params_
    {'gamma': 0.1, 'lam': 1000.0}
    """

    def _score(self, X, Y) -> float:
        logit_scale = float(Y.std()) * np.sqrt(Y.shape[1])
        return float(super()._score(X, Y) / (1.0 + logit_scale**2))


_SCORERS = {
    "isotropy": IsotropyScorer,
    "semantic_preservation": SemanticPreservationScorer,
    "combined": CombinedScorer,
    "scaled_preservation": ScaledPreservationScorer,
}


def get_scorer(name: str, **params):
    """Intrinsic scorer by name.

    ``"isotropy"``, ``"semantic_preservation"``, ``"combined"`` or ``"scaled_preservation"``.

    Parameters
    ----------
    name : str
    **params
        Keyword arguments of the scorer's class.

    Examples
    --------
    >>> from ace_transform.model_selection import get_scorer
    >>> get_scorer("combined", weight=0.3)
    CombinedScorer(weight=0.3)
    """
    if name not in _SCORERS:
        raise ValueError(
            f"Unknown scorer {name!r}; choose one of {sorted(_SCORERS)} (or pass a "
            "recmodels.tuning.DownstreamScorer for a trained-model score)."
        )
    return _SCORERS[name](**params)


class WholeCatalogueSplit:
    """A cross-validator with one split that fits and scores on every row.

    Use it when the transform must see the whole catalogue, as when a downstream scorer
    trains a recommender on all items: ``GridSearchCV(..., cv=WholeCatalogueSplit())``.

    Examples
    --------
    >>> import numpy as np
    >>> from ace_transform.model_selection import WholeCatalogueSplit
    >>> [(train.size, test.size) for train, test in WholeCatalogueSplit().split(np.ones((5, 2)))]
    [(5, 5)]
    """

    def get_n_splits(self, X=None, y=None, groups=None) -> int:
        """Always 1."""
        return 1

    def split(self, X, y=None, groups=None):
        """Yield ``(all rows, all rows)`` once."""
        rows = np.arange(len(X))
        yield rows, rows

    def __repr__(self) -> str:
        return "WholeCatalogueSplit()"


def lam_path(X, lams, *, n_components: int = 128, gamma: float = 0.1, center: bool = False,
             n_neighbors: int = 10, max_queries: int | None = 1000) -> Bunch:
    """Spectra and diagnostics of ACE's output along a grid of ``lam``, without training.

    The eigenproblem is solved once; each ``lam`` only reweights the kept directions, so a
    long grid costs one fit plus ``O(n * n_components)`` per value.

    Parameters
    ----------
    X : array-like of shape (n_items, n_features)
    lams : sequence of float
        Values of ``lam`` (each >= 0).
    n_components, gamma, center
        As in :class:`~ace_transform.ACETransformer`.
    n_neighbors, max_queries
        For the neighbour overlap with the input.

    Returns
    -------
    result : Bunch
        ``diagnostics``: DataFrame indexed by ``lam`` with ``isotropy``, ``effective_rank``,
        ``top_direction_share``, ``mean_pairwise_cosine`` and ``neighbor_overlap``;
        ``spectra``: DataFrame with one column of normalised eigenvalues per ``lam`` (and
        ``"input"`` for ``X``'s own top directions).

    Examples
    --------
    >>> import numpy as np
    >>> from ace_transform.model_selection import lam_path
    >>> E = np.random.default_rng(0).standard_normal((300, 24)) * np.geomspace(1, 0.01, 24)
    >>> path = lam_path(E, [0.0, 10.0, 1000.0], n_components=8)
    >>> bool(path.diagnostics["isotropy"].is_monotonic_decreasing)
    True
    >>> path.spectra.shape
    (8, 4)
    """
    lams = [float(lam) for lam in lams]
    if not lams or min(lams) < 0:
        raise ValueError(f"lams={lams!r} must be a non-empty sequence of values >= 0.")
    if not isinstance(n_components, Integral):
        raise ValueError(f"n_components={n_components!r} must be an integer.")
    whitened_fit = clone(ACETransformer(n_components, lam=0.0, gamma=1.0, center=center))
    whitened = whitened_fit.fit_transform(X)
    X = np.asarray(X)
    # On the fitted rows ACE(lam) = U_k diag(g_lam(s)) * scale, and the lam=0 output is
    # U_k * scale_0 (directions with s = 0 are already zeroed), so reweighting is exact.
    squared = whitened_fit.singular_values_.astype(np.float64) ** 2
    rows, spectra = [], {"input": normalized_spectrum(X, center=center)[:whitened.shape[1]]}
    for lam in lams:
        weights = np.sqrt(squared / np.where(squared + lam > 0, squared + lam, 1.0))
        Y = whitened * weights.astype(whitened.dtype)
        spread = Y.std()
        Y *= np.asarray(gamma / spread if spread > 0 else 1.0, dtype=Y.dtype)
        spectrum = normalized_spectrum(Y, center=center)
        spectra[lam] = spectrum
        rows.append({
            "lam": lam,
            "isotropy": effective_rank(Y) / Y.shape[1],
            "effective_rank": effective_rank(Y),
            "top_direction_share": top_direction_share(Y),
            "mean_pairwise_cosine": mean_pairwise_cosine(Y),
            "neighbor_overlap": neighbor_overlap(X, Y, n_neighbors=n_neighbors,
                                                 max_queries=max_queries),
        })
    return Bunch(diagnostics=pd.DataFrame(rows).set_index("lam"),
                 spectra=pd.DataFrame(spectra))

"""How each compared method turns the item embedding matrix into a backbone's item table."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import Normalizer

from ace_transform import (
    ACETransformer,
    AlphaFuseSplitter,
    PCAInit,
    RecPCA,
    WhiteningTransformer,
)

from ..data import SequenceData
from ..item_table import AdapterTable, AlphaFuseTable, ItemTable, TrainableTable

Builder = Callable[[np.ndarray, SequenceData, int, dict], ItemTable]


@dataclass(frozen=True)
class Method:
    """A compared method: its item-table builder, learning rate and default settings."""

    build: Builder
    lr: float
    defaults: dict


def _init(matrix: np.ndarray, hidden: int) -> TrainableTable:
    return TrainableTable(matrix.shape[0], hidden, init=matrix.astype(np.float32))


def _id(E, data, hidden, p):
    return TrainableTable(data.n_items, hidden)


def _ace(E, data, hidden, p):
    return _init(ACETransformer(hidden, lam=p["lam"], gamma=p["gamma"],
                                center=p["center"]).fit_transform(E), hidden)


def _pca(E, data, hidden, p):
    return _init(PCAInit(hidden, target_std=p["target_std"]).fit_transform(E), hidden)


def _recpca(E, data, hidden, p):
    pipe = make_pipeline(Normalizer(), RecPCA(hidden, beta=p["beta"], window=p["window"],
                                              target_std=p["target_std"]))
    return _init(pipe.fit_transform(E, recpca__sequences=data.train_sequences()), hidden)


def _whiten(E, data, hidden, p):
    return AdapterTable([WhiteningTransformer(method="zca").fit_transform(E)], hidden)


def _whitenplus(E, data, hidden, p):
    full = WhiteningTransformer(method="zca").fit_transform(E)
    groups = WhiteningTransformer(method="zca", n_groups=p["n_groups"]).fit_transform(E)
    return AdapterTable([full, groups], hidden)


def _alpharec(E, data, hidden, p):
    return AdapterTable([E], hidden, activation="leaky_relu")


def _llmemb(E, data, hidden, p):
    width = min(p["pca_dim"], *E.shape)
    return AdapterTable([PCAInit(width).fit_transform(E)], hidden, activation="linear")


def _alphafuse(E, data, hidden, p):
    splitter = AlphaFuseSplitter(hidden, null_dim=p["null_dim"] or hidden // 2)
    return AlphaFuseTable(splitter.fit_transform(E), splitter.null_slots_)


METHODS: dict[str, Method] = {
    "id": Method(_id, 1e-3, {}),
    "pca": Method(_pca, 1e-3, {"target_std": None}),
    "whiten": Method(_whiten, 1e-3, {}),
    "whitenplus": Method(_whitenplus, 1e-3, {"n_groups": 8}),
    "alpharec": Method(_alpharec, 1e-3, {}),
    "llmemb": Method(_llmemb, 1e-3, {"pca_dim": 1536}),
    "alphafuse": Method(_alphafuse, 1e-3, {"null_dim": None}),
    "recpca": Method(_recpca, 1e-3, {"beta": 0.5, "window": 3, "target_std": 0.1}),
    "ace": Method(_ace, 5e-4, {"lam": 50.0, "gamma": 0.1, "center": False}),
}


def build_table(name: str, E: np.ndarray, data: SequenceData, hidden: int,
                overrides: dict | None = None) -> ItemTable:
    """Item table of method ``name`` from the aligned matrix ``E`` (one row per item).

    Parameters
    ----------
    name : str
        A key of :data:`METHODS`: ``id``, ``pca``, ``whiten``, ``whitenplus``, ``alpharec``,
        ``llmemb``, ``alphafuse``, ``recpca`` or ``ace``.
    E : ndarray of shape (n_items, n_features)
        Item embeddings in model order (``data.align(matrix)``).
    data : SequenceData
    hidden : int
        The backbone's hidden size.
    overrides : dict, optional
        Settings that replace the method's defaults, e.g. ``{"lam": 10.0}`` for ACE.

    Returns
    -------
    ItemTable

    Examples
    --------
    >>> import numpy as np
    >>> from recmodels import build_sequences
    >>> from recmodels.datasets import make_interactions
    >>> log = make_interactions(n_users=12, n_items=9)
    >>> data = build_sequences(log, k_core=1)
    >>> E = np.random.default_rng(0).standard_normal((data.n_items, 32)).astype(np.float32)
    >>> from recmodels.comparison import build_table
    >>> table = build_table("ace", E, data, 8, {"lam": 10.0})
    >>> tuple(table().shape), round(float(table()[1:].detach().std(correction=0)), 3)
    ((10, 8), 0.1)
    >>> build_table("ace", E, data, 8, {"alpha": 1.0})
    Traceback (most recent call last):
    ...
    ValueError: method 'ace' has no setting(s) ['alpha']; it takes ['center', 'gamma', 'lam'].
    """
    method = METHODS[name]
    params = {**method.defaults, **(overrides or {})}
    unknown = set(params) - set(method.defaults)
    if unknown:
        raise ValueError(f"method {name!r} has no setting(s) {sorted(unknown)}; it takes "
                         f"{sorted(method.defaults) or 'none'}.")
    return method.build(E, data, hidden, params)

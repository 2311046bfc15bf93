"""How each compared method turns the item embedding matrix into a backbone's item table."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import Normalizer

from ace_transform import (
    ACETransformer,
    AlphaFuseSplitter,
    PCAInit,
    RecPCA,
)

from ..data import SequenceData
from ..item_table import AdapterTable, AlphaFuseTable, ItemTable, TrainableTable

Builder = Callable[[np.ndarray, SequenceData, int, dict], ItemTable]


@dataclass(frozen=True)
class Method:
    """A compared method: its item-table builder and default settings.

    The learning rate is not a property of the method: ``ace-bench`` chooses it per method
    from a grid on validation (or takes one rate for all).
    """

    build: Builder
    defaults: dict
    backbone_settings: dict[str, dict] = field(default_factory=dict)
    """Backbone arguments the reference code sets for this method, per backbone name."""


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


def zca_view(E: np.ndarray, n_groups: int = 1) -> np.ndarray:
    """WhitenRec's frozen view as the reference code computes it: ``U V^T`` of centred ``E``.

    The columns are centred (padding is not a row here), split into ``n_groups``
    contiguous groups, and each group ``U_g S_g V_g^T`` (thin SVD) is replaced by
    ``U_g V_g^T``; the groups are concatenated. That is ZCA whitening scaled to an identity
    Gram matrix (each group's columns are orthonormal), so the entries' root mean square is
    ``1 / sqrt(n_items)``, not 1 (it equals ``WhiteningTransformer(method="zca", eps=0)``'s
    output divided by ``sqrt(n_items)``). Directions without variance (numerical rank below
    the width) are left out rather than blown up.

    Examples
    --------
    >>> import numpy as np
    >>> from recmodels.comparison.methods import zca_view
    >>> E = np.random.default_rng(0).standard_normal((100, 8))
    >>> view = zca_view(E, n_groups=2)
    >>> bool(np.allclose(view[:, :4].T @ view[:, :4], np.eye(4), atol=1e-5))
    True
    >>> round(float(np.sqrt(np.mean(view ** 2))), 4)
    0.1
    """
    X = np.asarray(E, dtype=np.float64)
    width = X.shape[1]
    if n_groups < 1 or width % n_groups:
        divisors = [g for g in range(1, width + 1) if width % g == 0]
        raise ValueError(f"n_groups={n_groups} does not divide the embedding width {width}; "
                         f"choose one of {divisors[:12]}{' ...' if len(divisors) > 12 else ''}.")
    X = X - X.mean(axis=0)
    blocks = []
    for block in np.split(X, n_groups, axis=1):
        U, S, Vt = np.linalg.svd(block, full_matrices=False)
        tolerance = S[0] * max(block.shape) * np.finfo(np.float64).eps if S.size else 0.0
        rank = int((S > tolerance).sum())
        blocks.append(U[:, :rank] @ Vt[:rank])
    return np.hstack(blocks).astype(np.float32)


def _adapter(views, hidden, p, activation):
    return AdapterTable(views, hidden, activation=activation, init=p["adapter_init"])


def _whiten(E, data, hidden, p):
    return _adapter([zca_view(E)], hidden, p, "relu")


def _whitenplus(E, data, hidden, p):
    return _adapter([zca_view(E), zca_view(E, p["n_groups"])], hidden, p, "relu")


def _alpharec(E, data, hidden, p):
    return _adapter([E], hidden, p, "leaky_relu")


def _llmemb(E, data, hidden, p):
    width = min(p["pca_dim"], *E.shape)
    return _adapter([PCAInit(width).fit_transform(E)], hidden, p, "linear")


def _alphafuse(E, data, hidden, p):
    splitter = AlphaFuseSplitter(hidden, null_dim=p["null_dim"] or hidden // 2)
    return AlphaFuseTable(splitter.fit_transform(E), splitter.null_slots_,
                          init=p["residual_init"])


METHODS: dict[str, Method] = {
    "id": Method(_id, {}),
    # The reference's LLM2X and AlphaFuse GRU4Rec model files set dropout_prob 0.3.
    "pca": Method(_pca, {"target_std": None}, {"gru4rec": {"dropout": 0.3}}),
    "whiten": Method(_whiten, {"adapter_init": "normal"}),
    "whitenplus": Method(_whitenplus, {"n_groups": 8, "adapter_init": "normal"}),
    "alpharec": Method(_alpharec, {"adapter_init": "normal"}),
    "llmemb": Method(_llmemb, {"pca_dim": 1536, "adapter_init": "normal"}),
    "alphafuse": Method(_alphafuse, {"null_dim": None, "residual_init": "normal"},
                        {"gru4rec": {"dropout": 0.3}}),
    "recpca": Method(_recpca, {"beta": 0.5, "window": 3, "target_std": 0.1}),
    "ace": Method(_ace, {"lam": 50.0, "gamma": 0.1, "center": False}),
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

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

# (E, data, hidden size, settings, warm): ``warm`` is None, or the boolean mask of the rows
# a reshaper may be fitted on (the cold-start protocol's warm items).
Builder = Callable[[np.ndarray, SequenceData, int, dict, "np.ndarray | None"], ItemTable]


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
    backbone_defaults: dict[str, dict] = field(default_factory=dict)
    """Method settings the reference code uses on a backbone, in place of ``defaults``."""
    reshapes_to_hidden: bool = False
    """Whether the table is the embeddings reshaped to the hidden size (so needs at least
    that many columns), rather than an ID table or an adapter of any width."""

    def settings(self, backbone: str | None = None, overrides: dict | None = None) -> dict:
        """The settings a table is built with: defaults < the backbone's < ``overrides``."""
        return {**self.defaults, **self.backbone_defaults.get(backbone, {}), **(overrides or {})}

    @property
    def known_settings(self) -> dict:
        """Every setting the method takes, with a default value (the plain one first)."""
        known: dict = {}
        for values in (*self.backbone_defaults.values(), self.defaults):
            known.update(values)
        return known


def _init(matrix: np.ndarray, hidden: int) -> TrainableTable:
    return TrainableTable(matrix.shape[0], hidden, init=matrix.astype(np.float32))


def _reshape(estimator, E: np.ndarray, warm: np.ndarray | None, **fit_params) -> np.ndarray:
    """Every row of ``E`` reshaped; fitted on the ``warm`` rows only when they are given.

    Without ``warm`` this is ``fit_transform(E)``, as before the cold-start protocol; with
    it the estimator never sees the other rows, which it maps with ``transform``.
    """
    if warm is None:
        return estimator.fit_transform(E, **fit_params)
    return estimator.fit(E[warm], **fit_params).transform(E)


def _warm_sequences(data: SequenceData, warm: np.ndarray | None) -> list[np.ndarray]:
    """Training sequences as row indices of the matrix the reshaper is fitted on."""
    sequences = data.train_sequences()
    if warm is None or not sequences:
        return sequences
    position = np.cumsum(warm) - 1  # row of the full matrix -> row among the warm rows
    flat = np.concatenate(sequences)
    if not warm[flat].all():
        raise ValueError("the training sequences hold items outside the warm rows; build "
                         "the data with recmodels.cold_start.cold_start_split.")
    return np.split(position[flat], np.cumsum([s.size for s in sequences])[:-1])


def _id(E, data, hidden, p, warm):
    if p.get("init", "normal") not in ("normal", "xavier"):
        raise ValueError(f"init={p['init']!r} must be one of ['normal', 'xavier'].")
    if p.get("init", "normal") == "xavier":
        # RecBole's GRU4Rec: xavier_normal_ on the (n_items + 1) x hidden embedding.
        return TrainableTable(data.n_items, hidden,
                              init_std=float(np.sqrt(2.0 / (data.n_items + 1 + hidden))))
    return TrainableTable(data.n_items, hidden)


def _ace(E, data, hidden, p, warm):
    return _init(_reshape(ACETransformer(hidden, lam=p["lam"], gamma=p["gamma"],
                                         center=p["center"]), E, warm), hidden)


def _pca(E, data, hidden, p, warm):
    return _init(_reshape(PCAInit(hidden, target_std=p["target_std"]), E, warm), hidden)


def _recpca(E, data, hidden, p, warm):
    pipe = make_pipeline(Normalizer(), RecPCA(hidden, beta=p["beta"], window=p["window"],
                                              target_std=p["target_std"]))
    return _init(_reshape(pipe, E, warm, recpca__sequences=_warm_sequences(data, warm)),
                 hidden)


def zca_view(E: np.ndarray, n_groups: int = 1, *,
             fit_rows: np.ndarray | None = None) -> np.ndarray:
    """WhitenRec's frozen view as the reference code computes it: ``U V^T`` of centred ``E``.

    The columns are centred (padding is not a row here), split into ``n_groups``
    contiguous groups, and each group ``U_g S_g V_g^T`` (thin SVD) is replaced by
    ``U_g V_g^T``; the groups are concatenated. That is ZCA whitening scaled to an identity
    Gram matrix (each group's columns are orthonormal), so the entries' root mean square is
    ``1 / sqrt(n_items)``, not 1 (it equals ``WhiteningTransformer(method="zca", eps=0)``'s
    output divided by ``sqrt(n_items)``). Directions without variance (numerical rank below
    the width) are left out rather than blown up.

    ``fit_rows`` (a boolean mask over the rows) fits the view on those rows only: their
    view is ``U V^T`` of the centred fitted rows, as above, and every other row ``x`` gets
    the same linear map, ``(x - mean) V diag(1/S) V^T`` (the cold-start protocol's new
    items).

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
    fit = slice(None) if fit_rows is None else np.asarray(fit_rows, dtype=bool)
    X = X - X[fit].mean(axis=0)
    blocks = []
    for block in np.split(X, n_groups, axis=1):
        U, S, Vt = np.linalg.svd(block[fit], full_matrices=False)
        tolerance = S[0] * max(block[fit].shape) * np.finfo(np.float64).eps if S.size else 0.0
        rank = int((S > tolerance).sum())
        if fit_rows is None:
            blocks.append(U[:, :rank] @ Vt[:rank])
            continue
        view = block @ (Vt[:rank].T / S[:rank]) @ Vt[:rank]
        view[fit] = U[:, :rank] @ Vt[:rank]  # exactly the rows' U V^T, as without fit_rows
        blocks.append(view)
    return np.hstack(blocks).astype(np.float32)


def _adapter(views, hidden, p, activation):
    return AdapterTable(views, hidden, activation=activation, init=p["adapter_init"])


def _whiten(E, data, hidden, p, warm):
    return _adapter([zca_view(E, fit_rows=warm)], hidden, p, "relu")


def _whitenplus(E, data, hidden, p, warm):
    return _adapter([zca_view(E, fit_rows=warm), zca_view(E, p["n_groups"], fit_rows=warm)],
                    hidden, p, "relu")


def _alpharec(E, data, hidden, p, warm):
    return _adapter([E], hidden, p, "leaky_relu")  # raw rows: nothing is fitted


def _llmemb(E, data, hidden, p, warm):
    width = min(p["pca_dim"], E.shape[0] if warm is None else int(warm.sum()), E.shape[1])
    return _adapter([_reshape(PCAInit(width), E, warm)], hidden, p, "linear")


def _alphafuse(E, data, hidden, p, warm):
    splitter = AlphaFuseSplitter(hidden, null_dim=p["null_dim"] or hidden // 2)
    # Nothing is learned about a cold item: its residual stays zero, its row is semantic.
    zero_rows = None if warm is None else np.flatnonzero(~warm)
    return AlphaFuseTable(_reshape(splitter, E, warm), splitter.null_slots_,
                          init=p["residual_init"], zero_rows=zero_rows)


# The reference GRU4Rec variants of whitening, WhitenRec+ and AlphaRec draw their adapters
# and the backbone's output layer Xavier-normal; its LLMEmb variant leaves the adapter at
# torch's defaults; RecBole's GRU4Rec draws the ID table Xavier-normal (docs/methods.rst).
_XAVIER_GRU = {"gru4rec": {"output_init": "xavier"}}
_XAVIER_ADAPTER = {"gru4rec": {"adapter_init": "xavier"}}

METHODS: dict[str, Method] = {
    "id": Method(_id, {}, backbone_defaults={"gru4rec": {"init": "xavier"}}),
    # The reference's LLM2X and AlphaFuse GRU4Rec model files set dropout_prob 0.3.
    "pca": Method(_pca, {"target_std": None}, {"gru4rec": {"dropout": 0.3}},
                  reshapes_to_hidden=True),
    "whiten": Method(_whiten, {"adapter_init": "normal"}, _XAVIER_GRU, _XAVIER_ADAPTER),
    "whitenplus": Method(_whitenplus, {"n_groups": 8, "adapter_init": "normal"}, _XAVIER_GRU,
                         _XAVIER_ADAPTER),
    "alpharec": Method(_alpharec, {"adapter_init": "normal"}, _XAVIER_GRU, _XAVIER_ADAPTER),
    "llmemb": Method(_llmemb, {"pca_dim": 1536, "adapter_init": "normal"},
                     backbone_defaults={"gru4rec": {"adapter_init": "torch"}}),
    "alphafuse": Method(_alphafuse, {"null_dim": None, "residual_init": "normal"},
                        {"gru4rec": {"dropout": 0.3}}, reshapes_to_hidden=True),
    "recpca": Method(_recpca, {"beta": 0.5, "window": 3, "target_std": 0.1},
                     reshapes_to_hidden=True),
    "ace": Method(_ace, {"lam": 50.0, "gamma": 0.1, "center": False},
                  reshapes_to_hidden=True),
}


def build_table(name: str, E: np.ndarray, data: SequenceData, hidden: int,
                overrides: dict | None = None, *, fit_rows: np.ndarray | None = None,
                backbone: str | None = None) -> ItemTable:
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
    fit_rows : ndarray of bool of shape (n_items,), optional
        Fit the reshaper on these rows only and map the others with its ``transform``
        (the cold-start protocol's warm items, :attr:`ColdStartSplit.warm_rows
        <recmodels.cold_start.ColdStartSplit.warm_rows>`). AlphaFuse's other rows get a
        zero ID residual; AlphaRec fits nothing. None fits on every row.
    backbone : str, optional
        The backbone the table is for: where the reference code initialises a method's
        table differently on it (GRU4Rec: Xavier-normal ID table and adapters), those
        settings replace the defaults; ``overrides`` still win.

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
    params = method.settings(backbone, overrides)
    unknown = set(params) - set(method.known_settings)
    if unknown:
        raise ValueError(f"method {name!r} has no setting(s) {sorted(unknown)}; it takes "
                         f"{sorted(method.known_settings) or 'none'}.")
    if fit_rows is not None:
        fit_rows = np.asarray(fit_rows, dtype=bool)
        if fit_rows.shape != (E.shape[0],) or fit_rows.sum() < 2:
            raise ValueError(f"fit_rows must be a boolean mask of shape ({E.shape[0]},) with "
                             f"at least 2 rows set; got shape {fit_rows.shape}. Pass "
                             "ColdStartSplit.warm_rows.")
    return method.build(E, data, hidden, params, fit_rows)

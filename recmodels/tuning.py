"""Score a fitted reshaper by the recommender it initialises: a downstream GridSearchCV scorer.

The intrinsic scorers (isotropy, semantic preservation) live in
:mod:`ace_transform.model_selection`; this one trains a backbone briefly from the
transformed item matrix and returns a validation metric, never a test one.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted, check_memory

from .data import SequenceData
from .item_table import TrainableTable
from .models import BACKBONES
from .trainer import Trainer

__all__ = ["DownstreamScorer"]


def _valid_score(table: np.ndarray, data: SequenceData, settings: dict, verbose: bool) -> float:
    """Train ``settings["backbone"]`` from ``table`` and return its best validation metric."""
    if settings["n_threads"] is not None:
        torch.set_num_threads(settings["n_threads"])
    torch.manual_seed(settings["seed"])
    model = BACKBONES[settings["backbone"]](
        TrainableTable(data.n_items, table.shape[1], init=table), max_len=settings["max_len"]
    )
    result = Trainer(
        model, data, lr=settings["lr"], batch_size=settings["batch_size"],
        max_epochs=settings["epochs"], patience=settings["patience"],
        metric=settings["metric"], seed=settings["seed"], device=settings["device"],
        verbose=verbose, window_stride=settings["window_stride"],
    ).fit(evaluate_test=False)
    return float(result.best_valid[settings["metric"]])


class DownstreamScorer:
    """GridSearchCV scorer: validation metric of a backbone trained from the transformed table.

    Called as ``scorer(estimator, X, y=None)`` it ignores ``X`` (the fold's rows) and
    transforms the whole item matrix given here with the fitted ``estimator``, so every item
    of ``data`` gets a row. Pair it with
    :class:`~ace_transform.model_selection.WholeCatalogueSplit` to fit the transform on the
    whole catalogue too, or with ``KFold`` to fit it on part of the items and map the rest
    as cold-start rows.

    Parameters
    ----------
    data : SequenceData
        Interactions with the leave-one-out split (:func:`~recmodels.build_sequences`).
    embeddings : array-like of shape (n_catalogue_items, n_features)
        The item matrix, one row per catalogue item (``data.embedding_rows`` index it).
    backbone : {"sasrec", "gru4rec", "bert4rec"}, default="sasrec"
    epochs : int, default=3
        Training cap per setting; early stopping may end sooner.
    patience : int, default=10
    metric : str, default="ndcg@10"
        Validation metric returned (``recall@K`` or ``ndcg@K``).
    lr : float, default=5e-4
    batch_size : int, default=256
    max_len : int, default=50
    seed : int, default=0
    device : str, default="auto"
    window_stride : int, default=1
    memory : str, joblib.Memory or None, default=None
        Cache of trained scores, keyed by the transformed table, the data and the settings:
        a repeated search (or a second scorer on the same setting) trains nothing twice.
    n_threads : int or None, default=None
        Torch threads per call; set it to ``cores / n_jobs`` when the search runs jobs in
        parallel.
    verbose : bool, default=True
        One line per scored setting (and the trainer's per-epoch lines) on stderr.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.model_selection import GridSearchCV
    >>> from ace_transform import ACETransformer
    >>> from ace_transform.model_selection import WholeCatalogueSplit
    >>> from recmodels import build_sequences
    >>> from recmodels.tuning import DownstreamScorer
    >>> from recmodels.datasets import make_interactions
    >>> log = make_interactions(n_users=30, n_items=12)
    >>> data = build_sequences(log, k_core=1)
    >>> E = np.random.default_rng(0).standard_normal((12, 24)).astype(np.float32)
    >>> scorer = DownstreamScorer(data, E, epochs=1, verbose=False)
    >>> search = GridSearchCV(ACETransformer(8), {"lam": [0.0, 50.0]}, scoring=scorer,
    ...                       cv=WholeCatalogueSplit()).fit(E)
    >>> sorted(search.best_params_)
    ['lam']
    """

    def __init__(self, data: SequenceData, embeddings, *, backbone: str = "sasrec",
                 epochs: int = 3, patience: int = 10, metric: str = "ndcg@10",
                 lr: float = 5e-4, batch_size: int = 256, max_len: int = 50, seed: int = 0,
                 device: str = "auto", window_stride: int = 1, memory=None,
                 n_threads: int | None = None, verbose: bool = True) -> None:
        if not isinstance(data, SequenceData):
            raise TypeError(f"data must be a SequenceData (from build_sequences), got "
                            f"{type(data).__name__}.")
        embeddings = np.asarray(embeddings)
        data.align(embeddings)  # fails early, naming the missing rows
        if backbone not in BACKBONES:
            raise ValueError(f"Unknown backbone {backbone!r}; choose one of {sorted(BACKBONES)}.")
        name, _, k = metric.partition("@")
        if name not in ("recall", "ndcg") or not k.isdigit():
            raise ValueError(f"Unknown metric {metric!r}; use 'ndcg@K' or 'recall@K', "
                             "for example 'ndcg@10'.")
        if int(epochs) < 1:
            raise ValueError(f"epochs={epochs} must be at least 1.")
        self.data, self.embeddings = data, embeddings
        self.settings = {
            "backbone": backbone, "epochs": int(epochs), "patience": int(patience),
            "metric": metric, "lr": float(lr), "batch_size": int(batch_size),
            "max_len": int(max_len), "seed": int(seed), "device": device,
            "window_stride": int(window_stride), "n_threads": n_threads,
        }
        self.memory = memory
        self.verbose = verbose

    def __call__(self, estimator, X=None, y=None) -> float:
        check_is_fitted(estimator, msg=(
            f"This {type(estimator).__name__} is not fitted yet; the downstream scorer needs "
            "a fitted estimator. Call fit first, or pass the scorer to GridSearchCV."
        ))
        table = np.asarray(estimator.transform(self.embeddings), dtype=np.float32)
        table = self.data.align(table)
        if not np.isfinite(table).all():
            raise ValueError(f"{estimator!r} produced non-finite rows; check its parameters.")
        started = time.perf_counter()
        score_fn = check_memory(self.memory).cache(_valid_score, ignore=["verbose"])
        score = score_fn(table, self.data, self.settings, self.verbose)
        if self.verbose:
            print(f"[DownstreamScorer] {_describe(estimator)}: valid "
                  f"{self.settings['metric']} {score:.4f} ({time.perf_counter() - started:.0f}s)",
                  file=sys.stderr, flush=True)
        return score

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self.settings.items())
        return f"DownstreamScorer({shown})"


def _describe(estimator) -> str:
    """The parameters that a grid usually varies, shortly."""
    params = estimator.get_params()
    shown = {k: v for k, v in params.items()
             if k.rsplit("__", 1)[-1] in ("lam", "gamma", "n_components", "center")}
    return ", ".join(f"{k}={v}" for k, v in shown.items()) or type(estimator).__name__

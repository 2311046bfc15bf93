"""Run every (method, backbone, seed) cell, resumably, and collect the results."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..data import SequenceData
from ..models import BACKBONES
from ..trainer import Trainer
from .methods import METHODS, build_table

COLUMNS = ["method", "backbone", "seed", "split", "recall@10", "ndcg@10", "recall@20",
           "ndcg@20", "recall@50", "ndcg@50", "epochs", "best_epoch", "seconds"]


@dataclass
class ComparisonPlan:
    """What to run and how long each cell may train.

    Examples
    --------
    >>> from recmodels.comparison import ComparisonPlan
    >>> plan = ComparisonPlan(methods=["id", "ace"], backbones=["sasrec"], seeds=[0, 1],
    ...                       hidden_size=64, max_epochs=20)
    >>> plan.patience, plan.lr is None
    (10, True)
    >>> ComparisonPlan(methods=["bm25"], backbones=["sasrec"], seeds=[0])
    Traceback (most recent call last):
    ...
    ValueError: unknown method(s) ['bm25']; choose from [...].
    """

    methods: list[str]
    backbones: list[str]
    seeds: list[int]
    hidden_size: int = 128
    max_len: int = 50
    max_epochs: int = 400
    patience: int = 10
    batch_size: int = 256
    lr: float | None = None
    device: str = "auto"
    window_stride: int = 1
    overrides: dict[str, dict] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for kind, names, known in (("method", self.methods, METHODS),
                                   ("backbone", self.backbones, BACKBONES)):
            unknown = [n for n in names if n not in known]
            if unknown:
                raise ValueError(f"unknown {kind}(s) {unknown}; choose from {sorted(known)}.")


def _write_atomic(frame: pd.DataFrame, path: Path) -> None:
    temporary = path.with_suffix(".tmp")
    frame.to_csv(temporary, index=False)
    os.replace(temporary, path)


def run_comparison(plan: ComparisonPlan, data: SequenceData, E: np.ndarray, out: Path,
                   *, verbose: bool = True) -> pd.DataFrame:
    """Train each cell not yet in ``out/results.csv``; returns all results.

    ``E`` holds one row per item of ``data`` (already aligned). A cell interrupted halfway
    resumes from its checkpoint; finished cells are never recomputed.

    Examples
    --------
    >>> import numpy as np
    >>> from recmodels import build_sequences
    >>> from recmodels.datasets import make_interactions
    >>> log = make_interactions(n_users=12, n_items=9)
    >>> data = build_sequences(log, k_core=1)
    >>> E = np.random.default_rng(0).standard_normal((data.n_items, 32)).astype(np.float32)
    >>> import tempfile, pathlib
    >>> from recmodels.comparison import ComparisonPlan, run_comparison
    >>> plan = ComparisonPlan(["id", "ace"], ["sasrec"], [0], hidden_size=8, max_len=5,
    ...                       max_epochs=1)
    >>> out = pathlib.Path(tempfile.mkdtemp())
    >>> results = run_comparison(plan, data, E, out, verbose=False)
    >>> results[["method", "split"]].values.tolist()
    [['id', 'valid'], ['id', 'test'], ['ace', 'valid'], ['ace', 'test']]
    >>> len(run_comparison(plan, data, E, out, verbose=False))  # finished cells are kept
    4
    """
    out.mkdir(parents=True, exist_ok=True)
    results_path = out / "results.csv"
    results = (pd.read_csv(results_path) if results_path.exists()
               else pd.DataFrame(columns=COLUMNS))
    done = set(zip(results["method"], results["backbone"], results["seed"].astype(int)))
    cells = [(m, b, s) for b in plan.backbones for m in plan.methods for s in plan.seeds]
    for number, (method, backbone, seed) in enumerate(cells, 1):
        if (method, backbone, seed) in done:
            continue
        if verbose:
            print(f"[{number}/{len(cells)}] {method} + {backbone}, seed {seed}",
                  file=sys.stderr, flush=True)
        torch.manual_seed(seed)
        table = build_table(method, E, data, plan.hidden_size, plan.overrides.get(method))
        model = BACKBONES[backbone](table, max_len=plan.max_len)
        checkpoint = out / "checkpoints" / f"{method}-{backbone}-{seed}.pt"
        started = time.perf_counter()
        result = Trainer(model, data, lr=plan.lr or METHODS[method].lr,
                         batch_size=plan.batch_size, max_epochs=plan.max_epochs,
                         patience=plan.patience, seed=seed, device=plan.device,
                         checkpoint_path=checkpoint, verbose=verbose,
                         window_stride=plan.window_stride).fit()
        seconds = time.perf_counter() - started
        rows = [{"method": method, "backbone": backbone, "seed": seed, "split": split,
                 **{k: metrics.get(k, np.nan) for k in COLUMNS[4:10]},
                 "epochs": result.epochs_run, "best_epoch": result.best_epoch,
                 "seconds": round(seconds, 1)}
                for split, metrics in (("valid", result.best_valid), ("test", result.test))]
        results = pd.concat([results, pd.DataFrame(rows)], ignore_index=True)
        _write_atomic(results[COLUMNS], results_path)
        checkpoint.unlink(missing_ok=True)
    return results

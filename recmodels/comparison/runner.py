"""Run every (method, backbone, seed) cell, resumably, and collect the results.

Each trained cell is identified by a fingerprint of everything that decides its outcome
(:func:`cell_settings`); a row of ``results.csv`` is reused only for the same fingerprint.
Without a fixed learning rate, every method's rate is chosen from a grid on the first
seed's validation NDCG@10, and the other seeds train at the chosen rate. Under the
cold-start protocol (:mod:`recmodels.comparison.cold`) each cell also writes rows of its
``"+map"`` variant and of the users whose test target is a new item (split ``"test-new"``).
"""

from __future__ import annotations

import inspect
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ace_transform import __version__

from ..cold_start import CHOICES, MAX_SHARE
from ..data import SequenceData
from ..models import BACKBONES
from ..models.base import CAUSAL_SEQUENCES
from ..provenance import array_digest, fingerprint, sequence_digest, settings_diff
from ..trainer import CheckpointMismatchError, Trainer, resolve_device
from .cold import PROTOCOLS, evaluate_cell, make_split, protocol_settings
from .methods import METHODS, build_table
from .runs import checkpoint_path, save_run, write_atomic

METRICS = ["recall@10", "ndcg@10", "recall@20", "ndcg@20", "recall@50", "ndcg@50"]
COLUMNS = ["method", "backbone", "seed", "lr", "selected", "split", *METRICS, "epochs",
           "best_epoch", "seconds", "lr_grid", "lr_valid", "fingerprint", "settings"]
TEXT_COLUMNS = {"fingerprint": str, "settings": str, "lr_grid": str, "lr_valid": str}
SELECTION_METRIC = "ndcg@10"
DEFAULT_LR_GRID = (1e-3, 5e-4, 1e-4)


@dataclass
class ComparisonPlan:
    """What to run and how each cell trains.

    ``lr`` fixes one learning rate for every method; without it each method's rate is
    chosen from ``lr_grid`` on the first seed's validation NDCG@10 (never a test figure).
    ``grid_epochs`` trains the candidates for at most that many epochs (the same budget
    for every method) and then continues the chosen rate's run under the full
    ``max_epochs``/``patience`` (exactly what a run from scratch gives); without it every
    candidate trains under the full budget.
    ``protocol="cold-start"`` holds ``cold_share`` of the items out of training
    (``cold_choice``: the ``"latest"`` first interactions, or ``"random"``); see
    :mod:`recmodels.cold_start`. ``max_history`` records that the data were cut to each
    user's latest interactions (``ace-bench --max-history``); the cut itself is made by
    :func:`~recmodels.build_sequences`. ``sequences`` sets every backbone's training rows
    (``"windows"`` or ``"prefixes"``, see :class:`~recmodels.SASRec`); None keeps each
    backbone's own default (windows for SASRec and GRU4Rec, prefixes for BERT4Rec).

    Examples
    --------
    >>> from recmodels.comparison import ComparisonPlan
    >>> plan = ComparisonPlan(methods=["id", "ace"], backbones=["sasrec"], seeds=[0, 1],
    ...                       hidden_size=64, max_epochs=20)
    >>> plan.patience, plan.lr is None, plan.lr_grid
    (10, True, (0.001, 0.0005, 0.0001))
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
    lr_grid: tuple[float, ...] = DEFAULT_LR_GRID
    grid_epochs: int | None = None
    device: str = "auto"
    window_stride: int = 1
    sequences: str | None = None
    k_core: int = 5
    max_history: int | None = None
    overrides: dict[str, dict] = field(default_factory=dict)
    protocol: str = "standard"
    cold_share: float = 0.1
    cold_choice: str = "latest"

    def __post_init__(self) -> None:
        for kind, names, known in (("method", self.methods, METHODS),
                                   ("backbone", self.backbones, BACKBONES)):
            unknown = [n for n in names if n not in known]
            if unknown:
                raise ValueError(f"unknown {kind}(s) {unknown}; choose from {sorted(known)}.")
        if not self.seeds:
            raise ValueError("seeds is empty; give at least one seed.")
        self.lr_grid = tuple(float(lr) for lr in self.lr_grid)
        if self.lr is None and not self.lr_grid:
            raise ValueError("give a learning rate (lr) or a non-empty lr_grid.")
        if self.grid_epochs is not None and not 1 <= self.grid_epochs <= self.max_epochs:
            raise ValueError(f"grid_epochs={self.grid_epochs} must be in [1, max_epochs="
                             f"{self.max_epochs}].")
        if self.sequences not in (None, *CAUSAL_SEQUENCES):
            raise ValueError(f"sequences={self.sequences!r} must be None (each backbone's "
                             f"default) or one of {list(CAUSAL_SEQUENCES)}.")
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"protocol={self.protocol!r} must be one of {list(PROTOCOLS)}.")
        if not 0 < self.cold_share <= MAX_SHARE:
            raise ValueError(f"cold_share={self.cold_share} must be in (0, {MAX_SHARE}].")
        if self.cold_choice not in CHOICES:
            raise ValueError(f"cold_choice={self.cold_choice!r} must be one of {list(CHOICES)}.")

    @property
    def learning_rates(self) -> tuple[float, ...]:
        """The candidates each method's first seed trains."""
        return (float(self.lr),) if self.lr is not None else self.lr_grid

    @property
    def short_grid(self) -> bool:
        """Whether candidates train under ``grid_epochs`` and the chosen rate once more."""
        return self.grid_epochs is not None and len(self.learning_rates) > 1


def cell_settings(plan: ComparisonPlan, method: str, backbone: str, seed: int, lr: float,
                  inputs: dict, max_epochs: int | None = None) -> dict:
    """Everything that decides one cell's outcome; its fingerprint keys ``results.csv``.

    ``max_epochs`` replaces the plan's for a learning-rate candidate under ``grid_epochs``.
    """
    return {"method": method,
            "method_settings": METHODS[method].settings(backbone, plan.overrides.get(method)),
            "backbone": backbone, "hidden_size": plan.hidden_size, "max_len": plan.max_len,
            "lr": lr, "max_epochs": max_epochs or plan.max_epochs, "patience": plan.patience,
            "batch_size": plan.batch_size, "window_stride": plan.window_stride,
            "k_core": plan.k_core, "seed": seed, "device": resolve_device(plan.device).type,
            # Only when set, so that earlier cells keep their fingerprints.
            **({"max_history": plan.max_history} if plan.max_history is not None else {}),
            **backbone_settings(method, backbone, plan), **protocol_settings(plan), **inputs,
            "version": __version__}


def backbone_arguments(method: str, backbone: str,
                       plan: ComparisonPlan | None = None) -> dict:
    """Backbone arguments other than the defaults: those the reference code sets for this
    method (METHODS.md section 4), and the plan's ``sequences`` where it differs from the
    backbone's own default."""
    arguments = dict(METHODS[method].backbone_settings.get(backbone, {}))
    if plan is not None and plan.sequences is not None:
        default = inspect.signature(BACKBONES[backbone]).parameters["sequences"].default
        if plan.sequences != default:
            arguments["sequences"] = plan.sequences
    return arguments


def backbone_settings(method: str, backbone: str, plan: ComparisonPlan | None = None) -> dict:
    """``{"backbone_settings": ...}`` of :func:`backbone_arguments`, or nothing where there
    are none, so other cells' fingerprints stay."""
    arguments = backbone_arguments(method, backbone, plan)
    return {"backbone_settings": arguments} if arguments else {}


def cell_inputs(plan: ComparisonPlan, data: SequenceData, E: np.ndarray,
                first_seen: np.ndarray | None = None) -> tuple[dict, object]:
    """The digests of a plan's inputs that enter every cell's fingerprint, and its
    cold-start split (None under the standard protocol)."""
    inputs = {"data": sequence_digest(data), "embeddings": array_digest(E)}
    split = make_split(plan, data, first_seen)
    if split is not None:
        inputs["new_items"] = array_digest(split.new_items)
    return inputs, split


class _Cells:
    """``results.csv`` and the training of missing cells."""

    def __init__(self, plan: ComparisonPlan, data: SequenceData, E: np.ndarray, out: Path,
                 verbose: bool, first_seen: np.ndarray | None = None) -> None:
        self.plan, self.data, self.E, self.out, self.verbose = plan, data, E, out, verbose
        self.path = out / "results.csv"
        self.results = (pd.read_csv(self.path, dtype=TEXT_COLUMNS, keep_default_na=False,
                                    na_values={m: [""] for m in METRICS})
                        if self.path.exists() else pd.DataFrame(columns=COLUMNS))
        self.inputs, self.split = cell_inputs(plan, data, E, first_seen)
        if self.split is not None:
            self._say(str(self.split))
        self.count, self.total = 0, 0
        self.candidate_keys: set[str] = set()

    def _say(self, message: str) -> None:
        if self.verbose:
            print(message, file=sys.stderr, flush=True)

    def ensure(self, method: str, backbone: str, seed: int, lr: float,
               max_epochs: int | None = None, continue_from: str | None = None) -> pd.DataFrame:
        """The rows of this cell, trained now unless a row with its fingerprint exists.

        A learning-rate candidate (``max_epochs`` set) keeps its last checkpoint; the chosen
        rate's full run passes that candidate's fingerprint as ``continue_from`` and resumes
        from it, which is exact: only the stopping settings differ, and the trainer's resume
        restores weights, optimiser and RNG states.
        """
        settings = cell_settings(self.plan, method, backbone, seed, lr, self.inputs, max_epochs)
        key = fingerprint(settings)
        self.count += 1
        label = (f"[{self.count}/{self.total}] {method} + {backbone}, seed {seed}, lr {lr:g}"
                 + (f", learning-rate candidate (at most {max_epochs} epochs)"
                    if max_epochs else ""))
        done = self.results[self.results["fingerprint"] == key]
        if len(done):
            return done
        same_cell = self.results[(self.results["method"] == method)
                                 & (self.results["backbone"] == backbone)
                                 & (self.results["seed"] == seed)
                                 & np.isclose(self.results["lr"].astype(float), lr)]
        # Learning-rate candidates share method, seed and rate with the chosen cell by design.
        same_cell = same_cell[~same_cell["fingerprint"].isin(self.candidate_keys)]
        if len(same_cell) and not max_epochs:
            changed = settings_diff(json.loads(same_cell["settings"].iloc[-1]), settings)
            self._say(f"{label}: results.csv holds this cell under other settings "
                      f"({'; '.join(changed[:4])}); training it anew")
        else:
            self._say(label)
        rows = self._train(method, backbone, seed, lr, settings, key, continue_from,
                           keep_checkpoint=max_epochs is not None)
        self.results = pd.concat([self.results, rows], ignore_index=True)
        write_atomic(self.path, lambda p: self.results[COLUMNS].to_csv(p, index=False))
        return rows

    def _checkpoint(self, method: str, backbone: str, seed: int, lr: float,
                    key: str = "*") -> Path:
        return checkpoint_path(self.out, method, backbone, seed, lr, key)

    def _train(self, method, backbone, seed, lr, settings, key,
               continue_from: str | None = None, keep_checkpoint: bool = False) -> pd.DataFrame:
        plan, split = self.plan, self.split
        data = self.data if split is None else split.data
        torch.manual_seed(seed)
        table = build_table(method, self.E, data, plan.hidden_size, plan.overrides.get(method),
                            fit_rows=None if split is None else split.warm_rows,
                            backbone=backbone)
        model = BACKBONES[backbone](table, max_len=plan.max_len,
                                   **backbone_arguments(method, backbone, plan))
        if split is not None:
            model.exclude_from_training(split.new_items)
        path = self._checkpoint(method, backbone, seed, lr, key)
        candidate = (None if continue_from is None
                     else self._checkpoint(method, backbone, seed, lr, continue_from))
        if candidate is not None and candidate.exists() and not path.exists():
            self._say(f"continuing the learning-rate candidate's run from {candidate.name}")
            os.replace(candidate, path)
        for stale in path.parent.glob(self._checkpoint(method, backbone, seed, lr).name):
            if stale != path:
                stale.unlink()
        trainer = Trainer(model, data, lr=lr, batch_size=plan.batch_size,
                          max_epochs=settings["max_epochs"], patience=plan.patience, seed=seed,
                          device=plan.device, checkpoint_path=path, verbose=self.verbose,
                          window_stride=plan.window_stride)
        try:
            result = trainer.fit()
        except CheckpointMismatchError as error:
            self._say(f"{error}; starting over")
            trainer.restart = True
            result = trainer.fit()
        if split is None:
            ranks = {"valid": result.valid_ranks, "test": result.test_ranks}
            rows = [(method, "valid", result.best_valid), (method, "test", result.test)]
        else:
            ranks, rows = evaluate_cell(trainer, result, split, method)
        save_run(self.out, key, result, ranks)
        if not keep_checkpoint:
            path.unlink(missing_ok=True)
        return pd.DataFrame([
            {"method": name, "backbone": backbone, "seed": seed, "lr": lr,
             "selected": False, "split": part,
             **{k: metrics.get(k, np.nan) for k in METRICS},
             "epochs": result.epochs_run, "best_epoch": result.best_epoch,
             "seconds": round(result.seconds, 1), "lr_grid": "", "lr_valid": "",
             "fingerprint": key, "settings": json.dumps(settings, sort_keys=True)}
            for name, part, metrics in rows])


def run_comparison(plan: ComparisonPlan, data: SequenceData, E: np.ndarray, out: Path,
                   *, verbose: bool = True,
                   first_seen: np.ndarray | None = None) -> pd.DataFrame:
    """Train every cell of ``plan`` not yet in ``out/results.csv``; returns the plan's rows.

    ``E`` holds one row per item of ``data`` (already aligned). A cell interrupted halfway
    resumes from its checkpoint; a finished cell is reused only when its fingerprint (all
    its settings, the data, the embeddings and the package version) matches. Rows of other
    settings stay in ``results.csv`` but are not returned. ``out/runs/`` keeps each cell's
    per-user ranks, full settings and history.

    ``first_seen`` (:func:`~recmodels.cold_start.first_seen_times`) is needed only by
    ``plan.protocol="cold-start"`` with ``cold_choice="latest"``.

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
    ...                       max_epochs=1, lr=1e-3, k_core=1)
    >>> out = pathlib.Path(tempfile.mkdtemp())
    >>> results = run_comparison(plan, data, E, out, verbose=False)
    >>> results[["method", "split", "selected"]].values.tolist()
    [['id', 'valid', True], ['id', 'test', True], ['ace', 'valid', True], ['ace', 'test', True]]
    >>> len(run_comparison(plan, data, E, out, verbose=False))  # finished cells are kept
    4
    """
    out.mkdir(parents=True, exist_ok=True)
    cells = _Cells(plan, data, E, out, verbose, first_seen)
    rates = plan.learning_rates
    per_method = len(rates) + len(plan.seeds) - 1 + plan.short_grid
    cells.total = len(plan.backbones) * len(plan.methods) * per_method
    grid_epochs = plan.grid_epochs if plan.short_grid else None
    in_plan: list[str] = []
    for backbone in plan.backbones:
        for method in plan.methods:
            first, *others = plan.seeds
            candidates = {lr: cells.ensure(method, backbone, first, lr, grid_epochs)
                          for lr in rates}
            if grid_epochs:
                cells.candidate_keys.update(*(rows["fingerprint"] for rows in candidates.values()))
            scores = {lr: float(rows.loc[(rows["split"] == "valid") & (rows["method"] == method),
                                         SELECTION_METRIC].iloc[0])
                      for lr, rows in candidates.items()}
            best = max(rates, key=lambda lr: scores[lr])  # ties go to the earlier candidate
            if len(rates) > 1:
                listed = ", ".join(f"{lr:g}: {score:.4f}" for lr, score in scores.items())
                cells._say(f"{method} + {backbone}: lr {best:g} chosen on valid "
                           f"{SELECTION_METRIC} ({listed})")
            finals = [first, *others] if grid_epochs else others
            continued = candidates[best]["fingerprint"].iloc[0] if grid_epochs else None
            trained = [cells.ensure(method, backbone, seed, best,
                                    continue_from=continued if seed == first else None)
                       for seed in finals]
            if grid_epochs:
                for lr, rows in candidates.items():
                    cells._checkpoint(method, backbone, first, lr,
                                      rows["fingerprint"].iloc[0]).unlink(missing_ok=True)
            keys = list(pd.concat([*candidates.values(), *trained])["fingerprint"].unique())
            chosen = set().union(*(rows["fingerprint"] for rows in trained))
            if not grid_epochs:
                chosen |= set(candidates[best]["fingerprint"])
            mask = cells.results["fingerprint"].isin(keys)
            cells.results.loc[mask, "selected"] = cells.results.loc[mask, "fingerprint"].isin(
                chosen)
            cells.results.loc[mask, "lr_grid"] = ",".join(f"{lr:g}" for lr in rates)
            cells.results.loc[mask, "lr_valid"] = json.dumps(
                {f"{lr:g}": round(score, 6) for lr, score in scores.items()})
            in_plan += keys
            # After each method, not at the end: a run killed in the next one keeps these flags.
            write_atomic(cells.path, lambda p: cells.results[COLUMNS].to_csv(p, index=False))
    results = cells.results[cells.results["fingerprint"].isin(in_plan)].reset_index(drop=True)
    results["selected"] = results["selected"].astype(bool)
    return results

"""Run every (method, backbone, seed) cell, resumably, and collect the results.

Each trained cell is identified by a fingerprint of everything that decides its outcome
(:func:`~recmodels.comparison.plan.cell_settings`); a row of ``results.csv`` is reused
only for the same fingerprint. Without a fixed learning rate, every method's rate is
chosen from a grid on the first seed's validation NDCG@10, and the other seeds train at
the chosen rate. Under the cold-start protocol (:mod:`recmodels.comparison.cold`) each
cell also writes rows of its ``"+map"`` variant and of the users whose test target is a
new item (split ``"test-new"``).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..data import SequenceData
from ..models import BACKBONES
from ..provenance import fingerprint, settings_diff
from ..trainer import CheckpointMismatchError, Trainer, TrainingDivergedError
from .cold import evaluate_cell
from .inputs import InputError
from .methods import build_table
from .parallel import cell_pool, stop_workers, train_in_worker
from .preflight import check_inputs
from .plan import (DEFAULT_LR_GRID, ComparisonPlan, backbone_arguments, backbone_settings,
                   best_rate, cell_inputs, cell_settings)
from .runs import (checkpoint_path, folder_lock, save_diverged, save_model, save_run,
                   write_atomic)

__all__ = ["BACKBONES", "COLUMNS", "DEFAULT_LR_GRID", "METRICS", "SELECTION_METRIC",
           "TEXT_COLUMNS", "ComparisonPlan", "backbone_arguments", "backbone_settings",
           "best_rate", "cell_inputs", "cell_settings", "run_comparison"]

METRICS = ["recall@10", "ndcg@10", "recall@20", "ndcg@20", "recall@50", "ndcg@50"]
COLUMNS = ["method", "backbone", "seed", "lr", "selected", "split", *METRICS, "epochs",
           "best_epoch", "seconds", "lr_grid", "lr_valid", "fingerprint", "settings"]
TEXT_COLUMNS = {"fingerprint": str, "settings": str, "lr_grid": str, "lr_valid": str}
SELECTION_METRIC = "ndcg@10"
#: The columns that identify a cell; every results.csv that ace-bench wrote has them.
KEY_COLUMNS = (*COLUMNS[:6], "fingerprint", "settings")


def load_results(path: Path) -> pd.DataFrame:
    """A ``results.csv`` with its text columns as text and empty metrics as NaN; an
    :class:`~.inputs.InputError` naming ``path`` if ``ace-bench`` did not write it."""
    try:  # pandas' parser errors are ValueErrors
        results = pd.read_csv(path, dtype=TEXT_COLUMNS, keep_default_na=False,
                              na_values={m: [""] for m in METRICS})
        missing = [column for column in KEY_COLUMNS if column not in results.columns]
        problem = f"no column(s) {missing}" if missing else None
    except (ValueError, UnicodeDecodeError) as exc:
        problem = str(exc)
    if problem:
        raise InputError(f"{path}: not a results table ace-bench wrote ({problem}); move it "
                         "away or use another folder.")
    return results


class _Cells:
    """``results.csv`` and the training of missing cells."""

    def __init__(self, plan: ComparisonPlan, data: SequenceData, E: np.ndarray, out: Path,
                 verbose: bool, first_seen: np.ndarray | None = None,
                 announce: bool = True) -> None:
        self.plan, self.data, self.E, self.out, self.verbose = plan, data, E, out, verbose
        self.path = out / "results.csv"
        self.results = (load_results(self.path) if self.path.exists()
                        else pd.DataFrame(columns=COLUMNS))
        self.inputs, self.split = cell_inputs(plan, data, E, first_seen)
        if self.split is not None and announce:
            self._say(str(self.split))
        self.count, self.total = 0, 0
        self.candidate_keys: set[str] = set()
        # With --jobs, cells train in worker processes and several methods' runs wait on
        # them at once; the lock guards the rows and results.csv (written here only).
        self.pool = None
        self.lock = threading.RLock()
        self.training: dict[str, Future] = {}

    def _say(self, message: str) -> None:
        if self.verbose:
            print(message, file=sys.stderr, flush=True)

    def start(self, method: str, backbone: str, seed: int, lr: float,
              max_epochs: int | None = None, continue_from: str | None = None,
              candidate: bool = False) -> pd.DataFrame | Future:
        """The rows of this cell, trained now unless a row with its fingerprint exists; in
        worker processes (``self.pool``), a future of them. :meth:`wait` gives the rows.

        A cell's rows reach ``results.csv`` the moment it finishes, so that a run stopped
        later keeps it. A learning-rate candidate (``max_epochs`` set) keeps its last
        checkpoint; the chosen rate's full run passes that candidate's fingerprint as
        ``continue_from`` and resumes from it, which is exact: only the stopping settings
        differ, and the trainer's resume restores weights, optimiser and RNG states. A
        ``candidate`` of a grid whose loss diverges is kept as rows without metrics
        (``best_epoch`` 0), so that it loses the choice, rather than ending the comparison;
        any other cell's divergence is an error that names the cell.
        """
        settings = cell_settings(self.plan, method, backbone, seed, lr, self.inputs, max_epochs)
        key = fingerprint(settings)
        with self.lock:
            self.count += 1
            label = (f"[{self.count}/{self.total}] {method} + {backbone}, seed {seed}, "
                     f"lr {lr:g}" + (f", learning-rate candidate (at most {max_epochs} epochs)"
                                     if max_epochs else ""))
            done = self.results[self.results["fingerprint"] == key]
            if len(done):
                return done
            if key in self.training:  # the same cell asked for twice: trained once
                return self.training[key]
            same_cell = self.results[(self.results["method"] == method)
                                     & (self.results["backbone"] == backbone)
                                     & (self.results["seed"] == seed)
                                     & np.isclose(self.results["lr"].astype(float), lr)]
            # Learning-rate candidates share method, seed and rate with the chosen cell by
            # design.
            same_cell = same_cell[~same_cell["fingerprint"].isin(self.candidate_keys)]
            if len(same_cell) and not max_epochs:
                changed = settings_diff(json.loads(same_cell["settings"].iloc[-1]), settings)
                self._say(f"{label}: results.csv holds this cell under other settings "
                          f"({'; '.join(changed[:4])}); training it anew")
            else:
                self._say(label + (" (queued)" if self.pool is not None else ""))
            job = (method, backbone, seed, lr, settings, key, continue_from,
                   max_epochs is not None, candidate, label)
            if self.pool is None:
                return self._add(self.train_cell(*job))
            future = self.pool.submit(train_in_worker, job,
                                      f"[{method} {backbone} s{seed} lr {lr:g}] ")
            self.training[key] = future
        future.add_done_callback(self._finished)
        return future

    def wait(self, started: pd.DataFrame | Future) -> pd.DataFrame:
        """The rows of a cell :meth:`start` began (already in ``results.csv``)."""
        if not isinstance(started, Future):
            return started
        try:
            # Added here too: a future's waiters may wake before its callbacks have run.
            return self._add(started.result())
        except BrokenProcessPool as error:
            raise RuntimeError(f"a worker process died ({error}); the cells it was training "
                               "resume from their last epoch when the command runs again"
                               ) from error

    def _finished(self, future: Future) -> None:
        """A worker's cell is done: its rows go to ``results.csv`` at once."""
        if not future.cancelled() and future.exception() is None:
            self._add(future.result())

    def _add(self, rows: pd.DataFrame) -> pd.DataFrame:
        """Add a finished cell's rows to ``results.csv``, once."""
        key = rows["fingerprint"].iloc[0]
        with self.lock:
            self.training.pop(key, None)
            if not (self.results["fingerprint"] == key).any():
                self.results = pd.concat([self.results, rows], ignore_index=True)
                write_atomic(self.path,
                             lambda p: self.results[COLUMNS].to_csv(p, index=False))
        return rows

    def train_cell(self, method, backbone, seed, lr, settings, key, continue_from,
                   keep_checkpoint: bool, candidate: bool, label: str) -> pd.DataFrame:
        """Train one cell and return its rows (a diverged candidate's without metrics)."""
        started = time.perf_counter()
        try:
            return self._train(method, backbone, seed, lr, settings, key, continue_from,
                               keep_checkpoint=keep_checkpoint)
        except TrainingDivergedError as error:
            if not candidate:
                raise TrainingDivergedError(f"{method} + {backbone}, seed {seed}, lr {lr:g}: "
                                            f"{error}", epoch=error.epoch) from error
            self._say(f"{label}: the training loss diverged in epoch {error.epoch}; this "
                      "candidate is out of the choice, and its checkpoint is removed")
            self._checkpoint(method, backbone, seed, lr, key).unlink(missing_ok=True)
            save_diverged(self.out, key, settings, error)
            return self._rows(method, backbone, seed, lr, settings, key,
                              [(method, "valid", {}), (method, "test", {})],
                              epochs=error.epoch or 0, best_epoch=0,
                              seconds=(time.perf_counter() - started if error.seconds is None
                                       else error.seconds))

    def record(self, keys, columns: dict[str, str], selected: set[str] | None = None) -> None:
        """Set ``columns`` on the rows of the fingerprints ``keys`` (and ``selected`` on
        them: whether their fingerprint is in it) and write results.csv."""
        with self.lock:
            mask = self.results["fingerprint"].isin(list(keys))
            for name, value in columns.items():
                self.results.loc[mask, name] = value
            if selected is not None:
                self.results.loc[mask, "selected"] = self.results.loc[
                    mask, "fingerprint"].isin(selected)
            write_atomic(self.path, lambda p: self.results[COLUMNS].to_csv(p, index=False))

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
        others = sorted(p.name for p in path.parent.glob(
            self._checkpoint(method, backbone, seed, lr).name) if p != path)
        if others:  # another protocol's run, or one under older settings: left as they are
            self._say(f"other checkpoints of this method, seed and rate, left alone: "
                      f"{', '.join(others)}")
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
        if plan.keep_models:
            save_model(self.out, key, model)
        if not keep_checkpoint:
            path.unlink(missing_ok=True)
        return self._rows(method, backbone, seed, lr, settings, key, rows,
                          epochs=result.epochs_run, best_epoch=result.best_epoch,
                          seconds=result.seconds)

    @staticmethod
    def _rows(method, backbone, seed, lr, settings, key, rows, *, epochs: int,
              best_epoch: int, seconds: float) -> pd.DataFrame:
        """``results.csv`` rows of one cell: ``rows`` holds (method, split, metrics)."""
        return pd.DataFrame([
            {"method": name, "backbone": backbone, "seed": seed, "lr": lr,
             "selected": False, "split": part,
             **{k: metrics.get(k, np.nan) for k in METRICS},
             "epochs": epochs, "best_epoch": best_epoch, "seconds": round(seconds, 1),
             "lr_grid": "", "lr_valid": "",
             "fingerprint": key, "settings": json.dumps(settings, sort_keys=True)}
            for name, part, metrics in rows])


def run_comparison(plan: ComparisonPlan, data: SequenceData, E: np.ndarray, out: Path,
                   *, verbose: bool = True, first_seen: np.ndarray | None = None,
                   check: bool = True) -> pd.DataFrame:
    """Train every cell of ``plan`` not yet in ``out/results.csv``; returns the plan's rows.

    ``E`` holds one row per item of ``data`` (already aligned). A cell interrupted halfway
    resumes from its checkpoint; a finished cell is reused only when its fingerprint (all
    its settings, the data, the embeddings and the package version) matches. Rows of other
    settings stay in ``results.csv`` but are not returned. ``out/runs/`` keeps each cell's
    per-user ranks, full settings and history.

    Before anything is written, every method's model is built once, untrained
    (:func:`~recmodels.comparison.preflight.check_plan`; ``check=False`` leaves that to a
    caller that already did it), so that a setting that can not work stops the run before
    the first cell, not at its method's turn.

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
    if check:
        check_inputs(plan, data, E, first_seen)
    with folder_lock(out):  # the folder's only writer: results.csv is read, then rewritten
        return _run_cells(plan, data, E, out, verbose, first_seen)


def _run_cells(plan, data, E, out, verbose, first_seen) -> pd.DataFrame:
    cells = _Cells(plan, data, E, out, verbose, first_seen)
    per_method = len(plan.learning_rates) + len(plan.seeds) - 1 + plan.short_grid
    cells.total = len(plan.backbones) * len(plan.methods) * per_method
    chains = [(backbone, method) for backbone in plan.backbones for method in plan.methods]
    in_plan: list[str] = []
    if plan.jobs == 1:
        for backbone, method in chains:
            in_plan += _run_method(cells, backbone, method)
    else:
        # Every method's run waits on its cells in a thread of its own, so that the worker
        # processes always have the next cells of every method to take.
        cells.pool = cell_pool(plan.jobs, _Cells, (plan, data, E, out, verbose, first_seen))
        runs = ThreadPoolExecutor(len(chains))
        finished = False
        try:
            futures = [runs.submit(_run_method, cells, *chain) for chain in chains]
            wait(futures, return_when=FIRST_EXCEPTION)
            for future in futures:  # the first failure in plan order, if any
                if future.done() and future.exception() is not None:
                    raise future.exception()
            in_plan = [key for future in futures for key in future.result()]
            finished = True
        finally:
            # On an error or an interrupt, the cells still training stop (they resume from
            # their checkpoints next time) and the methods waiting on them end at once.
            stop_workers(cells.pool, finished)
            runs.shutdown()
    order = {key: position for position, key in enumerate(in_plan)}
    results = cells.results[cells.results["fingerprint"].isin(in_plan)]
    # In the plan's order, whatever order cells finished in (they run at once with jobs).
    results = results.iloc[np.argsort(results["fingerprint"].map(order).to_numpy(),
                                      kind="stable")].reset_index(drop=True)
    results["selected"] = results["selected"].astype(bool)
    return results


def _run_method(cells: _Cells, backbone: str, method: str) -> list[str]:
    """Train one method's cells on one backbone (the rate's candidates, the choice, the
    seeds at the chosen rate), mark the chosen ones, and return all their fingerprints."""
    plan = cells.plan
    rates = plan.learning_rates
    grid_epochs = plan.grid_epochs if plan.short_grid else None
    first, *others = plan.seeds
    started = {lr: cells.start(method, backbone, first, lr, grid_epochs,
                               candidate=len(rates) > 1) for lr in rates}
    candidates = {lr: cells.wait(begun) for lr, begun in started.items()}
    if grid_epochs:
        with cells.lock:
            cells.candidate_keys.update(*(rows["fingerprint"] for rows in candidates.values()))
    scores = {lr: float(rows.loc[(rows["split"] == "valid") & (rows["method"] == method),
                                 SELECTION_METRIC].iloc[0])
              for lr, rows in candidates.items()}
    best = best_rate(scores)
    if best is None:
        raise TrainingDivergedError(
            f"{method} + {backbone}: the training loss diverged at every candidate "
            f"rate ({', '.join(f'{lr:g}' for lr in rates)}); give lower rates.")
    if len(rates) > 1:
        listed = ", ".join(f"{lr:g}: " + ("diverged" if np.isnan(score) else f"{score:.4f}")
                           for lr, score in scores.items())
        cells._say(f"{method} + {backbone}: lr {best:g} chosen on valid "
                   f"{SELECTION_METRIC} ({listed})")
    grid_columns = {"lr_grid": ",".join(f"{lr:g}" for lr in rates),
                    "lr_valid": json.dumps({f"{lr:g}": None if np.isnan(score)
                                            else round(score, 6)
                                            for lr, score in scores.items()})}
    if grid_epochs:  # the choice is on file before the chosen rate's long run
        cells.record(pd.concat(candidates.values())["fingerprint"], grid_columns)
    finals = [first, *others] if grid_epochs else others
    continued = candidates[best]["fingerprint"].iloc[0] if grid_epochs else None
    begun = [cells.start(method, backbone, seed, best,
                         continue_from=continued if seed == first else None)
             for seed in finals]
    trained = [cells.wait(cell) for cell in begun]
    if grid_epochs:
        for lr, rows in candidates.items():
            cells._checkpoint(method, backbone, first, lr,
                              rows["fingerprint"].iloc[0]).unlink(missing_ok=True)
    keys = list(pd.concat([*candidates.values(), *trained])["fingerprint"].unique())
    chosen = set().union(*(rows["fingerprint"] for rows in trained))
    if not grid_epochs:
        chosen |= set(candidates[best]["fingerprint"])
    # After each method, not at the end: a run killed in the next one keeps these flags.
    cells.record(keys, grid_columns, selected=chosen)
    return keys

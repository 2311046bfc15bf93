"""What an ``ace-bench`` command would do: each cell of its plan, done, resumable or to train.

``ace-bench --dry-run`` prints this and trains nothing; long comparisons spread over
several sessions use it to see what is left.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .. import checkpoint
from ..data import SequenceData
from ..provenance import fingerprint
from .plan import ComparisonPlan, best_rate, cell_inputs, cell_settings
from .runner import SELECTION_METRIC, TEXT_COLUMNS
from .runs import checkpoint_path

STATUS_COLUMNS = ["backbone", "method", "seed", "lr", "role", "status", "fingerprint",
                  "chosen"]


def _epochs_in(path: Path) -> int | None:
    """The last finished epoch of the checkpoint at ``path``; None when there is none."""
    if not path.exists():
        return None
    return int(checkpoint.load(path)["trainer"]["epoch"])


def plan_status(plan: ComparisonPlan, data: SequenceData, E: np.ndarray, out: Path,
                first_seen: np.ndarray | None = None) -> pd.DataFrame:
    """One row per cell of ``plan`` and what a run of it would do with that cell.

    Statuses: ``done`` (reused; ``done (diverged)`` for a learning-rate candidate whose
    loss diverged), ``resumes after epoch N`` (its checkpoint),
    ``continues its candidate after epoch N`` (a chosen rate's run that starts from its
    short-grid candidate's checkpoint), ``to train``, and ``after the candidates``: with a
    learning-rate grid, a chosen rate's runs are known only once every candidate of the
    method and backbone is done, so until then their ``lr`` is NaN (as it stays when
    ``every candidate diverged``). Without
    ``grid_epochs`` the first seed's chosen run is the candidate row itself. The
    device enters the fingerprints: ``device="auto"`` answers for the machine it runs
    on. ``fingerprint`` is the cell's key in ``results.csv`` (None until its rate is
    known); ``chosen`` marks the cells a table of this plan shows (every ``run``, and
    without ``grid_epochs`` the best candidate). Nothing is trained or written.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> from recmodels import build_sequences
    >>> from recmodels.datasets import make_interactions
    >>> from recmodels.comparison import ComparisonPlan, run_comparison
    >>> from recmodels.comparison.status import plan_status
    >>> data = build_sequences(make_interactions(n_users=12, n_items=9), k_core=1)
    >>> E = np.random.default_rng(0).standard_normal((data.n_items, 32)).astype(np.float32)
    >>> plan = ComparisonPlan(["id", "ace"], ["sasrec"], [0], hidden_size=8, max_len=5,
    ...                       max_epochs=1, lr=1e-3, k_core=1)
    >>> out = pathlib.Path(tempfile.mkdtemp())
    >>> _ = run_comparison(ComparisonPlan(["id"], ["sasrec"], [0], hidden_size=8, max_len=5,
    ...                                   max_epochs=1, lr=1e-3, k_core=1),
    ...                    data, E, out, verbose=False)
    >>> plan_status(plan, data, E, out)[["method", "status"]].values.tolist()
    [['id', 'done'], ['ace', 'to train']]
    """
    path = out / "results.csv"
    results = (pd.read_csv(path, dtype=TEXT_COLUMNS) if path.exists()
               else pd.DataFrame(columns=["fingerprint", "split", "method", SELECTION_METRIC]))
    inputs, _ = cell_inputs(plan, data, E, first_seen)
    grid_epochs = plan.grid_epochs if plan.short_grid else None
    # A rate or seed given twice is one cell, as in run_comparison.
    rates = list(dict.fromkeys(plan.learning_rates))
    first, *others = dict.fromkeys(plan.seeds)
    others = [seed for seed in others if seed != first]
    rows = []

    def key_of(method, backbone, seed, lr, max_epochs=None) -> str:
        return fingerprint(cell_settings(plan, method, backbone, seed, lr, inputs, max_epochs))

    def status(method, backbone, seed, lr, key, continue_from=None) -> str:
        rows = results[(results["fingerprint"] == key) & (results["split"] == "valid")]
        if len(rows):
            return "done" if rows[SELECTION_METRIC].notna().all() else "done (diverged)"
        epoch = _epochs_in(checkpoint_path(out, method, backbone, seed, lr, key))
        if epoch is None and continue_from is not None:
            epoch = _epochs_in(checkpoint_path(out, method, backbone, seed, lr, continue_from))
            if epoch is not None:
                return f"continues its candidate after epoch {epoch}"
        return "to train" if epoch is None else f"resumes after epoch {epoch}"

    for backbone in plan.backbones:
        for method in plan.methods:
            scores, keys = {}, {}
            for lr in rates:
                keys[lr] = key_of(method, backbone, first, lr, grid_epochs)
                state = status(method, backbone, first, lr, keys[lr])
                rows.append([backbone, method, first, lr,
                             "candidate" if grid_epochs or len(rates) > 1 else "run", state,
                             keys[lr], len(rates) == 1 and not grid_epochs])
                valid = results[(results["fingerprint"] == keys[lr])
                                & (results["split"] == "valid") & (results["method"] == method)]
                if len(valid):
                    scores[lr] = float(valid[SELECTION_METRIC].iloc[0])
            finals = [first, *others] if grid_epochs else others
            if len(rates) > 1 and len(scores) < len(rates):
                rows += [[backbone, method, seed, np.nan, "run", "after the candidates", None,
                          False] for seed in finals]
                continue
            best = rates[0] if len(rates) == 1 else best_rate(scores)
            if best is None:
                rows += [[backbone, method, seed, np.nan, "run", "every candidate diverged",
                          None, False] for seed in finals]
                continue
            if not grid_epochs:  # the first seed's chosen run is its best candidate
                next(row for row in rows if row[6] == keys[best])[7] = True
            for seed in finals:
                key = key_of(method, backbone, seed, best)
                rows.append([backbone, method, seed, best, "run",
                             status(method, backbone, seed, best, key,
                                    continue_from=keys[best] if grid_epochs and seed == first
                                    else None), key, True])
    return pd.DataFrame(rows, columns=STATUS_COLUMNS)


def finished_rows(status: pd.DataFrame, out: Path) -> pd.DataFrame:
    """The rows of ``out/results.csv`` that belong to the plan's finished cells.

    Other commands' cells in the same folder (another backbone, sequences or seed list)
    are left out, so a table of these rows shows what this plan has finished so far.
    ``selected`` follows the plan (its ``chosen`` cells), not the file: another command
    may share a cell and have chosen otherwise, and a killed run may not have written
    its choice.
    """
    path = out / "results.csv"
    if not path.exists():
        return pd.DataFrame(columns=["fingerprint", "split", "selected"])
    results = pd.read_csv(path, dtype=TEXT_COLUMNS)
    done = status.loc[status["status"].str.startswith("done"), "fingerprint"]
    chosen = status.loc[status["chosen"].astype(bool), "fingerprint"]
    rows = results[results["fingerprint"].isin(done)]
    return rows.assign(selected=rows["fingerprint"].isin(chosen))


def status_report(status: pd.DataFrame) -> str:
    """The status table as text, and a line that counts its cells by status."""
    table = status.drop(columns=["fingerprint", "chosen"], errors="ignore")
    table = table.assign(lr=table["lr"].map(lambda lr: "-" if np.isnan(lr) else f"{lr:g}"))
    counts = table["status"].str.split().str[0].value_counts()
    done = int(counts.get("done", 0))
    return (f"{table.to_string(index=False)}\n\n{done} of {len(table)} cells done, "
            f"{len(table) - done} left; nothing was trained (--dry-run).")

"""Merge the finished cells of several ``ace-bench`` folders into one.

A cell's fingerprint keys everything that decides its outcome (settings, data and
embedding digests, version), not the folder it ran in, so cells trained by separate
``ace-bench`` processes (several machines, or two processes on one machine with a thread
each) can be brought together afterwards: each cell's rows of ``results.csv`` and its
``runs/<fingerprint>.json`` / ``.npz``. An ``ace-bench`` run on the merged folder then
reuses them, as if it had trained them itself.

    python -m recmodels.comparison.merge --into DEST SOURCE [SOURCE ...]

Cells are reused only where every setting matches, the device type (CPU or CUDA) and the
package version included: merge folders run with the same ones. A source cell whose
method, backbone, seed and rate ``DEST`` already holds as a selected cell of other settings
is added unselected and named, as ``ace-bench`` keeps a cell whose settings changed. While
an ``ace-bench`` writes to ``DEST`` (it keeps ``results.csv`` in memory and would write its
own copy over the merged rows) the merge is refused, naming that process; reading a
folder in use as a source is fine. Checkpoints of unfinished runs are not copied; they
resume in the folder that ran them.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import pandas as pd

from ..provenance import settings_diff
from .inputs import InputError
from .runner import COLUMNS, METRICS, load_results
from .runs import folder_lock, write_atomic

__all__ = ["merge_folders", "read_results"]

#: The columns of a finished cell's rows that two runs of one fingerprint must share.
OUTCOME_COLUMNS = [*METRICS, "epochs", "best_epoch"]


def read_results(folder: Path) -> pd.DataFrame:
    """``folder/results.csv`` as ``ace-bench`` reads it; a clear error if it is missing.

    Examples
    --------
    >>> import tempfile
    >>> from recmodels.comparison.merge import read_results
    >>> read_results(tempfile.mkdtemp())
    Traceback (most recent call last):
    ...
    recmodels.comparison.inputs.InputError: ...: no results.csv here; pass a folder ...
    """
    path = Path(folder) / "results.csv"
    if not path.is_file():
        raise InputError(f"{folder}: no results.csv here; pass a folder that ace-bench "
                         "--out wrote.")
    return load_results(path)


def _run_files(folder: Path, key: str, rows: pd.DataFrame) -> list[Path]:
    """The ``runs/`` files of cell ``key``: its history, and its ranks where it has them
    (a cell whose training diverged has none); a clear error when one is missing."""
    history, ranks = folder / "runs" / f"{key}.json", folder / "runs" / f"{key}.npz"
    trained = (rows["best_epoch"].astype(int) > 0).any()
    missing = [str(f) for f in (history, ranks) if not f.is_file() and (trained or f == history)]
    if missing:
        raise InputError(f"{folder}: cell {key} is in results.csv but {', '.join(missing)} "
                         "is missing; delete that cell's rows from results.csv and run "
                         "ace-bench on the folder again (it retrains the cell), or leave "
                         "the folder out.")
    return [history] + ([ranks] if ranks.is_file() else [])


def merge_folders(sources: list[Path], dest: Path) -> dict[str, list[str]]:
    """Add every cell of ``sources`` that ``dest`` lacks to ``dest``.

    Parameters
    ----------
    sources : list of path-like
        ``ace-bench --out`` folders, in order of precedence (a cell met twice is taken
        from the first).
    dest : path-like
        The folder to add them to; created if missing.

    Returns
    -------
    outcome : dict of str to list of str
        Fingerprints: ``"added"``; ``"kept"``, those ``dest`` (or an earlier source)
        already held; ``"differ"``, those kept whose figures differ (the same settings on
        another machine agree to float rounding only; ``dest``'s rows stay); and
        ``"other_settings"``, one line per added cell whose method, backbone, seed and
        rate ``dest`` already holds as a selected cell of other settings, naming them (the
        added rows are then not ``selected``, so that a report takes one of the two).

    Every source is checked before anything is written, and ``runs/`` files are copied
    before ``results.csv`` is replaced, so an interrupted merge leaves no row without its
    files. The ``selected``, ``lr_grid`` and ``lr_valid`` columns come from the source;
    an ``ace-bench`` run on ``dest`` sets ``selected`` anew for its own plan.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from recmodels.comparison.merge import merge_folders
    >>> merge_folders([Path(tempfile.mkdtemp())], Path(tempfile.mkdtemp()))
    Traceback (most recent call last):
    ...
    recmodels.comparison.inputs.InputError: ...: no results.csv here; pass a folder ...

    A successful merge and its outcome: ``tests/test_merge.py``.
    """
    dest = Path(dest)
    sources = [Path(s) for s in sources]
    if any(s.resolve() == dest.resolve() for s in sources):
        raise InputError(f"{dest}: a source is the destination itself; pass other folders.")
    # An ace-bench writing to dest would overwrite the added rows; a missing dest has none.
    with folder_lock(dest) if dest.is_dir() else nullcontext():
        return _merge(sources, dest)


def _merge(sources: list[Path], dest: Path) -> dict[str, list[str]]:
    merged = read_results(dest) if (dest / "results.csv").is_file() else pd.DataFrame(
        columns=COLUMNS)
    outcome = {"added": [], "kept": [], "differ": [], "other_settings": []}
    additions, copies = [], []
    known = dict(tuple(merged.groupby("fingerprint", sort=False)))
    for source in sources:
        for key, rows in read_results(source).groupby("fingerprint", sort=False):
            if key in known:
                outcome["kept"].append(key)
                if not _same_outcome(known[key], rows):
                    outcome["differ"].append(key)
                continue
            copies += [(path, dest / "runs" / path.name)
                       for path in _run_files(source, key, rows)]
            rival = _selected_rival(known.values(), rows.iloc[0])
            if rival is not None:
                rows = rows.assign(selected=False)
                changed = settings_diff(json.loads(rival["settings"]),
                                        json.loads(rows.iloc[0]["settings"]))
                outcome["other_settings"].append(f"{key} ({'; '.join(changed[:4])})")
            additions.append(rows)
            known[key] = rows
            outcome["added"].append(key)
    if additions:
        with folder_lock(dest):
            (dest / "runs").mkdir(parents=True, exist_ok=True)
            for path, target in copies:
                write_atomic(target, lambda p, path=path: shutil.copyfile(path, p))
            merged = pd.concat([merged, *additions], ignore_index=True)
            write_atomic(dest / "results.csv",
                         lambda p: merged[COLUMNS].to_csv(p, index=False))
    return outcome


def _selected_rival(cells, row: pd.Series) -> pd.Series | None:
    """A selected row of another fingerprint with selected ``row``'s method, backbone, seed
    and rate: two cells a report would both take (learning-rate candidates, unselected,
    share all four with their chosen run by design)."""
    if not _flag(row["selected"]):
        return None
    for rows in cells:
        other = rows.iloc[0]
        if (_flag(other["selected"]) and other["method"] == row["method"]
                and other["backbone"] == row["backbone"] and int(other["seed"]) == int(row["seed"])
                and np.isclose(float(other["lr"]), float(row["lr"]))):
            return other
    return None


def _flag(value) -> bool:
    """A ``selected`` cell as pandas reads it (bool, or the text of one)."""
    return str(value).strip().lower() == "true"


def _same_outcome(ours: pd.DataFrame, theirs: pd.DataFrame) -> bool:
    """Whether two runs of one fingerprint report the same figures, split by split."""
    ours, theirs = (frame.sort_values(["method", "split"])[OUTCOME_COLUMNS].to_numpy(float)
                    for frame in (ours, theirs))
    return ours.shape == theirs.shape and bool(np.allclose(ours, theirs, equal_nan=True))


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m recmodels.comparison.merge --into DEST SOURCE ...``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sources", nargs="+", type=Path, help="ace-bench --out folders")
    parser.add_argument("--into", type=Path, required=True,
                        help="the folder to add their cells to (created if missing)")
    args = parser.parse_args(argv)
    try:
        outcome = merge_folders(args.sources, args.into)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{args.into}: {len(outcome['added'])} cell(s) added, {len(outcome['kept'])} "
          "already there" + (f", {len(outcome['differ'])} of them with other figures "
                             f"(kept {args.into}'s): {', '.join(outcome['differ'])}"
                             if outcome["differ"] else ""))
    for line in outcome["other_settings"]:
        print(f"added unselected, {args.into} holds this cell under other settings: {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

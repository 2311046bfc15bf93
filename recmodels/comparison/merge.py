"""Merge the finished cells of several ``ace-bench`` folders into one.

A cell's fingerprint keys everything that decides its outcome (settings, data and
embedding digests, version), not the folder it ran in, so cells trained by separate
``ace-bench`` processes (several machines, or two processes on one machine with a thread
each) can be brought together afterwards: each cell's rows of ``results.csv`` and its
``runs/<fingerprint>.json`` / ``.npz``. An ``ace-bench`` run on the merged folder then
reuses them, as if it had trained them itself.

    python -m recmodels.comparison.merge --into DEST SOURCE [SOURCE ...]

Run it while no ``ace-bench`` writes to ``DEST``: a running process keeps ``results.csv``
in memory and would write its own copy over the merged rows. Checkpoints are not copied
(they resume unfinished runs and belong to the folder that ran them).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from .inputs import InputError
from .runner import COLUMNS, METRICS, TEXT_COLUMNS
from .runs import write_atomic

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
    return pd.read_csv(path, dtype=TEXT_COLUMNS, keep_default_na=False,
                       na_values={m: [""] for m in METRICS})


def _run_files(folder: Path, key: str, rows: pd.DataFrame) -> list[Path]:
    """The ``runs/`` files of cell ``key``: its history, and its ranks unless it diverged."""
    diverged = (rows["best_epoch"].astype(int) == 0).all()
    names = [f"{key}.json"] + ([] if diverged else [f"{key}.npz"])
    files = [folder / "runs" / name for name in names]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise InputError(f"{folder}: cell {key} is in results.csv but {', '.join(missing)} "
                         "is missing; rerun ace-bench on that folder to write it, or leave "
                         "the folder out.")
    return files


def merge_folders(sources: list[Path], dest: Path) -> dict[str, list[str]]:
    """Add every cell of ``sources`` that ``dest`` lacks to ``dest``.

    Returns the fingerprints ``"added"``, those ``"kept"`` because ``dest`` (or an earlier
    source) already held them, and among those the ones whose figures ``"differ"`` (the
    same settings run on another machine agree to float rounding only); ``dest`` keeps its
    own rows then. Every source is checked before anything is written; ``runs/`` files are
    copied before ``results.csv`` is replaced, so an interrupted merge leaves no row
    without its files.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from recmodels.comparison.merge import merge_folders
    >>> merge_folders([Path(tempfile.mkdtemp())], Path(tempfile.mkdtemp()))
    Traceback (most recent call last):
    ...
    recmodels.comparison.inputs.InputError: ...: no results.csv here; pass a folder ...
    """
    dest = Path(dest)
    sources = [Path(s) for s in sources]
    if any(s.resolve() == dest.resolve() for s in sources):
        raise InputError(f"{dest}: a source is the destination itself; pass other folders.")
    merged = read_results(dest) if (dest / "results.csv").is_file() else pd.DataFrame(
        columns=COLUMNS)
    outcome = {"added": [], "kept": [], "differ": []}
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
            additions.append(rows)
            known[key] = rows
            outcome["added"].append(key)
    if additions:
        (dest / "runs").mkdir(parents=True, exist_ok=True)
        for path, target in copies:
            write_atomic(target, lambda p, path=path: shutil.copyfile(path, p))
        merged = pd.concat([merged, *additions], ignore_index=True)
        write_atomic(dest / "results.csv", lambda p: merged[COLUMNS].to_csv(p, index=False))
    return outcome


def _same_outcome(ours: pd.DataFrame, theirs: pd.DataFrame) -> bool:
    """Whether two runs of one fingerprint report the same figures, split by split."""
    ours, theirs = (frame.sort_values("split")[OUTCOME_COLUMNS].to_numpy(float)
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
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The files an ``ace-bench`` folder keeps per cell: checkpoints, per-user ranks, history."""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from .inputs import InputError

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; folders are not guarded there
    fcntl = None

LOCK_NAME = ".ace-bench.lock"
_held: dict[Path, int] = {}  # folders this process holds, with how many holders inside it


def checkpoint_path(out: Path, method: str, backbone: str, seed: int, lr: float,
                    key: str = "*") -> Path:
    """Where a cell's run is checkpointed; ``key="*"`` gives a glob over its versions."""
    return out / "checkpoints" / f"{method}-{backbone}-s{seed}-lr{lr:g}-{key[:12]}.pt"


def write_atomic(path: Path, write) -> None:
    """Call ``write`` on a temporary file next to ``path``, then rename it into place."""
    temporary = path.with_name(f".{path.name}.tmp")
    write(temporary)
    os.replace(temporary, path)


class FolderInUseError(InputError):
    """Another process is writing to the folder: two writers of one ``results.csv`` would
    each overwrite the rows the other added.

    Examples
    --------
    >>> from recmodels.comparison.runs import FolderInUseError
    >>> from recmodels.comparison.inputs import InputError
    >>> issubclass(FolderInUseError, InputError)
    True
    """


def ensure_free(out: Path) -> None:
    """Raise :class:`FolderInUseError` now if another process holds ``out``; writes nothing.

    For a check before long input work: :func:`folder_lock` is still what guards the
    writes.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from recmodels.comparison.runs import ensure_free
    >>> out = Path(tempfile.mkdtemp()) / "not-yet"
    >>> ensure_free(out)
    >>> out.exists()
    False
    """
    path = Path(out) / LOCK_NAME
    if fcntl is None or Path(out).resolve() in _held or not path.is_file():
        return
    with open(path) as stream:
        _take(stream, Path(out))


def ensure_writable(out: Path, name: str | None = None) -> None:
    """Raise :class:`~.inputs.InputError` now if ``out`` can not be created or written to.

    For a check before long input work (encoding the item text), so that a folder that
    can not take the results fails at once, not minutes later. ``out`` is not created: a
    nameless temporary file is made in it, or in the nearest folder above it that exists,
    and is gone when the check returns. ``name`` (e.g. ``"--out"``) prefixes the message.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from recmodels.comparison.runs import ensure_writable
    >>> out = Path(tempfile.mkdtemp()) / "not-yet" / "run"
    >>> ensure_writable(out)
    >>> out.parent.exists()
    False
    """
    out = Path(out)
    where, fix = (f"{name} {out}", f"another {name}") if name else (str(out), "another folder")
    existing = out
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        what = "is a file" if existing == out else f"{existing} is a file"
        raise InputError(f"{where}: {what}, not a folder; choose {fix}.")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise _unwritable(where, error, fix) from error


def _unwritable(where, error: OSError, fix: str = "another folder") -> InputError:
    return InputError(f"{where}: can not write there ({error.strerror or error}); choose "
                      f"{fix}.")


def _take(stream, out: Path) -> None:
    """Lock ``out``'s open lock file, or raise :class:`FolderInUseError` naming its holder."""
    try:
        fcntl.flock(stream, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        stream.seek(0)
        holder = stream.read().strip() or "another process"
        raise FolderInUseError(
            f"{out}: {holder} is writing to this folder, and two runs writing one "
            "results.csv would lose each other's rows. Wait for it to end, or write to "
            "another folder and merge that one in afterwards (python -m "
            f"recmodels.comparison.merge --into {out} OTHER_FOLDER).") from None


@contextmanager
def folder_lock(out: Path) -> Iterator[Path]:
    """Hold ``out`` as its only writer for the ``with`` block (created if missing).

    An exclusive advisory lock on ``out/.ace-bench.lock``, which records the holder's
    process id and start time. The system drops it when the holder exits, however it
    ends, so a killed run leaves nothing to clean up. Re-entrant within a process;
    readers (``ace-bench --dry-run``, the report scripts) take no lock. Not enforced on
    systems without ``fcntl`` (Windows).

    Raises
    ------
    FolderInUseError
        Another process holds ``out``; the message names it, before anything is written.
    InputError
        ``out`` is a file, or can not be created or written to.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from recmodels.comparison.runs import folder_lock
    >>> out = Path(tempfile.mkdtemp()) / "run"
    >>> with folder_lock(out), folder_lock(out):  # the same process may enter twice
    ...     sorted(p.name for p in out.iterdir())
    ['.ace-bench.lock']
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: is a file, not a folder; choose another folder.")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise _unwritable(out, error) from error
    key = out.resolve()
    stream = None
    if fcntl is not None and key not in _held:
        try:
            stream = open(out / LOCK_NAME, "a+")
        except OSError as error:
            raise _unwritable(out, error) from error
        try:
            _take(stream, out)
        except FolderInUseError:
            stream.close()
            raise
        stream.seek(0)
        stream.truncate()
        stream.write(f"process {os.getpid()} (since {time.strftime('%Y-%m-%d %H:%M:%S')})\n")
        stream.flush()
    _held[key] = _held.get(key, 0) + 1
    try:
        yield out
    finally:
        _held[key] -= 1
        if not _held[key]:
            del _held[key]
        if stream is not None:
            stream.close()  # closing the file releases the lock


def save_run(out: Path, key: str, result, ranks: dict[str, np.ndarray]) -> None:
    """Per-user ranks (by split name) and the full settings and history of a finished cell."""
    runs = out / "runs"
    runs.mkdir(exist_ok=True)

    def write_ranks(path: Path) -> None:
        with open(path, "wb") as stream:
            np.savez(stream, **{split: np.asarray(values, dtype=np.int32)
                                for split, values in ranks.items() if values is not None})

    write_atomic(runs / f"{key}.npz", write_ranks)
    write_atomic(runs / f"{key}.json", lambda p: p.write_text(json.dumps(
        {"trainer_settings": result.settings, "history": result.history}, indent=1)))


def save_model(out: Path, key: str, model) -> None:
    """The trained model of a finished cell (its best epoch's weights), whole, as
    ``runs/<key>.pt`` (``ace-bench --keep-models``; read it with :func:`load_model`)."""
    runs = out / "runs"
    runs.mkdir(exist_ok=True)
    write_atomic(runs / f"{key}.pt", lambda p: torch.save(model, p))


def load_model(out: str | Path, key: str, map_location: str = "cpu"):
    """The trained model a finished cell kept (``ace-bench --keep-models``), ready to rank.

    ``key`` is the cell's ``fingerprint`` in ``results.csv``. The file is a pickled
    module: load only folders you trust, with the package version that wrote them.

    Raises
    ------
    FileNotFoundError
        The cell kept no model: it ran without ``--keep-models``, or has not finished.

    Examples
    --------
    >>> import tempfile
    >>> from recmodels.comparison.runs import load_model
    >>> load_model(tempfile.mkdtemp(), "0123456789abcdef")
    Traceback (most recent call last):
    ...
    FileNotFoundError: .../runs/0123456789abcdef.pt: no model kept for cell ...
    """
    path = Path(out) / "runs" / f"{key}.pt"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no model kept for cell {key}; ace-bench keeps a finished cell's model "
            "only with --keep-models (a cell that finished without it is reused, not "
            "retrained: train it into another --out to keep its model).")
    return torch.load(path, map_location=map_location, weights_only=False)


def save_diverged(out: Path, key: str, settings: dict, error) -> None:
    """The record of a cell whose training diverged: its settings, the finished epochs'
    history and the epoch it failed in (no ranks: there is no model to rank with)."""
    runs = out / "runs"
    runs.mkdir(exist_ok=True)
    write_atomic(runs / f"{key}.json", lambda p: p.write_text(json.dumps(
        {"cell_settings": settings, "history": error.history,
         "diverged_in_epoch": error.epoch}, indent=1)))


def load_ranks(out: Path, key: str, split: str = "test") -> np.ndarray | None:
    """Per-user ranks a finished cell saved, or None when they are missing.

    ``split`` is ``"valid"`` or ``"test"``; cold-start cells also keep ``"test-new"``
    (users whose test target is new, in user order) and the ``"+map"`` variant's
    (``"test+map"``, ...; :func:`~recmodels.comparison.cold.rank_name`).
    """
    path = out / "runs" / f"{key}.npz"
    if not path.exists():
        return None
    with np.load(path) as saved:
        return saved[split] if split in saved else None

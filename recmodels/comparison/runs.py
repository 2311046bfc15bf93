"""The files an ``ace-bench`` folder keeps per cell: checkpoints, per-user ranks, history."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np


def checkpoint_path(out: Path, method: str, backbone: str, seed: int, lr: float,
                    key: str = "*") -> Path:
    """Where a cell's run is checkpointed; ``key="*"`` gives a glob over its versions."""
    return out / "checkpoints" / f"{method}-{backbone}-s{seed}-lr{lr:g}-{key[:12]}.pt"


def write_atomic(path: Path, write) -> None:
    """Call ``write`` on a temporary file next to ``path``, then rename it into place."""
    temporary = path.with_name(f".{path.name}.tmp")
    write(temporary)
    os.replace(temporary, path)


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

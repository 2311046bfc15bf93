"""Atomic checkpoint files: a crash never leaves a half-written checkpoint behind."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch


def save_atomic(state: dict, path: str | Path) -> None:
    """Write ``state`` with ``torch.save`` to a temporary file, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            torch.save(state, stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def load(path: str | Path, device: str | torch.device = "cpu") -> dict:
    """Read a checkpoint written by :func:`save_atomic`."""
    return torch.load(path, map_location=device, weights_only=False)

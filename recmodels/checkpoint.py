"""Checkpoint files and the random state they keep.

Files are written atomically: a crash never leaves a half-written checkpoint behind. The
random state is every generator a resumed run needs to draw what the uninterrupted run
would have drawn: the CPU generator, every CUDA device's and, under ``torchrun``, each
rank's (ranks draw different dropout masks).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import distributed as dist

from . import distributed


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


def _local_rng_state() -> tuple[torch.Tensor, list[torch.Tensor] | None]:
    return (torch.get_rng_state(),
            torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None)


def rng_states() -> dict[str, Any]:
    """The random state to keep in a checkpoint: ``torch_rng``, ``cuda_rng``, ``rank_rng``.

    ``rank_rng`` holds every rank's states, gathered on all ranks (None in one process).
    Under ``torchrun`` this is a collective: every rank must call it.

    Examples
    --------
    >>> from recmodels.checkpoint import rng_states
    >>> sorted(rng_states())
    ['cuda_rng', 'rank_rng', 'torch_rng']
    """
    torch_rng, cuda_rng = _local_rng_state()
    rank_rng = None
    if distributed.world_size() > 1:
        rank_rng = [None] * distributed.world_size()
        dist.all_gather_object(rank_rng, _local_rng_state())
    return {"torch_rng": torch_rng, "cuda_rng": cuda_rng, "rank_rng": rank_rng}


def restore_rng_states(saved: dict[str, Any]) -> None:
    """Set the generators from a checkpoint's :func:`rng_states` (this rank's, if gathered).

    Examples
    --------
    >>> import torch
    >>> from recmodels.checkpoint import restore_rng_states, rng_states
    >>> saved = rng_states(); first = torch.rand(3)
    >>> restore_rng_states(saved)
    >>> bool((torch.rand(3) == first).all())
    True
    """
    torch_rng, cuda_rng = saved["torch_rng"], saved["cuda_rng"]
    if saved.get("rank_rng") is not None:
        torch_rng, cuda_rng = saved["rank_rng"][distributed.rank()]
    # Loading onto a CUDA device moved the states there; they are set from the CPU.
    torch.set_rng_state(torch_rng.cpu())
    if cuda_rng is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([state.cpu() for state in cuda_rng])

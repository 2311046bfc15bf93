"""Beauty slice, settings, ID table and timing helpers shared by the training benchmarks.

Importable from the RecBole virtual environment too: nothing here imports recmodels or
torch at module level.
"""

from __future__ import annotations

import resource
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "beauty"
# The paper's settings (docs METHODS.md sections 2 and 4): our backbones' defaults.
SETTINGS = dict(hidden=128, layers=2, heads=2, inner=256, hidden_dropout=0.5,
                attn_dropout=0.3, gru_hidden=128, gru_layers=1, gru_dropout=0.5,
                mask_ratio=0.2, ft_ratio=0.5, max_len=50, batch=256, lr=1e-3, seed=0)


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def synchronize(device: str) -> None:
    """Wait for the GPU's queued work, so that a wall-clock time covers it."""
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


def peak_gpu_mib(device: str) -> dict:
    """``{"peak_gpu_mib": ...}`` on CUDA (the allocator's peak), else empty."""
    if device != "cuda":
        return {}
    import torch

    return {"peak_gpu_mib": torch.cuda.max_memory_allocated() / 2**20}


def read_interactions(data_dir: Path, users: int | None):
    """The interaction file, or only its first ``users`` users (in order of appearance).

    Parameters
    ----------
    data_dir : Path
        Folder holding ``interactions.csv.gz`` (``user_id``, ``item_id``, ``position``).
    users : int or None
        Keep this many users, every interaction of each; None keeps all.

    Returns
    -------
    DataFrame
    """
    import pandas as pd

    frame = pd.read_csv(data_dir / "interactions.csv.gz", dtype={"user_id": str, "item_id": str})
    if users is not None:
        frame = frame[frame["user_id"].isin(frame["user_id"].unique()[:users])]
    return frame


def k_core(args) -> int:
    """The k-core filter both sides apply: 5 on the whole file, none on a ``--users`` slice."""
    return 5 if args.users is None else 1


def id_table(data, backbone: str):
    """``ace-bench``'s ID table for ``backbone`` (Xavier-normal on GRU4Rec, as RecBole's)."""
    import numpy as np

    from recmodels.comparison import build_table

    return build_table("id", np.empty((data.n_items, 0), np.float32), data, SETTINGS["hidden"],
                       backbone=backbone)

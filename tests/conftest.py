"""Shared fixtures: the real data sets under ../shared/data, skipped when absent."""

from pathlib import Path

import numpy as np
import pytest

DATA_ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared_dataset(name: str) -> Path:
    folder = DATA_ROOT / name
    if not folder.is_dir():
        pytest.skip(f"real data set {name!r} not found at {folder} (only in the project's CI)")
    return folder


@pytest.fixture(scope="session")
def beauty_dir() -> Path:
    return shared_dataset("beauty")


@pytest.fixture(scope="session")
def beauty_embeddings(beauty_dir) -> np.ndarray:
    return np.load(beauty_dir / "item_emb_all-MiniLM-L6-v2.f16.npy").astype(np.float32)

"""Small synthetic interaction logs for the recmodels tests, and a subprocess runner."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def run_with_env(variable: str, value: str, script: str = "import recmodels"):
    """``python -c script`` in the repository root with one environment variable set."""
    env = dict(os.environ, **{variable: value})
    return subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, cwd=ROOT)


def stdout_under_each(variable: str, values, script: str) -> dict:
    """Each value's stdout words of ``script`` (which must succeed), keyed by the value."""
    words = {}
    for value in values:
        done = run_with_env(variable, value, script)
        assert done.returncode == 0, done.stderr
        words[value] = done.stdout.split()
    return words


def assert_clear_env_error(variable: str, bad: str, allowed: str) -> None:
    """``import recmodels`` fails, naming the variable, its bad value and an allowed one."""
    done = run_with_env(variable, bad)
    assert done.returncode != 0
    assert f"{variable}={bad!r}" in done.stderr and repr(allowed) in done.stderr


def synthetic_log(n_users=40, n_items=25, seed=0, min_len=5, max_len=14):
    """Users walk through items with a preferred step, so there is something to learn."""
    rng = np.random.default_rng(seed)
    rows = []
    for user in range(n_users):
        length = rng.integers(min_len, max_len + 1)
        start, step = rng.integers(0, n_items), 1 + user % 3
        for position in range(length):
            rows.append((f"u{user}", f"i{(start + step * position) % n_items}", position))
    return pd.DataFrame(rows, columns=["user_id", "item_id", "position"])


def toy_folder(path, *, n_users=50, n_items=20, width=24, shift=1.0, dtype=np.float32,
               brand=False):
    """An ace-bench data folder (interactions, items with titles, ``emb.npy``) at ``path``."""
    log = synthetic_log(n_users=n_users, n_items=n_items)
    path.mkdir()
    log.to_csv(path / "interactions.csv.gz", index=False)
    ids = sorted(log.item_id.unique())
    items = pd.DataFrame({"item_id": ids, "title": [f"thing {i}" for i in ids]})
    if brand:
        items["brand"] = ["" if i.endswith("1") else "acme" for i in ids]
    items.to_csv(path / "items.csv.gz", index=False)
    rng = np.random.default_rng(0)
    np.save(path / "emb.npy", (rng.standard_normal((len(ids), width)) + shift).astype(dtype))
    return path


def toy_argv(folder, out, *extra):
    """``ace-bench`` arguments for a tiny, fast run on a :func:`toy_folder`."""
    return ["--data", str(folder), "--embeddings", str(folder / "emb.npy"), "--out", str(out),
            "--backbones", "sasrec", "--k-core", "1", "--window-stride", "3",
            "--hidden-size", "16", "--max-len", "8", *extra]

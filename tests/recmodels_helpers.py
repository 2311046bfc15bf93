"""Small synthetic interaction logs for the recmodels tests."""

import numpy as np
import pandas as pd


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

"""
Reshaping an embedding matrix in a Pipeline
===========================================

Every reshaper is a scikit-learn transformer, so it follows ``Normalizer`` (row
normalisation) in a ``Pipeline`` and returns a float32 table. Here each one reshapes the
same anisotropic matrix, and the diagnostics show how evenly the result spreads its
variance (effective rank) and how many of each item's cosine neighbours it keeps.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import Normalizer

from ace_transform import (
    ACETransformer,
    PCAInit,
    WhiteningTransformer,
    effective_rank,
    neighbor_overlap,
)

rng = np.random.default_rng(0)
# An anisotropic "LLM" matrix: decaying spectrum plus a shared offset.
E = (rng.standard_normal((3000, 96)) * np.geomspace(1, 0.01, 96) + 0.2).astype(np.float32)

reshapers = {
    "PCA init": PCAInit(32, target_std=0.1),
    "whitening (PCA, k=32)": WhiteningTransformer(method="pca", n_components=32),
    "ACE lam=5": ACETransformer(32, lam=5.0),
    "ACE lam=50": ACETransformer(32, lam=50.0),
    "ACE lam=500": ACETransformer(32, lam=500.0),
}
rows = []
for name, reshaper in reshapers.items():
    table = make_pipeline(Normalizer(), reshaper).fit_transform(E)
    rows.append((name, effective_rank(table), neighbor_overlap(E, table, max_queries=500)))
    print(f"{name:24s} {table.dtype}  effective rank {rows[-1][1]:5.1f}  "
          f"neighbours kept {rows[-1][2]:.2f}")

names, ranks, kept = zip(*rows)
fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.2), sharey=True)
left.barh(names, ranks)
left.set_xlabel("effective rank (of 32)")
right.barh(names, kept, color="tab:orange")
right.set_xlabel("top-10 neighbours kept")
fig.tight_layout()

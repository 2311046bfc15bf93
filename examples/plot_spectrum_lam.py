"""
ACE's spectrum along lam, without training
==========================================

``lam_path`` solves the eigenproblem once and reweights the kept directions for every
``lam``, so a whole grid costs about one fit. The left panel is the seed paper's Figure 2:
``lam = 0`` whitens (flat spectrum), large ``lam`` keeps the input's decay. The right panel
shows the trade-off the intrinsic scorers measure.
"""

import matplotlib.pyplot as plt
import numpy as np

from ace_transform.model_selection import lam_path
from ace_transform.plotting import plot_spectra

rng = np.random.default_rng(0)
E = rng.standard_normal((4000, 128)) * np.geomspace(1, 0.01, 128) + 0.2
E /= np.linalg.norm(E, axis=1, keepdims=True)

path = lam_path(E, [0, 1, 5, 50, 500, 5000], n_components=64)
print(path.diagnostics.round(3).to_string())

fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
plot_spectra(path.spectra, ax=left)
diagnostics = path.diagnostics
lams = np.where(diagnostics.index > 0, diagnostics.index, 0.1)
right.plot(lams, diagnostics["isotropy"], marker="o", label="isotropy")
right.plot(lams, diagnostics["neighbor_overlap"], marker="o", label="neighbours kept")
right.set(xscale="log", xlabel="lam (0 drawn at 0.1)", title="Intrinsic scores")
right.legend()
fig.tight_layout()

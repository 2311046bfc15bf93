"""
Grid search over lam and gamma
==============================

``GridSearchCV`` tunes ACE inside a ``Pipeline`` with the intrinsic scorers of
:mod:`ace_transform.model_selection`. They score held-out items (the transformer maps rows
it was not fitted on), so an ordinary ``KFold`` works. Isotropy prefers ``lam = 0``,
semantic preservation the largest ``lam``; the combined score trades one for the other.
``gamma`` is a global scale, so it leaves these scores unchanged: tune it with the
downstream scorer (:class:`recmodels.tuning.DownstreamScorer`), which trains a recommender.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import Normalizer

from ace_transform import ACETransformer
from ace_transform.model_selection import get_scorer
from ace_transform.plotting import plot_score_vs_lam

rng = np.random.default_rng(0)
E = (rng.standard_normal((3000, 96)) * np.geomspace(1, 0.01, 96) + 0.2).astype(np.float32)

search = GridSearchCV(
    make_pipeline(Normalizer(), ACETransformer(32)),
    {"acetransformer__lam": [0, 1, 5, 10, 50, 100, 500], "acetransformer__gamma": [0.1]},
    scoring={name: get_scorer(name)
             for name in ("isotropy", "semantic_preservation", "combined")},
    refit="combined", cv=KFold(3, shuffle=True, random_state=0),
).fit(E)
print("best by the combined score:", search.best_params_)

fig, axes = plt.subplots(1, 3, figsize=(11, 3.2))
for ax, name in zip(axes, ("isotropy", "semantic_preservation", "combined")):
    plot_score_vs_lam(search.cv_results_, score=f"mean_test_{name}", ax=ax)
    ax.set_title(name)
fig.tight_layout()

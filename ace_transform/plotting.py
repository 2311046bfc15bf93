"""Figures for tuning ACE: spectra along ``lam`` and a score against ``lam``.

matplotlib is an optional extra (``pip install "ace-transform[plot]"``); it is imported only
when a function here is called.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["plot_score_vs_lam", "plot_spectra"]


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            "Plotting needs matplotlib; install it with pip install \"ace-transform[plot]\"."
        ) from error
    return plt


def plot_spectra(spectra: pd.DataFrame, *, ax=None):
    """Normalised eigenvalue spectra, one curve per column, on log-log axes.

    Parameters
    ----------
    spectra : DataFrame
        One column per curve, rows in descending order of eigenvalue, as
        ``lam_path(...).spectra`` returns (numeric column names are labelled ``lam=...``).
    ax : matplotlib Axes, optional
        Drawn into a new figure when None.

    Returns
    -------
    ax : matplotlib Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from ace_transform.model_selection import lam_path
    >>> from ace_transform.plotting import plot_spectra
    >>> E = np.random.default_rng(0).standard_normal((300, 24)) * np.geomspace(1, 0.01, 24)
    >>> ax = plot_spectra(lam_path(E, [0.0, 10.0, 1000.0], n_components=8).spectra)
    >>> len(ax.get_lines())
    4
    """
    plt = _pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.5))
    for name, values in spectra.items():
        label = name if isinstance(name, str) else f"lam={name:g}"
        positive = np.asarray(values, dtype=float)
        ax.plot(np.arange(1, positive.size + 1), np.where(positive > 0, positive, np.nan),
                label=label)
    ax.set(xscale="log", yscale="log", xlabel="direction", ylabel="normalised eigenvalue",
           title="Spectrum of the item table")
    ax.legend(fontsize=7)
    return ax


def _param_column(cv_results: pd.DataFrame, name: str) -> str | None:
    matches = [c for c in cv_results.columns
               if c.startswith("param_") and c.rsplit("__", 1)[-1].removeprefix("param_") == name]
    return matches[0] if matches else None


def plot_score_vs_lam(cv_results, *, score: str = "mean_test_score", ax=None):
    """A score against ``lam`` (log axis), one curve per ``gamma`` when the grid varies it.

    Parameters
    ----------
    cv_results : dict or DataFrame
        ``GridSearchCV.cv_results_`` of a grid over a ``lam`` parameter (plain or
        ``step__lam`` in a Pipeline).
    score : str, default="mean_test_score"
        Column to plot, for example ``"mean_test_ndcg@10"`` with multi-metric scoring.
    ax : matplotlib Axes, optional

    Returns
    -------
    ax : matplotlib Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from sklearn.model_selection import GridSearchCV
    >>> from ace_transform import ACETransformer
    >>> from ace_transform.model_selection import IsotropyScorer
    >>> from ace_transform.plotting import plot_score_vs_lam
    >>> E = np.random.default_rng(0).standard_normal((300, 24)) * np.geomspace(1, 0.01, 24)
    >>> search = GridSearchCV(ACETransformer(8), {"lam": [0.0, 10.0, 100.0],
    ...                       "gamma": [0.1, 1.0]}, scoring=IsotropyScorer(), cv=3).fit(E)
    >>> len(plot_score_vs_lam(search.cv_results_).get_lines())
    2
    """
    plt = _pyplot()
    results = pd.DataFrame(cv_results)
    lam_column = _param_column(results, "lam")
    if lam_column is None:
        raise ValueError("cv_results has no 'lam' parameter column; grid-search over lam "
                         "(or 'acetransformer__lam' in a Pipeline) to plot against it.")
    if score not in results.columns:
        raise ValueError(f"cv_results has no column {score!r}; scores present: "
                         f"{[c for c in results.columns if c.startswith('mean_test')]}.")
    gamma_column = _param_column(results, "gamma")
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.5))
    groups = results.groupby(gamma_column) if gamma_column else [(None, results)]
    for gamma, group in groups:
        group = group.sort_values(lam_column)
        # lam = 0 has no place on a log axis; it is drawn at a tenth of the smallest lam > 0.
        lams = group[lam_column].astype(float).to_numpy()
        smallest = lams[lams > 0].min() if (lams > 0).any() else 1.0
        ax.plot(np.where(lams > 0, lams, smallest / 10), group[score], marker="o",
                label=None if gamma is None else f"gamma={gamma:g}")
    ax.set(xscale="log", xlabel="lam (0 drawn at a tenth of the smallest)", ylabel=score)
    if gamma_column:
        ax.legend(fontsize=7)
    return ax

"""Results table in the layout of the seed paper's Table 1, and the spectrum figure."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import ttest_rel

from ace_transform.model_selection import lam_path

from ..metrics import per_user_metrics
from .cold import MAP_SUFFIX, NEW_SPLIT, rank_name
from .methods import METHODS
from .runs import load_ranks

TABLE_METRICS = ("recall@10", "ndcg@10", "recall@20", "ndcg@20")
HEADERS = {"recall@10": "R@10", "ndcg@10": "N@10", "recall@20": "R@20", "ndcg@20": "N@20"}
ALPHA = 0.05
SIGNIFICANCE_NOTE = (
    "`*`: better than every other method of the backbone on that metric, paired one-tailed "
    "t-test over test users (`scipy.stats.ttest_rel`, `alternative='greater'`) on per-user "
    "metrics averaged over seeds, p < 0.05.")


def per_user_test_metrics(rows: pd.DataFrame, out: Path,
                          split: str = "test") -> dict[str, np.ndarray] | None:
    """Per-user test metrics of one method, averaged over its seeds; None when unsaved.

    ``split="test-new"``: the cold-start protocol's users whose test target is new.
    """
    name = rank_name(str(rows["method"].iloc[0]), split) if len(rows) else split
    ranks = [load_ranks(out, key, name) for key in rows["fingerprint"]]
    if not ranks or any(r is None for r in ranks):
        return None
    per_seed = [per_user_metrics(r, (10, 20)) for r in ranks]
    return {m: np.mean([seed[m] for seed in per_seed], axis=0) for m in TABLE_METRICS}


def significance_marks(per_user: dict[str, dict[str, np.ndarray]],
                       alpha: float = ALPHA) -> set[tuple[str, str]]:
    """``(method, metric)`` pairs better than every other method at level ``alpha``.

    Paired one-tailed t-tests over users (the same users for every method).

    Examples
    --------
    >>> import numpy as np
    >>> from recmodels.comparison.report import significance_marks
    >>> rng = np.random.default_rng(0)
    >>> base = rng.random(500)
    >>> users = {"a": {"ndcg@10": base + 0.1}, "b": {"ndcg@10": base + rng.normal(0, .1, 500)}}
    >>> sorted(significance_marks(users))
    [('a', 'ndcg@10')]
    """
    marks = set()
    methods = list(per_user)
    for metric in next(iter(per_user.values()), {}):
        for method in methods:
            others = [m for m in methods if m != method]
            p_values = [ttest_rel(per_user[method][metric], per_user[other][metric],
                                  alternative="greater").pvalue for other in others]
            if others and all(p < alpha for p in p_values):
                marks.add((method, metric))
    return marks


def markdown_table(results: pd.DataFrame, method_order: list[str],
                   out: Path | None = None, split: str = "test") -> str:
    """Test metrics of the selected cells, mean ± std over seeds, one block per backbone.

    With ``out``, each block also marks significant figures from the per-user ranks in
    ``out/runs`` (see :func:`significance_marks`). ``split="test-new"`` tabulates the
    cold-start protocol's users whose test target is a new item.
    """
    test = results[(results["split"] == split) & results["selected"].astype(bool)]
    lines = []
    marked_any = False
    for backbone, block in test.groupby("backbone", sort=False):
        stats = block.groupby("method")[list(TABLE_METRICS)].agg(["mean", "std"])
        seeds = block.groupby("method")["seed"].nunique()
        rates = block.groupby("method")["lr"].first()
        marks: set[tuple[str, str]] = set()
        if out is not None:
            per_user = {m: per_user_test_metrics(rows, out, split)
                        for m, rows in block.groupby("method")}
            # A paired test needs two users at least (few targets may be new).
            if (len(per_user) > 1 and all(v is not None for v in per_user.values())
                    and min(v["ndcg@10"].size for v in per_user.values()) > 1):
                marks = significance_marks(per_user)
        lines += [f"### {backbone}", "",
                  "| method | lr | seeds | "
                  + " | ".join(HEADERS[m] for m in TABLE_METRICS) + " |",
                  "|---|---|---|" + "---|" * len(TABLE_METRICS)]
        for method in [m for m in method_order if m in stats.index]:
            cells = []
            for metric in TABLE_METRICS:
                mean, std = stats.loc[method, (metric, "mean")], stats.loc[method, (metric, "std")]
                cells.append(f"{mean:.4f}" + ("" if np.isnan(std) else f" ± {std:.4f}")
                             + ("*" if (method, metric) in marks else ""))
            lines.append(f"| {method} | {rates[method]:g} | {seeds[method]} | "
                         + " | ".join(cells) + " |")
        lines.append("")
        marked_any |= bool(marks)
    if out is not None:
        lines.append(SIGNIFICANCE_NOTE if marked_any else
                     "No figure is significantly better than every other method's "
                     "(paired one-tailed t-test over test users, p < 0.05).")
    return "\n".join(lines)


def training_summary(results: pd.DataFrame, max_epochs: int, patience: int,
                     out: Path | None = None) -> str:
    """One line on how the table's cells trained: epochs, best epoch, early stop or cap.

    Its minutes are those of the table's methods (their unchosen learning-rate candidates
    included), not of a method still choosing its rate. ``out`` is passed to
    :func:`training_seconds`.

    Examples
    --------
    >>> import pandas as pd
    >>> from recmodels.comparison.report import training_summary
    >>> rows = pd.DataFrame({"method": ["id", "ace"], "backbone": "sasrec", "seed": 0,
    ...                      "split": "test", "selected": True, "epochs": [8, 10],
    ...                      "best_epoch": [5, 10], "seconds": [90.0, 60.0],
    ...                      "lr": 1e-3, "fingerprint": ["a", "b"]})
    >>> print(training_summary(rows, max_epochs=10, patience=3))
    sasrec: id 8 epochs (best 5), ace 10 (best 10); 1 of 2 cells reached the 10-epoch cap \
before early stopping (patience 3); 2.5 min of training in these cells.
    """
    test = results[(results["split"] == "test") & results["selected"].astype(bool)]
    blocks = []
    for backbone, block in test.groupby("backbone", sort=False):
        several_seeds = block["seed"].nunique() > 1
        cells = [f"{row.method}{f' seed {row.seed}' if several_seeds else ''} "
                 f"{int(row.epochs)}{' epochs' if not i else ''} (best {int(row.best_epoch)})"
                 for i, row in enumerate(block.itertuples())]
        blocks.append(f"{backbone}: " + ", ".join(cells))
    capped = int(((test["epochs"] >= max_epochs)
                  & (test["epochs"] - test["best_epoch"] < patience)).sum())
    ending = (f"{capped} of {len(test)} cells reached the {max_epochs}-epoch cap before early "
              f"stopping (patience {patience})" if capped else
              f"every cell stopped early (no improvement in {patience} epochs)")
    shown = set(zip(test["method"].str.removesuffix(MAP_SUFFIX), test["backbone"]))
    counted = results[[cell in shown for cell in zip(
        results["method"].str.removesuffix(MAP_SUFFIX), results["backbone"])]]
    candidates = (", learning-rate candidates included"
                  if not counted["selected"].astype(bool).all() else "")
    return (f"{'; '.join(blocks)}; {ending}; {training_seconds(counted, out) / 60:.1f} min of "
            f"training in these cells{candidates}.")


def training_seconds(results: pd.DataFrame, out: Path | None = None) -> float:
    """Seconds of training behind ``results``: each cell once, unchosen candidates included.

    A cell has one fingerprint however many rows it has (``+map`` rows share their
    method's). A chosen rate's run that continued its short-grid candidate's checkpoint
    already counts the candidate's epochs, so that candidate is left out. With ``out``,
    the runs' histories in ``out/runs`` tell whether it did (its first epoch is the
    candidate's); a run that started afresh (the checkpoint was gone) counts its
    candidate too. Without ``out`` every chosen run is taken to have continued.

    Examples
    --------
    >>> import pandas as pd
    >>> from recmodels.comparison.report import training_seconds
    >>> rows = pd.DataFrame({
    ...     "method": ["ace", "ace+map", "ace", "ace"], "backbone": "sasrec", "seed": 0,
    ...     "split": "test", "lr": [1e-3, 1e-3, 1e-3, 1e-4],
    ...     "selected": [True, True, False, False], "fingerprint": ["full", "full", "c1", "c2"],
    ...     "seconds": [600.0, 600.0, 120.0, 100.0]})
    >>> training_seconds(rows)  # the full run (which holds c1's epochs) and c2
    700.0
    """
    test = results[results["split"] == "test"].drop_duplicates("fingerprint")
    selected = test["selected"].astype(bool)
    cells = list(zip(test["method"].str.removesuffix(MAP_SUFFIX), test["backbone"],
                     test["seed"], test["lr"]))
    chosen = {cell: key for cell, key, is_selected in
              zip(cells, test["fingerprint"], selected) if is_selected}
    continued = [not is_selected and cell in chosen
                 and (out is None or _continues(out, key, chosen[cell]))
                 for cell, key, is_selected in zip(cells, test["fingerprint"], selected)]
    return float(test["seconds"][~pd.Series(continued, index=test.index)].sum())


def _continues(out: Path, candidate: str, run: str) -> bool:
    """Whether the run ``run`` in ``out/runs`` went on from ``candidate``'s epochs.

    Unknown (a file missing) counts as continued, the default of :func:`training_seconds`.
    """
    first = []
    for key in (candidate, run):
        path = out / "runs" / f"{key}.json"
        if not path.exists():
            return True
        history = json.loads(path.read_text()).get("history") or [{}]
        first.append(history[0].get("seconds"))
    return first[0] == first[1]


def write_spectrum(E: np.ndarray, out: Path, lams=(0.0, 1.0, 10.0, 50.0, 500.0),
                   n_components: int = 128) -> Path:
    """``spectrum.csv`` always; ``spectrum.png`` too when matplotlib is installed."""
    curves = lam_path(E, lams, n_components=min(n_components, *E.shape)).spectra
    curves.to_csv(out / "spectrum.csv", index_label="direction")
    try:
        import matplotlib

        matplotlib.use("Agg")
        from ace_transform.plotting import plot_spectra
    except ImportError:
        return out / "spectrum.csv"
    figure = plot_spectra(curves).figure
    figure.tight_layout()
    figure.savefig(out / "spectrum.png", dpi=120)
    import matplotlib.pyplot as plt

    plt.close(figure)
    return out / "spectrum.png"


def cold_start_tables(results: pd.DataFrame, out: Path, split) -> str:
    """The cold-start report: every method and its ``+map`` variant, over all test users
    and over the users whose test target is a new item (``split`` is the protocol's)."""
    order = [name for method in METHODS for name in (method, method + MAP_SUFFIX)]
    n_new = int(split.target_is_new("test").sum())
    return (f"{split}.\n\n#### All test users ({split.data.n_users})\n\n"
            f"{markdown_table(results, order, out)}\n\n"
            f"#### Users whose test target is a new item ({n_new})\n\n"
            f"{markdown_table(results, order, out, NEW_SPLIT)}\n\n"
            f"'{MAP_SUFFIX}': the new items' rows carried into the trained table by a ridge "
            "map fitted on the warm items; without it, their rows as the method's reshaper "
            "made them (ID-only: its initial random rows).")

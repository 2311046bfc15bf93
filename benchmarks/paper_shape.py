"""How the shape of a Beauty table compares with the seed paper's Table 1 (SASRec).

The paper tabulates SASRec only and reports the same ordering on GRU4Rec and BERT4Rec
(``../shared/docs/METHODS.md`` section 3), so Table 1's figures and orders are the
reference for every backbone; the output says so when the backbone is not SASRec.

Reads an ``ace-bench`` folder (``results.csv`` and the per-user ranks in ``runs/``), takes
each method's selected test cells of one backbone (per-user metrics averaged over seeds,
as the report does), and prints two tables: ours beside the paper's figures (METHODS.md
section 3; the paper's encoder was a 3,072-wide commercial model, so only the shape can
carry over), and every pair of methods both tables have, with the paper's order, ours,
and the one-tailed paired t-test of our difference over the test users in the paper's
direction. A pair "carries over" when ours has the paper's order at p < 0.05, is "level"
when neither direction is significant, and is "reversed" when ours is significantly the
other way round.

    python benchmarks/paper_shape.py benchmarks/results/beauty_converged
    python benchmarks/paper_shape.py benchmarks/results/beauty_converged --metric recall@20
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import pandas as pd
from scipy.stats import ttest_rel

from recmodels.comparison.report import TABLE_METRICS, per_user_test_metrics
from recmodels.comparison.selection import (backbone_cells, comparability_error,
                                            folder_arguments, parsed_folder_arguments,
                                            seed_note)

ALPHA = 0.05
# Seed paper, Table 1, Beauty, SASRec, full ranking: R@10, N@10, R@20, N@20.
PAPER = {
    "id": ("ID only", (0.0498, 0.0255, 0.0705, 0.0307)),
    "pca": ("LLM2X (PCA init)", (0.0827, 0.0403, 0.1181, 0.0492)),
    "whitenplus": ("WhitenRec+", (0.0781, 0.0388, 0.1184, 0.0489)),
    "llmemb": ("LLMEmb", (0.0782, 0.0372, 0.1144, 0.0463)),
    "alpharec": ("AlphaRec", (0.0773, 0.0384, 0.1167, 0.0482)),
    "alphafuse": ("AlphaFuse", (0.0864, 0.0422, 0.1263, 0.0523)),
    "ace": ("ACE", (0.0886, 0.0433, 0.1288, 0.0534)),
}


def paper_figure(method: str, metric: str) -> float:
    """The paper's figure of ``method`` on ``metric`` (one of ``TABLE_METRICS``)."""
    return PAPER[method][1][TABLE_METRICS.index(metric)]


def pair_verdict(paper_a: float, paper_b: float, ours_a, ours_b) -> tuple[str, float, float]:
    """Whether the paper's order of ``a`` and ``b`` holds in ours.

    Parameters
    ----------
    paper_a, paper_b : float
        The paper's figures.
    ours_a, ours_b : ndarray
        Our per-user metrics, the same users in the same order.

    Returns
    -------
    verdict : {"carries over", "level", "reversed"}
    p_paper : float
        One-tailed p-value of ours in the paper's direction.
    p_reverse : float
        One-tailed p-value of ours in the other direction.

    Examples
    --------
    >>> import numpy as np
    >>> base = np.random.default_rng(0).random(400)
    >>> pair_verdict(0.05, 0.03, base + 0.1, base)[0]
    'carries over'
    >>> pair_verdict(0.03, 0.05, base + 0.1, base)[0]
    'reversed'
    """
    high, low = (ours_a, ours_b) if paper_a >= paper_b else (ours_b, ours_a)
    p_paper = ttest_rel(high, low, alternative="greater").pvalue
    p_reverse = ttest_rel(low, high, alternative="greater").pvalue
    if p_paper < ALPHA:
        return "carries over", p_paper, p_reverse
    return ("reversed" if p_reverse < ALPHA else "level"), p_paper, p_reverse


def shape_tables(out: Path, backbone: str = "sasrec", metric: str = "ndcg@20",
                 sequences: str | None = None, seeds: list[int] | None = None) -> str:
    """Both tables as markdown, for the methods of ``out`` that the paper also has."""
    results = pd.read_csv(out / "results.csv", dtype={"fingerprint": str})
    test = results[(results["split"] == "test") & results["selected"].astype(bool)]
    test = backbone_cells(test, backbone, sequences, seeds, out / "results.csv")
    error = comparability_error(test)
    if error is not None:
        raise SystemExit(f"{out / 'results.csv'}, {backbone}: {error}")
    methods = [m for m in PAPER if m in set(test["method"])]
    if len(methods) < 2:
        raise SystemExit(f"{out / 'results.csv'}: fewer than two of the paper's methods "
                         f"({', '.join(PAPER)}) have selected {backbone} test cells.")
    per_user = {}
    for method in methods:
        metrics = per_user_test_metrics(test[test["method"] == method], out)
        if metrics is None:
            raise SystemExit(f"{out / 'runs'}: the per-user ranks of {method} are missing; "
                             "they are written with each finished cell.")
        per_user[method] = metrics[metric]
    seeds = test.groupby("method")["seed"].nunique()
    ours = {m: per_user[m].mean() for m in methods}
    order_ours = sorted(methods, key=ours.get, reverse=True)
    order_paper = sorted(methods, key=lambda m: paper_figure(m, metric), reverse=True)
    n_users = len(next(iter(per_user.values())))
    source = ("" if backbone == "sasrec" else "; the paper's column is its SASRec Table 1, "
              f"whose ordering it reports on {backbone} too")
    lines = [f"{backbone} on {out}: {metric}, {n_users} test users{source}", "",
             "| method | seeds | ours | rank | paper | rank |", "|---|---|---|---|---|---|"]
    for method in order_ours:
        lines.append(f"| {PAPER[method][0]} | {seeds[method]} | {ours[method]:.4f} | "
                     f"{order_ours.index(method) + 1} | {paper_figure(method, metric):.4f} | "
                     f"{order_paper.index(method) + 1} |")
    lines += ["", "| pair (paper's order) | paper | ours | p (paper's direction) | "
              "p (other way) | verdict |", "|---|---|---|---|---|---|"]
    counts = {"carries over": 0, "level": 0, "reversed": 0}
    for a, b in itertools.combinations(order_paper, 2):
        verdict, p_paper, p_reverse = pair_verdict(
            paper_figure(a, metric), paper_figure(b, metric), per_user[a], per_user[b])
        counts[verdict] += 1
        lines.append(f"| {PAPER[a][0]} > {PAPER[b][0]} | "
                     f"{paper_figure(a, metric) - paper_figure(b, metric):+.4f} | "
                     f"{ours[a] - ours[b]:+.4f} | {p_paper:.3g} | {p_reverse:.3g} | "
                     f"{verdict} |")
    lines += ["", ", ".join(f"{n} {k}" for k, n in counts.items())
              + f" of {sum(counts.values())} pairs (one-tailed paired t-test, p < {ALPHA})."]
    note = seed_note(test[test["method"].isin(methods)])
    return "\n".join(lines + ([note] if note else []))


def main(argv: list[str] | None = None) -> int:
    parser = folder_arguments(__doc__.splitlines()[0])
    parser.add_argument("--metric", choices=TABLE_METRICS, default="ndcg@20")
    args = parsed_folder_arguments(parser, argv)
    print(shape_tables(args.folder, args.backbone, args.metric, args.sequences, args.seeds))
    return 0


if __name__ == "__main__":
    sys.exit(main())

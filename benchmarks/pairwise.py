"""Every pair of methods in an ``ace-bench`` folder, with a paired test of their difference.

The report's ``*`` marks only a method better than every other (one-tailed); this prints
each pair of a backbone's selected test rows (``+map`` rows of the cold-start protocol
included), the higher mean first, with the difference and the two-sided paired t-test over
the same users (per-user metrics averaged over seeds, as the report does; no correction for
the number of pairs). ``--users new`` takes the cold-start protocol's users whose test
target is a new item.

    python benchmarks/pairwise.py benchmarks/results/beauty_cold_start --users new
"""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import ttest_rel

from recmodels.comparison.cold import NEW_SPLIT
from recmodels.comparison.report import TABLE_METRICS, per_user_test_metrics
from recmodels.comparison.selection import (backbone_cells, comparability_error,
                                            folder_arguments, parsed_folder_arguments,
                                            seed_note)

ALPHA = 0.05
USERS = {"all": "test", "new": NEW_SPLIT}


def pair_table(out: Path, backbone: str = "sasrec", metric: str = "ndcg@20",
               users: str = "all", sequences: str | None = None,
               seeds: list[int] | None = None) -> str:
    """The markdown table of every pair of ``out``'s selected ``backbone`` test rows."""
    results = pd.read_csv(out / "results.csv", dtype={"fingerprint": str})
    test = results[(results["split"] == "test") & results["selected"].astype(bool)]
    test = backbone_cells(test, backbone, sequences, seeds, out / "results.csv")
    if users == "new":
        test = test[[json.loads(settings).get("protocol") == "cold-start"
                     for settings in test["settings"]]]
        if test.empty:
            raise SystemExit(f"{out}: --users new needs cells of an ace-bench --protocol "
                             f"cold-start run; this folder's {backbone} cells ran the "
                             "standard protocol.")
    error = comparability_error(test)
    if error is not None:
        raise SystemExit(f"{out / 'results.csv'}, {backbone}: {error}")
    per_user = {}
    for method, rows in test.groupby("method", sort=False):
        metrics = per_user_test_metrics(rows, out, USERS[users])
        if metrics is None:
            raise SystemExit(f"{out / 'runs'}: no per-user {USERS[users]} ranks for {method} "
                             f"+ {backbone}; they are written with each finished cell.")
        per_user[method] = metrics[metric]
    if len(per_user) < 2:
        raise SystemExit(f"{out / 'results.csv'}: fewer than two methods have selected "
                         f"{backbone} test cells.")
    means = {m: values.mean() for m, values in per_user.items()}
    order = sorted(per_user, key=means.get, reverse=True)
    n_users = len(per_user[order[0]])
    seeds = test.groupby("method")["seed"].nunique()
    lines = [f"{backbone} on {out}: {metric} over {n_users} {users} test users; two-sided "
             f"paired t-test, * where p < {ALPHA}; seeds averaged: "
             + ", ".join(f"{m} {seeds[m]}" for m in order), "",
             "| higher | lower | difference | p |", "|---|---|---|---|"]
    for high, low in itertools.combinations(order, 2):
        if np.array_equal(per_user[high], per_user[low]):
            p_text = "identical"
        else:
            p = ttest_rel(per_user[high], per_user[low]).pvalue
            p_text = f"{p:.3g}{'*' if p < ALPHA else ''}"
        lines.append(f"| {high} ({means[high]:.4f}) | {low} ({means[low]:.4f}) | "
                     f"{means[high] - means[low]:+.4f} | {p_text} |")
    note = seed_note(test)
    return "\n".join(lines + (["", note] if note else []))


def main(argv: list[str] | None = None) -> int:
    parser = folder_arguments(__doc__.splitlines()[0])
    parser.add_argument("--metric", choices=TABLE_METRICS, default="ndcg@20")
    parser.add_argument("--users", choices=sorted(USERS), default="all",
                        help="all test users, or (cold-start protocol) those whose test "
                             "target is a new item")
    args = parsed_folder_arguments(parser, argv)
    print(pair_table(args.folder, args.backbone, args.metric, args.users,
                     args.sequences, args.seeds))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The table of a converged ``ace-bench`` folder as ``docs/results.md`` shows it.

One backbone's selected cells: each method's chosen learning rate beside every
candidate's validation NDCG@10 (the choice is made on those alone), its epochs and best
epoch per seed, the chosen runs' validation NDCG@10 and the test metrics, averaged over
seeds. **Bold** is a column's highest figure; ``*`` a figure better than every other
method's (the report's rule: paired one-tailed t-test over test users, p < 0.05). Under
the table: how the cells stopped and how long they trained (unchosen candidates
included), and a note when methods average different seeds. Trains nothing.

    python benchmarks/converged_table.py benchmarks/results/beauty_converged
    python benchmarks/converged_table.py benchmarks/results/beauty_converged --seeds 0
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

from recmodels.comparison.methods import METHODS
from recmodels.comparison.report import (HEADERS, TABLE_METRICS, per_user_test_metrics,
                                         significance_marks, training_summary)
from recmodels.comparison.selection import (backbone_cells, comparability_error,
                                            folder_arguments, parsed_folder_arguments,
                                            seed_note)
from recmodels.provenance import settings_diff


# What a candidate's settings may differ in from its chosen cell's.
IGNORED = ("lr", "max_epochs")


def _short(value: float) -> str:
    """``0.0572`` as ``.0572``, as the docs write candidates' scores."""
    return f"{value:.4f}".removeprefix("0")


def _candidates(results: pd.DataFrame, chosen: pd.DataFrame) -> pd.DataFrame:
    """The test rows of the learning-rate candidates behind ``chosen``'s cells: same
    method, backbone and seed, settings equal but for the rate and the epoch budget."""
    rows = results[(results["split"] == "test") & ~results["selected"].astype(bool)]
    keep = []
    for _, cell in chosen.drop_duplicates("fingerprint").iterrows():
        same = rows[(rows["method"] == cell["method"]) & (rows["backbone"] == cell["backbone"])
                    & (rows["seed"] == cell["seed"])]
        target = json.loads(cell["settings"])
        keep += [key for key, text in zip(same["fingerprint"], same["settings"])
                 if not settings_diff(target, json.loads(text), ignore=IGNORED)]
    return rows[rows["fingerprint"].isin(keep)]


def converged_table(out: Path, backbone: str = "sasrec", sequences: str | None = None,
                    seeds: list[int] | None = None) -> str:
    """The markdown table of ``out``'s selected ``backbone`` cells, and its notes."""
    results = pd.read_csv(out / "results.csv", dtype={"fingerprint": str, "lr_valid": str},
                          keep_default_na=False, na_values={m: [""] for m in TABLE_METRICS})
    rows = backbone_cells(results[results["selected"].astype(bool)], backbone, sequences,
                          seeds, out / "results.csv")
    test, valid = rows[rows["split"] == "test"], rows[rows["split"] == "valid"]
    error = comparability_error(test)
    if error is not None:
        raise SystemExit(f"{out / 'results.csv'}, {backbone}: {error}")
    methods = [m for m in METHODS if m in set(test["method"])]
    per_user = {m: per_user_test_metrics(test[test["method"] == m], out) for m in methods}
    tested = len(methods) > 1 and all(v is not None for v in per_user.values())
    marks = significance_marks(per_user) if tested else set()
    means = test.groupby("method")[list(TABLE_METRICS)].mean()
    means["valid"] = valid.groupby("method")["ndcg@10"].mean()
    best = means.max()
    grid = next(iter(test["lr_grid"]), "")
    header = f"lr (valid N@10 of {' / '.join(grid.split(','))})" if grid else "lr"
    lines = [f"| method | {header} | seeds | epochs (best) | valid N@10 | "
             + " | ".join(HEADERS[m] for m in TABLE_METRICS) + " |",
             "|---|---|---|---|---|" + "---|" * len(TABLE_METRICS)]
    for method in methods:
        block = test[test["method"] == method].sort_values("seed")
        lr = f"{block['lr'].iloc[0]:g}"
        if block["lr_valid"].iloc[0]:
            scores = json.loads(block["lr_valid"].iloc[0])
            lr += " (" + " / ".join("diverged" if s is None else _short(s)
                                    for s in scores.values()) + ")"
        epochs = ", ".join(f"{int(e)} ({int(b)})"
                           for e, b in zip(block["epochs"], block["best_epoch"]))
        figures = []
        for column in ["valid", *TABLE_METRICS]:
            text = f"{means.loc[method, column]:.4f}"
            if means.loc[method, column] == best[column] and len(methods) > 1:
                text = f"**{text}**"
            figures.append(text + ("*" if (method, column) in marks else ""))
        lines.append(f"| {method} | {lr} | {block['seed'].nunique()} | {epochs} | "
                     + " | ".join(figures) + " |")
    settings = json.loads(test["settings"].iloc[0])
    users = next((len(v["ndcg@10"]) for v in per_user.values() if v is not None), None)
    lines += ["", (f"{users} test users. " if users else "")
              + ("`*`: better than every other method, paired one-tailed t-test over test "
                 "users, p < 0.05." if marks else "No figure is significantly better than "
                 "every other method's (paired one-tailed t-test, p < 0.05)." if tested else
                 "Significance not tested (one method, or per-user ranks missing in runs/)."),
              "Training: " + training_summary(pd.concat([test, _candidates(results, test)]),
                                              settings["max_epochs"], settings["patience"],
                                              out)]
    note = seed_note(test)
    return "\n".join(lines + ([note] if note else []))


def main(argv: list[str] | None = None) -> int:
    parser = folder_arguments(__doc__.splitlines()[0])
    args = parsed_folder_arguments(parser, argv)
    print(converged_table(args.folder, args.backbone, args.sequences, args.seeds))
    return 0


if __name__ == "__main__":
    sys.exit(main())

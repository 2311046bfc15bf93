"""Tune ACE's lam and gamma on Amazon Beauty with GridSearchCV and a downstream SASRec scorer.

Runs the grid lam x gamma with a ``DownstreamScorer`` (SASRec, training capped at
``--epochs``) and the three intrinsic scorers side by side, then prints the grid of
validation NDCG@10, the Spearman rank correlation of each intrinsic score with it, and the
test metrics of the chosen setting next to the default (lam=50, gamma=0.1), both retrained
with the same cap. Trained scores are cached under ``--out``, so a rerun (or an interrupted
run) trains nothing twice.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/tune_ace.py                 # 2 epochs per setting
    OMP_WAIT_POLICY=PASSIVE python benchmarks/tune_ace.py --epochs 20     # on a GPU
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import joblib  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import Normalizer  # noqa: E402

from ace_transform import ACETransformer  # noqa: E402
from ace_transform.model_selection import (  # noqa: E402
    CombinedScorer,
    IsotropyScorer,
    ScaledPreservationScorer,
    SemanticPreservationScorer,
    WholeCatalogueSplit,
    lam_path,
)
from recmodels import SASRec, TrainableTable, Trainer, build_sequences, load_folder  # noqa: E402
from recmodels.tuning import DownstreamScorer  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "beauty"
LAMS = [0, 1, 5, 10, 50, 100, 500, 1000, 5000]
GAMMAS = [0.1, 0.5, 1.0]
INTRINSIC = {"isotropy": IsotropyScorer(), "semantic": SemanticPreservationScorer(),
             "combined": CombinedScorer(), "scaled": ScaledPreservationScorer()}


def test_metrics(E, data, lam, gamma, args) -> dict:
    """Retrain one setting with the search's cap and evaluate test once."""
    import torch

    table = make_pipeline(Normalizer(), ACETransformer(128, lam=lam, gamma=gamma)).fit_transform(E)
    torch.manual_seed(args.seed)
    model = SASRec(TrainableTable(data.n_items, 128, init=data.align(table.astype(np.float32))))
    result = Trainer(model, data, lr=args.lr, max_epochs=args.epochs, seed=args.seed,
                     verbose=False).fit()
    return {"lam": lam, "gamma": gamma, **{f"valid {k}": result.best_valid[k]
                                            for k in ("ndcg@10",)},
            **{f"test {k}": result.test[k]
               for k in ("recall@10", "ndcg@10", "recall@20", "ndcg@20")}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/tune_ace"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    interactions, items = load_folder(args.data)
    data = build_sequences(interactions, catalogue=items["item_id"])
    E = np.load(args.data / "item_emb_all-MiniLM-L6-v2.f16.npy").astype(np.float32)
    print(data.report, flush=True)

    downstream = DownstreamScorer(data, E, epochs=args.epochs, patience=args.epochs,
                                  lr=args.lr, seed=args.seed,
                                  memory=joblib.Memory(args.out / "cache", verbose=0))
    search = GridSearchCV(
        make_pipeline(Normalizer(), ACETransformer(128)),
        {"acetransformer__lam": LAMS, "acetransformer__gamma": GAMMAS},
        scoring={"ndcg@10": downstream, **INTRINSIC}, refit=False,
        cv=WholeCatalogueSplit(), verbose=2,
    ).fit(E)

    results = pd.DataFrame(search.cv_results_)
    grid = results.rename(columns={"param_acetransformer__lam": "lam",
                                   "param_acetransformer__gamma": "gamma"})
    grid = grid[["lam", "gamma"] + [f"mean_test_{name}" for name in ["ndcg@10", *INTRINSIC]]]
    grid.columns = ["lam", "gamma", "valid ndcg@10", *INTRINSIC]
    grid.to_csv(args.out / "grid.csv", index=False)

    print(f"\nvalid NDCG@10 after {args.epochs} epoch(s), SASRec, lr {args.lr:g}")
    print(grid.pivot(index="lam", columns="gamma", values="valid ndcg@10").round(4).to_string())
    print("\nintrinsic scores (isotropy, semantic and combined ignore gamma, a global scale)")
    print(grid.pivot(index="lam", columns="gamma", values=list(INTRINSIC)).round(4).to_string())
    print("\nSpearman rank correlation with valid NDCG@10 over the grid (target >= 0.8)")
    correlations = {}
    for name in INTRINSIC:
        over_grid = spearmanr(grid[name], grid["valid ndcg@10"]).statistic
        best_gamma = grid.loc[grid.groupby("lam")["valid ndcg@10"].idxmax()]
        over_lam = spearmanr(best_gamma[name], best_gamma["valid ndcg@10"]).statistic
        correlations[name] = {"grid": over_grid, "lam (best gamma)": over_lam}
        print(f"  {name:10s} over all 27 settings {over_grid:+.3f}   over lam at the best "
              f"gamma {over_lam:+.3f}")

    chosen = grid.loc[grid["valid ndcg@10"].idxmax()]
    settings = [(50.0, 0.1)]
    if (float(chosen["lam"]), float(chosen["gamma"])) != settings[0]:
        settings.insert(0, (float(chosen["lam"]), float(chosen["gamma"])))
    tests = pd.DataFrame([test_metrics(E, data, lam, gamma, args) for lam, gamma in settings])
    tests.insert(0, "setting", ["chosen", "default"][-len(settings):] if len(settings) == 2
                 else ["chosen = default"])
    print(f"\ntest metrics, retrained with the same {args.epochs}-epoch cap")
    print(tests.round(4).to_string(index=False))
    tests.to_csv(args.out / "test.csv", index=False)

    path = lam_path(Normalizer().fit_transform(E), LAMS, n_components=128)
    path.spectra.to_csv(args.out / "spectra.csv", index_label="direction")
    try:
        import matplotlib

        matplotlib.use("Agg")
        from ace_transform.plotting import plot_score_vs_lam, plot_spectra

        plot_spectra(path.spectra).figure.savefig(args.out / "spectra.png", dpi=120)
        plot_score_vs_lam(results, score="mean_test_ndcg@10").figure.savefig(
            args.out / "ndcg_vs_lam.png", dpi=120)
    except ImportError:
        print("matplotlib not installed: figures skipped")
    (args.out / "summary.json").write_text(json.dumps(
        {"epochs": args.epochs, "lr": args.lr, "correlations": correlations,
         "seconds": time.perf_counter() - started}, indent=2))
    print(f"\ntotal {time.perf_counter() - started:.0f}s; results in {args.out}")


if __name__ == "__main__":
    main()

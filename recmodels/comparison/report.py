"""Results table in the layout of the seed paper's Table 1, and the spectrum figure."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ace_transform.model_selection import lam_path

TABLE_METRICS = ("recall@10", "ndcg@10", "recall@20", "ndcg@20")
HEADERS = {"recall@10": "R@10", "ndcg@10": "N@10", "recall@20": "R@20", "ndcg@20": "N@20"}


def markdown_table(results: pd.DataFrame, method_order: list[str]) -> str:
    """Test metrics, mean ± std over seeds, one block per backbone."""
    test = results[results["split"] == "test"]
    lines = []
    for backbone, block in test.groupby("backbone", sort=False):
        stats = block.groupby("method")[list(TABLE_METRICS)].agg(["mean", "std"])
        seeds = block.groupby("method")["seed"].nunique()
        lines += [f"### {backbone}", "",
                  "| method | seeds | " + " | ".join(HEADERS[m] for m in TABLE_METRICS) + " |",
                  "|---|---|" + "---|" * len(TABLE_METRICS)]
        for method in [m for m in method_order if m in stats.index]:
            cells = []
            for metric in TABLE_METRICS:
                mean, std = stats.loc[method, (metric, "mean")], stats.loc[method, (metric, "std")]
                cells.append(f"{mean:.4f}" + ("" if np.isnan(std) else f" ± {std:.4f}"))
            lines.append(f"| {method} | {seeds[method]} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


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

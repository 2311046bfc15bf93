"""Results table in the layout of the seed paper's Table 1, and the spectrum figure."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ace_transform import ACETransformer, normalized_spectrum

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


def spectrum_curves(E: np.ndarray, lams=(0.0, 1.0, 10.0, 50.0, 500.0), n_components=128):
    """Normalised spectra of the raw matrix and of ACE outputs for several ``lam``."""
    k = min(n_components, *E.shape)
    curves = {"raw": normalized_spectrum(E)[:k]}
    for lam in lams:
        curves[f"ACE lam={lam:g}"] = normalized_spectrum(
            ACETransformer(k, lam=lam).fit_transform(E))
    return pd.DataFrame(curves)


def write_spectrum(E: np.ndarray, out: Path) -> Path:
    """``spectrum.csv`` always; ``spectrum.png`` too when matplotlib is installed."""
    curves = spectrum_curves(E)
    curves.to_csv(out / "spectrum.csv", index_label="direction")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return out / "spectrum.csv"
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for name, values in curves.items():
        ax.plot(np.arange(1, len(values) + 1), values, label=name)
    ax.set(xscale="log", yscale="log", xlabel="direction", ylabel="normalised eigenvalue",
           title="Spectrum of the item table")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "spectrum.png", dpi=120)
    plt.close(fig)
    return out / "spectrum.png"

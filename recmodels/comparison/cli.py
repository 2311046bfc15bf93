"""``ace-bench``: from item text and interactions to the seed paper's comparison table."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from ..data import build_sequences, load_folder
from ..datasets import example_folder
from .methods import METHODS
from .report import markdown_table, write_spectrum
from .runner import BACKBONES, ComparisonPlan, run_comparison
from .text import DEFAULT_ENCODER, encode_items, item_prompts

BUILTIN = example_folder()
DATASET_NAMES = {"ml-latest-small": "MovieLens", "beauty": "Beauty"}
QUICK = dict(methods="id,pca,ace", backbones="sasrec", seeds="0", max_epochs=3,
             patience=2, window_stride=25)


def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _overrides(pairs: list[str]) -> dict[str, dict]:
    overrides: dict[str, dict] = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        method, _, name = key.partition(".")
        if not value or not name:
            raise SystemExit(f"--param {pair!r}: write METHOD.SETTING=VALUE, e.g. ace.lam=10")
        parsed: object = value
        for cast in (int, float):
            try:
                parsed = cast(value)
                break
            except ValueError:
                pass
        if value in ("True", "False", "None"):
            parsed = {"True": True, "False": False, "None": None}[value]
        overrides.setdefault(method, {})[name] = parsed
    return overrides


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="ace-bench",
        description="Compare embedding reshapers (ACE and baselines) across sequential "
                    "recommenders on one data set, and write a results table.")
    parser.add_argument("--data", type=Path, default=None,
                        help="folder with interactions.csv.gz and items.csv.gz (default: the "
                             "built-in MovieLens latest-small)")
    parser.add_argument("--embeddings", type=Path, default=None,
                        help=".npy matrix, one row per row of items.csv.gz (default: encode text)")
    parser.add_argument("--encoder", default=DEFAULT_ENCODER,
                        help="sentence-transformers model name or path")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--backbones", default="sasrec")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--out", type=Path, default=Path("ace-bench-out"))
    parser.add_argument("--quick", action="store_true",
                        help=f"a few minutes on a CPU: {QUICK['methods']} on SASRec, 1 seed, "
                             f"at most {QUICK['max_epochs']} epochs, window stride "
                             f"{QUICK['window_stride']}")
    parser.add_argument("--max-epochs", type=int, default=400)
    parser.add_argument("--patience", type=int, default=10)
    parser.add_argument("--lr", type=float, default=None, help="one learning rate for all")
    parser.add_argument("--k-core", type=int, default=5)
    parser.add_argument("--hidden-size", type=int, default=128,
                        help="item table width (every method reshapes to it)")
    parser.add_argument("--max-len", type=int, default=50)
    parser.add_argument("--window-stride", type=int, default=1,
                        help="targets per extra training window on long sequences; 1 is the "
                             "exact prefix protocol, larger is faster")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--param", action="append", default=[], metavar="METHOD.SETTING=VALUE",
                        help="override a method setting, e.g. ace.lam=10 (repeatable)")
    args = parser.parse_args(argv)
    if args.quick:
        given = set(a.split("=")[0] for a in (argv if argv is not None else sys.argv[1:]))
        for name, value in QUICK.items():
            if f"--{name.replace('_', '-')}" not in given:
                setattr(args, name, value)
    return args


def load_inputs(args: argparse.Namespace):
    """Read and check everything before any training starts."""
    folder = args.data or BUILTIN
    interactions, items = load_folder(folder)
    if args.embeddings is not None:
        if not args.embeddings.is_file():
            raise SystemExit(f"--embeddings {args.embeddings}: no such file.")
        matrix = np.load(args.embeddings)
        if matrix.ndim != 2 or matrix.shape[0] != len(items):
            raise SystemExit(
                f"{args.embeddings} has shape {matrix.shape}, but {folder / 'items.csv.gz'} "
                f"has {len(items)} items; it needs one row per item, in the same order.")
        if not np.isfinite(matrix).all():
            raise SystemExit(f"{args.embeddings} contains NaN or inf; re-encode those items.")
        matrix = matrix.astype(np.float32)
    else:
        name = DATASET_NAMES.get(folder.name, folder.name)
        prompts = item_prompts(items, name, source=str(folder / "items.csv.gz"))
        matrix = None
    data = build_sequences(interactions, catalogue=items["item_id"], k_core=args.k_core)
    print(data.report, file=sys.stderr)
    if matrix is None:
        keep = data.embedding_rows
        encoded = encode_items([prompts[i] for i in keep], args.encoder,
                               cache_dir=args.out / "cache")
        matrix = np.zeros((len(items), encoded.shape[1]), dtype=np.float32)
        matrix[keep] = encoded
    return data, data.align(matrix)


def main(argv=None) -> int:
    args = parse_args(argv)
    plan = ComparisonPlan(
        methods=_csv(args.methods), backbones=_csv(args.backbones),
        seeds=[int(s) for s in _csv(args.seeds)], max_epochs=args.max_epochs,
        patience=args.patience, lr=args.lr, device=args.device,
        window_stride=args.window_stride, hidden_size=args.hidden_size, max_len=args.max_len,
        overrides=_overrides(args.param))
    started = time.perf_counter()
    data, E = load_inputs(args)
    results = run_comparison(plan, data, E, args.out)
    table = markdown_table(results, list(METHODS))
    (args.out / "results.md").write_text(
        f"Test metrics, mean ± std over seeds ({args.data or 'built-in ml-latest-small'}; "
        f"{data.n_users} users, {data.n_items} items).\n\n{table}")
    figure = write_spectrum(E, args.out)
    print(table)
    print(f"wrote {args.out / 'results.csv'}, {args.out / 'results.md'}, {figure} "
          f"in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

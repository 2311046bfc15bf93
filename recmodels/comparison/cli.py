"""``ace-bench``: from item text and interactions to the seed paper's comparison table."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ..cold_start import CHOICES, MAX_SHARE, first_seen_times
from ..data import SequenceData, build_sequences
from ..readers import load_folder
from ..datasets import example_folder
from ..models.base import CAUSAL_SEQUENCES
from ..trainer import TrainingDivergedError
from . import arguments
from .cold import PROTOCOLS, make_split
from .inputs import InputError, load_embeddings
from .methods import METHODS
from .plan import DEFAULT_LR_GRID, ComparisonPlan
from .preflight import check_device, check_inputs
from .report import cold_start_tables, markdown_table, training_summary, write_spectrum
from .runner import BACKBONES, load_results, run_comparison
from .runs import ensure_free, ensure_writable, folder_lock
from .status import finished_rows, plan_status, status_report
from .text import DEFAULT_ENCODER, encode_items, item_prompts

BUILTIN = example_folder()
DATASET_NAMES = {"ml-latest-small": "MovieLens", "beauty": "Beauty"}
# The demo trains every method to early stopping; the smaller table, the wider window
# stride and 1024-target steps are what let it finish in minutes on a CPU. Patience 5, not
# 3: 706 validation users make the score jump between epochs, and 3 stopped on such jumps.
QUICK = dict(methods="id,pca,ace", backbones="sasrec", seeds="0", max_epochs=100,
             patience=5, window_stride=50, hidden_size=64, batch_size=1024, lr=2e-3,
             max_history=100)
EPILOG = """\
learning rates: without --lr, each method's rate is chosen from --lr-grid on the
validation NDCG@10 of its first seed (never a test figure); the other seeds train at the
chosen rate. results.csv records the grid, the chosen rate (column 'selected') and every
candidate's validation score ('lr_valid'). With --grid-epochs N the candidates train for
at most N epochs (one budget for every method) and the chosen rate then trains on under
--max-epochs and --patience: the first seed continues its candidate's run from epoch N
(exactly what a run from scratch gives), the other seeds start afresh. A candidate whose
training loss diverges keeps rows without metrics and is out of the choice; if every
candidate diverges, or a chosen run does, ace-bench stops with an error naming the cell.

significance: results.md marks a figure with * when a paired one-tailed t-test over test
users (scipy.stats.ttest_rel, alternative='greater', per-user metrics averaged over seeds)
against every other method of the same backbone gives p < 0.05, as the seed paper's
asterisks do.

cold-start protocol (--protocol cold-start): a share of the items (--cold-share, default
0.1) is new: the items whose first interaction is latest (--cold-choice latest; needs a
'timestamp' column) or a random draw (--cold-choice random, seed 0). Their interactions are
removed from the training part of every sequence (as targets and as context), the
reshapers are fitted without their rows and training never offers them as candidates; they
stay as validation and test targets, and the test input keeps the validation item. At
evaluation each method's reshaper maps their text (transform); tables initialised from a
matrix and fine-tuned (ace, pca, recpca) are also evaluated with those rows carried into
the trained space by a ridge map fitted on the warm items ('ace+map'). Early stopping uses
every user's validation target. results.csv adds split 'test-new' (users whose test target
is new) and results.md a second table for them.

provenance: each row of results.csv carries a fingerprint of everything that decides it
(method and its settings, learning rate, backbone settings, max epochs, patience, batch
size, window stride, k-core, seed, digests of the interactions and of the embeddings, the
package version; under the cold-start protocol also its settings and the new items) and
the settings themselves (JSON); a finished cell is reused only for an equal fingerprint.
OUT/runs/ keeps each cell's per-user ranks, full settings and history. --dry-run lists
every cell of the command (done, done (diverged), resumes after epoch N, continues its
candidate, to train, or after the candidates), prints the table of the finished cells so
far, and trains nothing.
"""


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="ace-bench",
        description="Compare embedding reshapers (ACE and baselines) across sequential "
                    "recommenders on one data set, and write a results table.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
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
                             "each trained until validation NDCG@10 has not improved for "
                             f"{QUICK['patience']} epochs (at most {QUICK['max_epochs']}), "
                             f"hidden size {QUICK['hidden_size']}, window stride "
                             f"{QUICK['window_stride']}, batch size {QUICK['batch_size']}, "
                             f"each user's latest {QUICK['max_history']} interactions, "
                             f"one learning rate ({QUICK['lr']:g}) for every method")
    parser.add_argument("--max-epochs", type=int, default=400)
    parser.add_argument("--patience", type=int, default=10)
    parser.add_argument("--lr", type=float, default=None,
                        help="one learning rate for every method (skips the grid)")
    parser.add_argument("--lr-grid", default=",".join(f"{lr:g}" for lr in DEFAULT_LR_GRID),
                        help="candidate learning rates, chosen per method and backbone on "
                             "the first seed's validation NDCG@10 (default: %(default)s)")
    parser.add_argument("--grid-epochs", type=int, default=None, metavar="N",
                        help="train the --lr-grid candidates for at most N epochs each (the "
                             "same budget for every method), then continue the chosen rate "
                             "under --max-epochs/--patience (default: every candidate trains "
                             "under the full budget)")
    parser.add_argument("--batch-size", type=int, default=256,
                        help="training examples per optimiser step: SASRec and GRU4Rec "
                             "count every target position, BERT4Rec every sequence, as "
                             "RecBole does (default %(default)s)")
    parser.add_argument("--k-core", type=int, default=5)
    parser.add_argument("--max-history", type=int, default=None, metavar="N",
                        help="keep only each user's latest N interactions, before the k-core "
                             "filter (default: all)")
    parser.add_argument("--hidden-size", type=int, default=128,
                        help="item table width (every method reshapes to it)")
    parser.add_argument("--max-len", type=int, default=50)
    parser.add_argument("--window-stride", type=int, default=1,
                        help="targets per extra training window on long sequences. 1 "
                             "(default) is the exact prefix protocol, the paper's; larger is "
                             "faster per epoch. Measured on the built-in MovieLens data "
                             "(SASRec, one seed): 63 s an epoch at 1 against 12 s at 50, "
                             "test NDCG@20 0.0761 against 0.0697 (not a significant "
                             "difference; strides 5, 10 and 25 in docs/results.md)")
    parser.add_argument("--sequences", choices=CAUSAL_SEQUENCES, default=None,
                        help="training rows: prefixes, one per training target as RecBole "
                             "trains (several times the encoder work), or windows (SASRec, "
                             "GRU4Rec: every target of a window in one pass; BERT4Rec: cloze "
                             "windows cut from the end). Default: each backbone's own, "
                             "windows for SASRec and GRU4Rec, prefixes for BERT4Rec")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--jobs", type=int, default=1,
                        help="cells trained at once, each in its own process with an equal "
                             "share of the threads (default 1). On 2 CPU cores, 2 train "
                             "1.53x the epochs an hour of 1 (docs/results.md); the cells and "
                             "their fingerprints are the same")
    parser.add_argument("--param", action="append", default=[], metavar="METHOD.SETTING=VALUE",
                        help="override a method setting, e.g. ace.lam=10 (repeatable)")
    parser.add_argument("--protocol", choices=PROTOCOLS, default="standard",
                        help="standard leave-one-out, or cold-start: a share of the items is "
                             "new, unseen in training (default: %(default)s)")
    parser.add_argument("--cold-share", default=None, metavar="SHARE",
                        help=f"share of the items that is new, in (0, {MAX_SHARE:g}] "
                             "(cold-start only; default 0.1)")
    parser.add_argument("--cold-choice", choices=CHOICES, default=None,
                        help="which items are new: the latest first interactions (needs "
                             "timestamps) or a random draw (cold-start only; default latest)")
    parser.add_argument("--dry-run", action="store_true",
                        help="list every cell of the command and whether it is done, resumes "
                             "from a checkpoint or is still to train, and the table of the "
                             "finished cells; train nothing (without "
                             "--embeddings it still encodes and caches the item text, whose "
                             "digest is in every fingerprint; the device is too, so check a "
                             "GPU run's folder with --device cuda)")
    parser.add_argument("--keep-models", action="store_true",
                        help="save each cell it trains, at its best epoch, as "
                             "OUT/runs/<fingerprint>.pt (recmodels.comparison.runs.load_model; "
                             "cells finished before are reused as they are)")
    parser.add_argument("--debug", action="store_true",
                        help="show the traceback of an input or training error instead of a "
                             "one-line message")
    args = parser.parse_args(argv)
    given = set(a.split("=")[0] for a in (argv if argv is not None else sys.argv[1:]))
    if args.lr is not None and {"--lr-grid", "--grid-epochs"} & given:
        parser.error("--lr trains every method at one rate, --lr-grid and --grid-epochs "
                     "choose a rate per method: give --lr or the grid, not both.")
    if args.quick:
        if "--lr-grid" in given:
            given.add("--lr")  # a grid asked for with --quick is used as given
        for name, value in QUICK.items():
            if f"--{name.replace('_', '-')}" not in given:
                setattr(args, name, value)
    return args


def _grid_epochs(args: argparse.Namespace) -> int | None:
    """``--grid-epochs``, checked against ``--max-epochs``."""
    if args.grid_epochs is not None and not 1 <= args.grid_epochs <= args.max_epochs:
        raise InputError(f"--grid-epochs {args.grid_epochs}: must be between 1 and "
                         f"--max-epochs ({args.max_epochs}).")
    return args.grid_epochs


def _located(where, exc: Exception) -> str:
    """``"<where>: <problem>"``, without repeating ``where`` when the message starts with it."""
    where, message = str(where), str(exc)
    if message.startswith(where):
        message = message[len(where):].lstrip(": ")
    return f"{where}: {message}"


def _cold_start(args: argparse.Namespace) -> tuple[float, str]:
    """``--cold-share`` and ``--cold-choice``, checked (their defaults when not given)."""
    given = [f"{name} {value}" for name, value in (("--cold-share", args.cold_share),
                                                    ("--cold-choice", args.cold_choice))
             if value is not None]
    if args.protocol != "cold-start":
        if given:
            raise InputError(f"{given[0]}: applies to --protocol cold-start only; add "
                             "--protocol cold-start, or drop it.")
        return 0.1, "latest"
    share = 0.1 if args.cold_share is None else args.cold_share
    try:
        share = float(share)
    except ValueError:
        share = float("nan")
    if not 0 < share <= MAX_SHARE:
        raise InputError(f"--cold-share {args.cold_share}: not a share in (0, {MAX_SHARE:g}] of "
                         "the items; most items must stay warm to train on. Write e.g. "
                         "--cold-share 0.1.")
    return share, args.cold_choice or "latest"


def _first_seen(args, plan, interactions, data) -> np.ndarray | None:
    """First-interaction times for ``--cold-choice latest``; the cold split checked."""
    if plan.protocol != "cold-start":
        return None
    first_seen = None
    if plan.cold_choice == "latest":
        source = (args.data or BUILTIN) / "interactions.csv.gz"
        if "timestamp" not in interactions.columns:
            raise InputError(f"--cold-choice latest: {source} has no 'timestamp' column; its "
                             "'position' orders each user's interactions but shares no clock "
                             "between users, so which items appeared last is unknown. Pass "
                             "--cold-choice random, or add timestamps.")
        try:
            first_seen = first_seen_times(interactions, data)
        except ValueError as exc:
            raise InputError(f"--cold-choice latest: {source}: {exc}") from exc
    try:
        make_split(plan, data, first_seen)
    except ValueError as exc:
        raise InputError(f"--cold-share {plan.cold_share:g}: {exc}") from exc
    return first_seen


def load_inputs(args: argparse.Namespace, plan: ComparisonPlan | None = None):
    """Read and check everything before any training starts.

    Returns the sequences, the aligned embedding matrix and, for ``--protocol cold-start
    --cold-choice latest``, each item's first-interaction time (else None). Raises
    :class:`~recmodels.comparison.inputs.InputError`, naming the file or argument, before
    anything is written to ``args.out``.
    """
    folder = args.data or BUILTIN
    if args.max_history is not None and args.max_history < 3:
        raise InputError(f"--max-history {args.max_history}: a user needs at least 3 "
                         "interactions (training, validation, test); write e.g. "
                         "--max-history 100, or leave it out to keep all.")
    if not folder.is_dir():
        raise InputError(f"--data {folder}: no such folder; give a folder with "
                         "interactions.csv.gz and items.csv.gz.")
    if args.out.exists() and not args.out.is_dir():
        raise InputError(f"--out {args.out}: is a file, not a folder; choose another --out.")
    try:
        interactions, items = load_folder(folder)
    except (OSError, ValueError) as exc:  # the messages name the file
        raise InputError(str(exc)) from exc
    items_file = folder / "items.csv.gz"
    if args.embeddings is not None:
        matrix = load_embeddings(args.embeddings, len(items), catalogue=str(items_file))
    else:
        name = DATASET_NAMES.get(folder.name, folder.name)
        try:
            prompts = item_prompts(items, name, source=str(items_file))
        except ValueError as exc:
            raise InputError(_located(items_file, exc)) from exc
        matrix = None
    # The filter report is printed once below; the library's own warning would repeat it.
    data_logger = logging.getLogger("recmodels.data")
    level = data_logger.level
    data_logger.setLevel(logging.ERROR)
    try:
        data = build_sequences(interactions, catalogue=items["item_id"], k_core=args.k_core,
                               max_history=args.max_history)
    except ValueError as exc:
        raise InputError(f"--data {folder}: {exc}") from exc
    finally:
        data_logger.setLevel(level)
    print(data.report, file=sys.stderr)
    first_seen = None if plan is None else _first_seen(args, plan, interactions, data)
    if matrix is None:
        keep = data.embedding_rows
        try:
            encoded = encode_items([prompts[i] for i in keep], args.encoder,
                                   cache_dir=args.out / "cache")
        except (ImportError, OSError) as exc:  # encoder extra missing, unknown model
            raise InputError(f"--encoder {args.encoder}: {exc}") from exc
        matrix = np.zeros((len(items), encoded.shape[1]), dtype=np.float32)
        matrix[keep] = encoded
    return data, data.align(matrix), first_seen


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        return _compare(args)
    except (InputError, TrainingDivergedError) as exc:
        if args.debug:
            raise
        message = " ".join(str(exc).split())  # one line
        if isinstance(exc, TrainingDivergedError):
            message = f"{'--lr' if args.lr is not None else '--lr-grid'}: {message}"
        print(f"ace-bench: error: {message}", file=sys.stderr)
        return 2


def _compare(args: argparse.Namespace) -> int:
    cold_share, cold_choice = _cold_start(args)
    for option in ("max_epochs", "patience", "hidden_size", "max_len", "window_stride",
                   "k_core", "max_history"):
        if getattr(args, option) is not None:
            arguments.positive(getattr(args, option), f"--{option.replace('_', '-')}")
    if args.lr is not None and not 0 < args.lr < 1:
        raise InputError(f"--lr {args.lr:g}: not a learning rate in (0, 1); write e.g. "
                         "--lr 1e-3.")
    plan = ComparisonPlan(
        methods=arguments.choices(args.methods, METHODS, "--methods"),
        backbones=arguments.choices(args.backbones, BACKBONES, "--backbones"),
        seeds=arguments.seeds(args.seeds), max_epochs=args.max_epochs,
        patience=args.patience, lr=args.lr, lr_grid=arguments.rates(args.lr_grid, "--lr-grid"),
        grid_epochs=_grid_epochs(args),
        device=args.device, window_stride=args.window_stride, sequences=args.sequences,
        hidden_size=args.hidden_size,
        max_len=args.max_len, k_core=args.k_core, max_history=args.max_history,
        batch_size=arguments.positive(args.batch_size, "--batch-size"),
        overrides=arguments.overrides(args.param),
        protocol=args.protocol, cold_share=cold_share, cold_choice=cold_choice,
        jobs=arguments.positive(args.jobs, "--jobs"), keep_models=args.keep_models)
    started = time.perf_counter()
    if not args.dry_run:  # a dry run only reads, so it may watch a run in progress
        ensure_free(args.out)
    if not args.dry_run or args.embeddings is None:  # encoding caches its matrix there
        ensure_writable(args.out, "--out")
    if not args.dry_run:  # a dry run may read a GPU run's folder on a machine without one
        check_device(plan.device)
    if (args.out / "results.csv").exists():
        load_results(args.out / "results.csv")
    data, E, first_seen = load_inputs(args, plan)
    if args.dry_run:
        status = plan_status(plan, data, E, args.out, first_seen)
        print(status_report(status))
        finished = finished_rows(status, args.out)
        if finished["selected"].astype(bool).any():
            table, _ = _tables(plan, finished, data, first_seen, args.out)
            print(f"\nThe finished cells so far:\n\n{table}\n\nTraining: "
                  f"{training_summary(finished, plan.max_epochs, plan.patience, args.out)}")
        return 0
    check_inputs(plan, data, E, first_seen)  # before the folder is touched
    with folder_lock(args.out):  # results.md and the figure too, not only results.csv
        _run_and_report(args, plan, data, E, first_seen, started)
    return 0


def _run_and_report(args, plan, data, E, first_seen, started: float) -> None:
    """Train what the plan lacks, then print and write the table."""
    results = run_comparison(plan, data, E, args.out, first_seen=first_seen, check=False)
    table, data = _tables(plan, results, data, first_seen, args.out)
    rates = (f"learning rate {plan.lr:g} for every method" if plan.lr is not None else
             "each method's learning rate chosen from "
             f"{', '.join(f'{lr:g}' for lr in plan.lr_grid)} on the first seed's validation "
             "NDCG@10" + (f" after at most {plan.grid_epochs} epochs per candidate"
                          if plan.short_grid else ""))
    trained = training_summary(results, plan.max_epochs, plan.patience, args.out)
    history = ("" if plan.max_history is None
               else f" (each user's latest {plan.max_history} interactions)")
    (args.out / "results.md").write_text(
        f"Test metrics, mean ± std over seeds ({args.data or 'built-in ml-latest-small'}; "
        f"{data.n_users} users, {data.n_items} items{history}; {rates}).\n\n{table}\n\n"
        f"Training: {trained}\n")
    figure = write_spectrum(E, args.out)
    print(table)
    print(f"Test metrics of {data.n_users} users over {data.n_items} items{history}, full "
          f"ranking; {rates}. Training: {trained}")
    print(f"wrote {args.out / 'results.csv'}, {args.out / 'results.md'}, {figure} "
          f"in {time.perf_counter() - started:.0f} s")


def _tables(plan: ComparisonPlan, results: pd.DataFrame, data: SequenceData,
            first_seen: np.ndarray | None, out: Path) -> tuple[str, SequenceData]:
    """The markdown tables of ``results`` and the data whose users they evaluate."""
    if plan.protocol == "cold-start":
        split = make_split(plan, data, first_seen)
        # The users it evaluates; its catalogue holds the new items too.
        return cold_start_tables(results, out, split), split.data
    return markdown_table(results, list(METHODS), out), data


if __name__ == "__main__":
    raise SystemExit(main())

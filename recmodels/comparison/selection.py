"""Which cells of an ``ace-bench --out`` folder a report script may pair: the training rows
and seeds asked for, one protocol, and the scripts' shared arguments."""

from __future__ import annotations

import argparse
import inspect
import json
from pathlib import Path

import pandas as pd

from ..models import BACKBONES
from ..provenance import settings_diff
from .methods import METHODS


def cell_sequences(settings: str | dict) -> str:
    """The training rows a cell's backbone used (``windows`` or ``prefixes``), from its
    ``settings`` column: the backbone's own default unless the cell's settings name one.

    Examples
    --------
    >>> from recmodels.comparison.selection import cell_sequences
    >>> cell_sequences({"backbone": "gru4rec"}), cell_sequences({"backbone": "bert4rec"})
    ('windows', 'prefixes')
    >>> cell_sequences('{"backbone": "gru4rec", "backbone_settings": {"sequences": "prefixes"}}')
    'prefixes'
    """
    settings = json.loads(settings) if isinstance(settings, str) else settings
    chosen = settings.get("backbone_settings", {}).get("sequences")
    if chosen is not None:
        return chosen
    backbone = BACKBONES[settings["backbone"]]
    return inspect.signature(backbone).parameters["sequences"].default


def chosen_cells(rows: pd.DataFrame, sequences: str | None = None,
                 seeds: list[int] | None = None) -> pd.DataFrame:
    """``rows`` of cells trained on ``sequences`` rows (None: any) and of ``seeds`` (None:
    any): what the report scripts' ``--sequences`` and ``--seeds`` keep.

    Examples
    --------
    >>> import pandas as pd
    >>> from recmodels.comparison.selection import chosen_cells
    >>> rows = pd.DataFrame({"seed": [0, 1], "settings": ['{"backbone": "sasrec"}'] * 2})
    >>> chosen_cells(rows, "windows", [1])["seed"].tolist()
    [1]
    """
    if sequences is not None:
        rows = rows[rows["settings"].map(cell_sequences) == sequences]
    return rows if seeds is None else rows[rows["seed"].isin(seeds)]


def folder_arguments(description: str) -> argparse.ArgumentParser:
    """The arguments every report script over an ``ace-bench --out`` folder takes."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("folder", type=Path, help="an ace-bench --out folder")
    parser.add_argument("--backbone", default="sasrec")
    parser.add_argument("--sequences", choices=["windows", "prefixes"],
                        help="only cells whose backbone trained on these rows (GRU4Rec and "
                             "SASRec can train on either); default: every cell")
    parser.add_argument("--seeds", type=seed_list,
                        help="only these seeds, e.g. 0 (default: every seed of each method)")
    return parser


def parsed_folder_arguments(parser: argparse.ArgumentParser, argv) -> argparse.Namespace:
    """``parser``'s arguments; a clear error when the folder holds no ``results.csv``."""
    args = parser.parse_args(argv)
    if not (args.folder / "results.csv").is_file():
        parser.error(f"{args.folder}: no results.csv here; pass an ace-bench --out folder.")
    return args


def seed_list(text: str) -> list[int]:
    """A ``--seeds`` value of the report scripts: comma-separated integers.

    Examples
    --------
    >>> from recmodels.comparison.selection import seed_list
    >>> seed_list("0,2")
    [0, 2]
    """
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a list of integers; write e.g. --seeds 0 or --seeds 0,1,2."
        ) from None


def seed_note(test: pd.DataFrame) -> str | None:
    """A warning when ``test``'s methods average different seeds; None when they agree.

    Examples
    --------
    >>> import pandas as pd
    >>> from recmodels.comparison.selection import seed_note
    >>> rows = pd.DataFrame({"method": ["id", "id", "ace"], "seed": [0, 1, 0]})
    >>> print(seed_note(rows))
    Methods average different seeds (id: 0,1; ace: 0); to pair like with like, pass --seeds 0.
    >>> seed_note(rows[rows["seed"] == 0]) is None
    True
    """
    seeds = {method: tuple(sorted(set(block["seed"])))
             for method, block in test.groupby("method", sort=False)}
    if len(set(seeds.values())) <= 1:
        return None
    common = sorted(set.intersection(*(set(s) for s in seeds.values())))
    listed = "; ".join(f"{m}: {','.join(map(str, s))}" for m, s in seeds.items())
    fix = (f"to pair like with like, pass --seeds {','.join(map(str, common))}" if common
           else "no seed is common to all of them")
    return f"Methods average different seeds ({listed}); {fix}."


def _protocol_settings(settings: dict) -> dict:
    """``settings`` without the backbone arguments the reference code gives its method."""
    reference = getattr(METHODS.get(settings.get("method")), "backbone_settings", {}).get(
        settings.get("backbone"), {})
    chosen = {key: value for key, value in (settings.get("backbone_settings") or {}).items()
              if reference.get(key, object()) != value}
    rest = {key: value for key, value in settings.items() if key != "backbone_settings"}
    return {**rest, "backbone_settings": chosen} if chosen else rest


#: Settings in which the cells of one paired table may differ.
PER_CELL_SETTINGS = frozenset({"method", "method_settings", "lr", "seed", "device", "version"})


def comparability_error(test: pd.DataFrame) -> str | None:
    """Why ``test``'s selected rows cannot share a paired table; None when they can.

    A paired table needs one cell per method and seed, all under one protocol: settings
    equal apart from :data:`PER_CELL_SETTINGS` and each method's reference backbone
    arguments (a 6-epoch cell beside a converged one would compare different things).

    Examples
    --------
    >>> import json, pandas as pd
    >>> from recmodels.comparison.selection import comparability_error
    >>> def row(method, epochs):
    ...     settings = {"method": method, "lr": 1e-3, "seed": 0, "max_epochs": epochs}
    ...     return {"method": method, "seed": 0, "fingerprint": method + str(epochs),
    ...             "settings": json.dumps(settings)}
    >>> comparability_error(pd.DataFrame([row("id", 400), row("ace", 400)])) is None
    True
    >>> print(comparability_error(pd.DataFrame([row("id", 400), row("ace", 6)])))
    id and ace ran under different max_epochs (400 against 6); pass cells of one protocol.
    """
    several = test.groupby(["method", "seed"])["fingerprint"].nunique()
    if (several > 1).any():
        method, seed = several[several > 1].index[0]
        cells = test[(test["method"] == method) & (test["seed"] == seed)].drop_duplicates(
            "fingerprint")
        changed = settings_diff(json.loads(cells["settings"].iloc[0]),
                                json.loads(cells["settings"].iloc[1]))
        fix = ("choose the training rows with --sequences"
               if any(c.startswith("backbone_settings.sequences") for c in changed) else
               "keep each protocol's runs in an --out folder of its own")
        return (f"{method} has several selected cells for seed {seed}, differing in "
                f"{'; '.join(changed[:3]) or 'nothing but their fingerprints'}; pairs need "
                f"one cell per method and seed: {fix}.")
    cells = test.drop_duplicates("fingerprint")
    settings = [_protocol_settings(json.loads(s)) for s in cells["settings"]]
    for key in sorted(set().union(*settings) - PER_CELL_SETTINGS) if settings else []:
        values = [json.dumps(s.get(key), sort_keys=True) for s in settings]
        if len(set(values)) > 1:
            other = next(i for i, v in enumerate(values) if v != values[0])
            return (f"{cells['method'].iloc[0]} and {cells['method'].iloc[other]} ran under "
                    f"different {key} ({values[0]} against {values[other]}); pass cells of "
                    "one protocol.")
    return None


def missing_cells_error(test: pd.DataFrame, backbone: str, sequences: str | None = None,
                        seeds: list[int] | None = None) -> str | None:
    """Why ``test``, the selected test rows of every backbone, holds no ``backbone`` cell
    on ``sequences`` rows and of ``seeds``, naming what it holds instead; None when it
    holds one.

    Examples
    --------
    >>> import pandas as pd
    >>> from recmodels.comparison.selection import missing_cells_error
    >>> test = pd.DataFrame({"backbone": ["sasrec", "gru4rec"], "seed": [0, 1],
    ...                      "settings": ['{"backbone": "sasrec"}', '{"backbone": "gru4rec"}']})
    >>> missing_cells_error(test, "gru4rec", "windows") is None
    True
    >>> print(missing_cells_error(test, "bert4rec"))
    no selected bert4rec test cells; --backbone one of: gru4rec, sasrec.
    >>> print(missing_cells_error(test, "gru4rec", "prefixes", [0]))
    no selected gru4rec test cells of seed 0 on prefixes rows; it has seed 1 on windows rows.
    """
    if test.empty:
        return ("no selected test cells yet (a method has them once its chosen rate has "
                "trained to the end).")
    backbones = sorted(set(test["backbone"]))
    if backbone not in backbones:
        return f"no selected {backbone} test cells; --backbone one of: {', '.join(backbones)}."
    rows = test[test["backbone"] == backbone]
    if not chosen_cells(rows, sequences, seeds).empty:
        return None

    def described(seed_values, rows_kind):
        listed = ",".join(map(str, sorted(set(seed_values))))
        seed_part = f"seed{'s' if len(set(seed_values)) > 1 else ''} {listed}" if listed else ""
        return " ".join(part for part in (seed_part, rows_kind and f"on {rows_kind} rows") if part)

    held = "; ".join(described(block["seed"], kind)
                     for kind, block in rows.groupby(rows["settings"].map(cell_sequences)))
    return (f"no selected {backbone} test cells {'of ' if seeds else ''}"
            f"{described(seeds or [], sequences)}; "
            f"it has {held}.")


def backbone_cells(rows: pd.DataFrame, backbone: str, sequences: str | None = None,
                   seeds: list[int] | None = None, source: object = "results.csv"
                   ) -> pd.DataFrame:
    """``rows`` (selected rows of a ``results.csv``) of ``backbone``'s cells on ``sequences``
    rows and of ``seeds``: what a report script compares. Exits with
    :func:`missing_cells_error`'s message, prefixed by ``source``, when no test row is left.
    """
    missing = missing_cells_error(rows[rows["split"] == "test"], backbone, sequences, seeds)
    if missing is not None:
        raise SystemExit(f"{source}: {missing}")
    return chosen_cells(rows[rows["backbone"] == backbone], sequences, seeds)

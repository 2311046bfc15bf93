"""Reading interaction logs from disk: an ``ace-bench`` data folder, a RecBole ``.inter``
file. :mod:`recmodels.data` turns what they return into sequences."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .data import ORDER_COLUMNS, _check_log, _first_bad


def load_folder(folder: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read ``interactions.csv.gz`` and ``items.csv.gz`` from a data folder.

    Returns
    -------
    interactions : DataFrame with ``user_id``, ``item_id`` and ``timestamp`` or ``position``
    items : DataFrame with ``item_id`` and text columns

    Raises
    ------
    FileNotFoundError
        When a file is missing.
    ValueError
        Naming the file, when a required column is absent, or when ``user_id``,
        ``item_id`` or the order column (``timestamp``, else ``position``) has missing or
        non-numeric values: these would otherwise silently corrupt the sequence order.

    Examples
    --------
    >>> from recmodels import load_folder
    >>> from recmodels.datasets import example_folder
    >>> interactions, items = load_folder(example_folder())
    >>> list(items.columns)
    ['item_id', 'title', 'genres']
    """
    folder = Path(folder)
    tables = {}
    for name, required in (("interactions", ("user_id", "item_id")), ("items", ("item_id",))):
        path = folder / f"{name}.csv.gz"
        if not path.is_file():
            raise FileNotFoundError(
                f"{path}: no such file; a data folder needs interactions.csv.gz and "
                "items.csv.gz."
            )
        table = pd.read_csv(path, dtype={"user_id": str, "item_id": str})
        missing = [c for c in required if c not in table.columns]
        if missing:
            raise ValueError(f"{path}: lacks column(s) {missing}; it has "
                             f"{list(table.columns)}. Add the missing column(s).")
        tables[name] = table
    interactions, items = tables["interactions"], tables["items"]
    order = next((c for c in ORDER_COLUMNS if c in interactions.columns), None)
    if order is None:
        raise ValueError(
            f"{folder / 'interactions.csv.gz'}: needs a 'timestamp' or 'position' column to "
            "order each user's interactions; add one."
        )
    interactions[order] = _check_log(interactions, order, str(folder / "interactions.csv.gz"))
    missing = items["item_id"].isna().to_numpy()
    if missing.any():
        raise ValueError(
            f"{folder / 'items.csv.gz'}: column 'item_id' has {int(missing.sum())} missing "
            f"value(s), first at {_first_bad(items, missing)}; fill or drop those rows."
        )
    return interactions, items


def read_recbole(path: str | Path) -> pd.DataFrame:
    r"""Read a RecBole atomic ``.inter`` file (``field:type`` headers, tab-separated).

    Parameters
    ----------
    path : str or Path
        The ``.inter`` file, or a folder holding exactly one.

    Returns
    -------
    interactions : DataFrame with the type suffixes stripped from the column names

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from recmodels import read_recbole
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "toy.inter").write_text(
    ...     "user_id:token\titem_id:token\ttimestamp:float\nu1\ti9\t10\nu1\ti4\t12\n")
    >>> read_recbole(folder)
      user_id item_id  timestamp
    0      u1      i9         10
    1      u1      i4         12
    """
    path = Path(path)
    if path.is_dir():
        found = sorted(path.glob("*.inter"))
        if len(found) != 1:
            raise FileNotFoundError(f"expected one .inter file in {path}, found {len(found)}.")
        path = found[0]
    table = pd.read_csv(path, sep="\t", dtype=str)
    table.columns = [c.split(":", 1)[0] for c in table.columns]
    order = [c for c in ORDER_COLUMNS if c in table.columns]
    if not {"user_id", "item_id"} <= set(table.columns) or not order:
        raise ValueError(
            f"{path}: a RecBole .inter file needs the fields user_id, item_id and timestamp "
            f"(or position), tab-separated with field:type headers such as "
            f"'user_id:token'; its header has {list(table.columns)}.")
    for column in order:
        numbers = pd.to_numeric(table[column], errors="coerce")
        bad = numbers.isna() & table[column].notna()
        if bad.any():
            raise ValueError(f"{path}: field {column} holds {int(bad.sum())} non-numeric "
                             f"value(s), e.g. {table.loc[bad, column].iloc[0]!r} on data row "
                             f"{int(bad.to_numpy().argmax()) + 1}; it must be a number.")
        table[column] = numbers
    return table

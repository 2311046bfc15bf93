"""``ace-bench --protocol cold-start``: the settings it records and how a cell is evaluated.

The protocol itself (which items are new, what is kept of their interactions, the map from
initial to trained rows) is :mod:`recmodels.cold_start`. Here a trained cell is evaluated
twice where its table allows: with the new items' rows as the reshaper's ``transform``
made them (method name as given) and, for a table initialised from a matrix and then
fine-tuned (ACE, PCA init, Rec-PCA), with those rows carried into the trained space by the
warm-fitted ridge map (method name + ``"+map"``). Each variant is reported over all test
users (split ``"test"``) and over the users whose test target is new (``"test-new"``).
"""

from __future__ import annotations

import numpy as np
import torch

from ..cold_start import (
    DEFAULT_MAP_REG,
    ColdStartSplit,
    choose_new_items,
    cold_start_split,
    map_new_rows,
)
from ..data import SequenceData
from ..evaluation import mean_metrics
from ..item_table import TrainableTable

PROTOCOLS = ("standard", "cold-start")
MAP_SUFFIX = "+map"
NEW_SPLIT = "test-new"
# The random choice of new items is one draw for the whole comparison, so every method,
# backbone and seed meets the same new items.
RANDOM_SEED = 0


def protocol_settings(plan) -> dict:
    """What the protocol adds to a cell's settings: nothing for ``"standard"``, so cells of
    the standard protocol keep the fingerprints they had before the cold-start protocol.

    Examples
    --------
    >>> from recmodels.comparison import ComparisonPlan
    >>> from recmodels.comparison.cold import protocol_settings
    >>> protocol_settings(ComparisonPlan(["ace"], ["sasrec"], [0]))
    {}
    >>> protocol_settings(ComparisonPlan(["ace"], ["sasrec"], [0], protocol="cold-start"))
    {'protocol': 'cold-start', 'cold_start': {'share': 0.1, 'choice': 'latest', 'map_reg': 0.001}}
    """
    if plan.protocol == "standard":
        return {}
    settings = {"share": plan.cold_share, "choice": plan.cold_choice, "map_reg": DEFAULT_MAP_REG}
    if plan.cold_choice == "random":
        settings["seed"] = RANDOM_SEED
    return {"protocol": plan.protocol, "cold_start": settings}


def make_split(plan, data: SequenceData,
               first_seen: np.ndarray | None = None) -> ColdStartSplit | None:
    """The plan's cold-start split of ``data``; None under the standard protocol."""
    if plan.protocol == "standard":
        return None
    new_items = choose_new_items(data, plan.cold_share, plan.cold_choice,
                                 first_seen=first_seen, seed=RANDOM_SEED)
    return cold_start_split(data, new_items)


def rank_name(method: str, split: str) -> str:
    """Key of a row's per-user ranks in ``runs/<fingerprint>.npz``: ``"test-new+map"``.

    Examples
    --------
    >>> from recmodels.comparison.cold import rank_name
    >>> rank_name("ace", "test"), rank_name("ace+map", "test-new")
    ('test', 'test-new+map')
    """
    return split + (MAP_SUFFIX if method.endswith(MAP_SUFFIX) else "")


def _metrics(ranks: np.ndarray) -> dict[str, float]:
    if ranks.size == 0:  # no user's target is new: no figure rather than a warning
        return {name: float("nan") for name in mean_metrics(np.zeros(1, dtype=np.int64))}
    return mean_metrics(ranks)


def _check_untrained(table: TrainableTable, new_items: np.ndarray) -> None:
    rows = torch.as_tensor(new_items - 1, device=table.weight.device)
    if not torch.equal(table.weight.detach()[rows], table.initial_rows[rows].to(table.weight)):
        raise RuntimeError("the new items' rows changed in training, so they were not kept out "
                           "of it; train without weight decay, with "
                           "model.exclude_from_training(new_items).")


def evaluate_cell(trainer, result, split: ColdStartSplit,
                  method: str) -> tuple[dict[str, np.ndarray], list[tuple[str, str, dict]]]:
    """Per-user ranks and ``(method, split, metrics)`` rows of a trained cold-start cell.

    ``result`` is ``trainer.fit()``'s: its validation (the early-stopping one) and test
    ranks are the raw variant's. For a :class:`~recmodels.TrainableTable` built from a
    matrix, :func:`~recmodels.cold_start.map_new_rows` then replaces the new rows in the
    trained model (checked to be still their initial rows) and validation and test are
    ranked again.
    """
    new_users = split.target_is_new("test")
    ranks = {"valid": result.valid_ranks, "test": result.test_ranks,
             NEW_SPLIT: result.test_ranks[new_users]}
    rows = [(method, "valid", result.best_valid), (method, "test", result.test),
            (method, NEW_SPLIT, _metrics(ranks[NEW_SPLIT]))]
    table = trainer.model.item_table
    if isinstance(table, TrainableTable) and table.initial_rows is not None:
        _check_untrained(table, split.new_items)
        map_new_rows(table, split.new_items, DEFAULT_MAP_REG)
        mapped = {"valid": trainer.rank("valid"), "test": trainer.rank("test")}
        mapped[NEW_SPLIT] = mapped["test"][new_users]
        for name, values in mapped.items():
            ranks[name + MAP_SUFFIX] = values
            rows.append((method + MAP_SUFFIX, name, _metrics(values)))
    return ranks, rows

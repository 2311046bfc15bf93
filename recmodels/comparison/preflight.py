"""Checks of a comparison's settings against its data, before any cell trains.

A setting that only fails when its method's turn comes (an ACE width above the embedding
width, ``--param ace.lam=-1``, a hidden size the heads do not divide, a CUDA device that
is not there) would otherwise stop a run after hours of other methods' training.
"""

from __future__ import annotations

import numpy as np
import torch

from ..data import SequenceData
from ..item_table import ItemTable
from ..models import BACKBONES
from .._validation import usable_device
from .inputs import InputError
from .cold import make_split
from .methods import METHODS, build_table
from .plan import ComparisonPlan, backbone_arguments


def check_device(device: str) -> None:
    """Raise :class:`InputError` now if ``device`` (``--device``) names a CUDA device that
    this torch can not reach.

    Examples
    --------
    >>> check_device("cpu")
    """
    try:
        usable_device(device)
    except ValueError as error:
        raise InputError(f"--device {device}: this torch ({torch.__version__}) sees no CUDA "
                         "device; use --device cpu (or auto), or install a CUDA build of "
                         "torch (docs: install).") from error


def check_plan(plan: ComparisonPlan, data: SequenceData, E: np.ndarray,
               fit_rows: np.ndarray | None = None) -> None:
    """Build every (method, backbone) model of ``plan`` once, untrained; raise on the first
    that can not be built.

    Costs one table per method and distinct settings (about 4 s for the nine methods on
    Beauty, one thread), against the hours of training that a setting failing at its
    method's turn would waste.

    Parameters
    ----------
    plan : ComparisonPlan
    data : SequenceData
    E : ndarray of shape (n_items, n_features)
        The aligned embeddings.
    fit_rows : ndarray of bool, optional
        The rows reshapers are fitted on (the cold-start protocol's warm items).

    Raises
    ------
    InputError
        Naming the method, backbone and setting, and the fix.

    Examples
    --------
    >>> import numpy as np
    >>> from recmodels import build_sequences
    >>> from recmodels.datasets import make_interactions
    >>> from recmodels.comparison import ComparisonPlan
    >>> from recmodels.comparison.preflight import check_plan
    >>> data = build_sequences(make_interactions(n_users=12, n_items=9), k_core=1)
    >>> E = np.random.default_rng(0).standard_normal((data.n_items, 6)).astype(np.float32)
    >>> check_plan(ComparisonPlan(["ace"], ["sasrec"], [0], hidden_size=8), data, E)
    Traceback (most recent call last):
    ...
    recmodels.comparison.inputs.InputError: hidden_size=8 (--hidden-size): method 'ace' \
reshapes the embeddings to 8 columns, but they have 6; lower the hidden size to 6 or less, \
or leave ace out.
    """
    check_device(plan.device)
    width = min(E.shape[1], E.shape[0] if fit_rows is None else int(np.sum(fit_rows)))
    for method in plan.methods:
        if METHODS[method].reshapes_to_hidden and plan.hidden_size > width:
            raise InputError(
                f"hidden_size={plan.hidden_size} (--hidden-size): method {method!r} reshapes "
                f"the embeddings to {plan.hidden_size} columns, but they have {width}; lower "
                f"the hidden size to {width} or less, or leave {method} out.")
    tables: dict[tuple[str, str], ItemTable] = {}  # backbones of equal settings share one
    generator_state = torch.random.get_rng_state()
    try:
        for backbone in plan.backbones:
            for method in plan.methods:
                overrides = plan.overrides.get(method)
                settings = (method, repr(sorted(METHODS[method].settings(backbone, overrides)
                                                .items())))
                try:
                    if settings not in tables:
                        tables[settings] = build_table(method, E, data, plan.hidden_size,
                                                       overrides, fit_rows=fit_rows,
                                                       backbone=backbone)
                    BACKBONES[backbone](tables[settings], max_len=plan.max_len,
                                        **backbone_arguments(method, backbone, plan))
                except (ValueError, TypeError) as error:
                    raise InputError(f"{method} + {backbone} "
                                     f"(--methods, --param, --hidden-size): {error}") from error
    finally:  # the cells draw their initial weights from their own seeds, untouched here
        torch.random.set_rng_state(generator_state)


def check_inputs(plan: ComparisonPlan, data: SequenceData, E: np.ndarray,
                 first_seen: np.ndarray | None = None) -> None:
    """:func:`check_plan` on the data and rows the cells train on (under the cold-start
    protocol, the plan's split); the arguments are :func:`~.runner.run_comparison`'s."""
    split = make_split(plan, data, first_seen)
    check_plan(plan, data if split is None else split.data, E,
               None if split is None else split.warm_rows)

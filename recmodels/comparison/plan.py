"""What a comparison runs: the plan, each cell's settings, and the choice of a learning rate.

A cell's settings (:func:`cell_settings`) are everything that decides its outcome; their
fingerprint keys ``results.csv``, so that a finished cell is reused only for the same ones.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field

import numpy as np

from ace_transform import __version__

from ..cold_start import CHOICES, MAX_SHARE
from ..data import SequenceData
from ..models import BACKBONES
from ..models.base import CAUSAL_SEQUENCES
from ..provenance import array_digest, sequence_digest
from .._validation import is_seed
from ..trainer import resolve_device
from .cold import PROTOCOLS, make_split, protocol_settings
from .methods import METHODS

DEFAULT_LR_GRID = (1e-3, 5e-4, 1e-4)


def best_rate(scores: dict[float, float]) -> float | None:
    """The candidate with the highest validation score; ties go to the earlier one.

    A diverged candidate's score is NaN and never wins; None when every one diverged.

    Examples
    --------
    >>> from recmodels.comparison.plan import best_rate
    >>> best_rate({1e-3: float("nan"), 5e-4: 0.04, 1e-4: 0.04})
    0.0005
    >>> best_rate({1e-3: float("nan")}) is None
    True
    """
    usable = {lr: score for lr, score in scores.items() if not np.isnan(score)}
    return max(usable, key=usable.__getitem__) if usable else None


@dataclass
class ComparisonPlan:
    """What to run and how each cell trains.

    ``lr`` fixes one learning rate for every method; without it each method's rate is
    chosen from ``lr_grid`` on the first seed's validation NDCG@10 (never a test figure).
    ``grid_epochs`` trains the candidates for at most that many epochs (the same budget
    for every method) and then continues the chosen rate's run under the full
    ``max_epochs``/``patience`` (exactly what a run from scratch gives); without it every
    candidate trains under the full budget.
    ``protocol="cold-start"`` holds ``cold_share`` of the items out of training
    (``cold_choice``: the ``"latest"`` first interactions, or ``"random"``); see
    :mod:`recmodels.cold_start`. ``max_history`` records that the data were cut to each
    user's latest interactions (``ace-bench --max-history``); the cut itself is made by
    :func:`~recmodels.build_sequences`. ``sequences`` sets every backbone's training rows
    (``"windows"`` or ``"prefixes"``, see :class:`~recmodels.SASRec`); None keeps each
    backbone's own default (windows for SASRec and GRU4Rec, prefixes for BERT4Rec).
    ``jobs`` trains that many cells at once, each in its own process with an equal share
    of the threads (:mod:`recmodels.comparison.parallel`); it is not a cell setting, so
    it never changes a fingerprint. ``keep_models`` saves each cell it trains, at its
    best epoch, as ``runs/<fingerprint>.pt`` (:func:`~recmodels.comparison.runs.
    load_model`); not a cell setting either. Like a cell run on another machine, a cell run with
    another number of threads can differ by float rounding, which training may amplify.

    Examples
    --------
    >>> from recmodels.comparison import ComparisonPlan
    >>> plan = ComparisonPlan(methods=["id", "ace"], backbones=["sasrec"], seeds=[0, 1],
    ...                       hidden_size=64, max_epochs=20)
    >>> plan.patience, plan.lr is None, plan.lr_grid
    (10, True, (0.001, 0.0005, 0.0001))
    >>> ComparisonPlan(methods=["bm25"], backbones=["sasrec"], seeds=[0])
    Traceback (most recent call last):
    ...
    ValueError: unknown method(s) ['bm25']; choose from [...].
    """

    methods: list[str]
    backbones: list[str]
    seeds: list[int]
    hidden_size: int = 128
    max_len: int = 50
    max_epochs: int = 400
    patience: int = 10
    batch_size: int = 256
    lr: float | None = None
    lr_grid: tuple[float, ...] = DEFAULT_LR_GRID
    grid_epochs: int | None = None
    device: str = "auto"
    window_stride: int = 1
    sequences: str | None = None
    k_core: int = 5
    max_history: int | None = None
    overrides: dict[str, dict] = field(default_factory=dict)
    protocol: str = "standard"
    cold_share: float = 0.1
    cold_choice: str = "latest"
    jobs: int = 1
    keep_models: bool = False

    def __post_init__(self) -> None:
        for kind, names, known in (("method", self.methods, METHODS),
                                   ("backbone", self.backbones, BACKBONES)):
            unknown = [n for n in names if n not in known]
            if unknown:
                raise ValueError(f"unknown {kind}(s) {unknown}; choose from {sorted(known)}.")
        if not self.seeds:
            raise ValueError("seeds is empty; give at least one seed.")
        if not all(is_seed(seed) for seed in self.seeds):
            raise ValueError(f"seeds={self.seeds!r} must be integers from 0 to 2**32 - 1.")
        self.seeds = [int(seed) for seed in self.seeds]  # NumPy integers do not go to JSON
        # A name given twice would train (or, with jobs, race for) the same cells twice.
        self.methods, self.backbones, self.seeds = (
            list(dict.fromkeys(names)) for names in (self.methods, self.backbones, self.seeds))
        if self.jobs < 1:
            raise ValueError(f"jobs={self.jobs} must be a positive number of processes.")
        self.lr_grid = tuple(float(lr) for lr in self.lr_grid)
        if self.lr is None and not self.lr_grid:
            raise ValueError("give a learning rate (lr) or a non-empty lr_grid.")
        if self.grid_epochs is not None and not 1 <= self.grid_epochs <= self.max_epochs:
            raise ValueError(f"grid_epochs={self.grid_epochs} must be in [1, max_epochs="
                             f"{self.max_epochs}].")
        if self.sequences not in (None, *CAUSAL_SEQUENCES):
            raise ValueError(f"sequences={self.sequences!r} must be None (each backbone's "
                             f"default) or one of {list(CAUSAL_SEQUENCES)}.")
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"protocol={self.protocol!r} must be one of {list(PROTOCOLS)}.")
        if not 0 < self.cold_share <= MAX_SHARE:
            raise ValueError(f"cold_share={self.cold_share} must be in (0, {MAX_SHARE}].")
        if self.cold_choice not in CHOICES:
            raise ValueError(f"cold_choice={self.cold_choice!r} must be one of {list(CHOICES)}.")

    @property
    def learning_rates(self) -> tuple[float, ...]:
        """The candidates each method's first seed trains."""
        return (float(self.lr),) if self.lr is not None else self.lr_grid

    @property
    def short_grid(self) -> bool:
        """Whether candidates train under ``grid_epochs`` and the chosen rate once more."""
        return self.grid_epochs is not None and len(self.learning_rates) > 1


def cell_settings(plan: ComparisonPlan, method: str, backbone: str, seed: int, lr: float,
                  inputs: dict, max_epochs: int | None = None) -> dict:
    """Everything that decides one cell's outcome; its fingerprint keys ``results.csv``.

    ``max_epochs`` replaces the plan's for a learning-rate candidate under ``grid_epochs``;
    ``inputs`` are the digests of :func:`cell_inputs`.

    Examples
    --------
    >>> from recmodels.comparison.plan import ComparisonPlan, cell_settings
    >>> plan = ComparisonPlan(["ace"], ["sasrec"], [0], device="cpu")
    >>> settings = cell_settings(plan, "ace", "sasrec", 0, 1e-3, {"data": "d1"}, max_epochs=6)
    >>> settings["lr"], settings["max_epochs"], settings["patience"], settings["data"]
    (0.001, 6, 10, 'd1')
    """
    return {"method": method,
            "method_settings": METHODS[method].settings(backbone, plan.overrides.get(method)),
            "backbone": backbone, "hidden_size": plan.hidden_size, "max_len": plan.max_len,
            "lr": lr, "max_epochs": max_epochs or plan.max_epochs, "patience": plan.patience,
            "batch_size": plan.batch_size, "window_stride": plan.window_stride,
            "k_core": plan.k_core, "seed": seed, "device": resolve_device(plan.device).type,
            # Only when set, so that earlier cells keep their fingerprints.
            **({"max_history": plan.max_history} if plan.max_history is not None else {}),
            **backbone_settings(method, backbone, plan), **protocol_settings(plan), **inputs,
            "version": __version__}


def backbone_arguments(method: str, backbone: str,
                       plan: ComparisonPlan | None = None) -> dict:
    """Backbone arguments other than the defaults: those the reference code sets for this
    method (METHODS.md section 4), and the plan's ``sequences`` where it differs from the
    backbone's own default."""
    arguments = dict(METHODS[method].backbone_settings.get(backbone, {}))
    if plan is not None and plan.sequences is not None:
        default = inspect.signature(BACKBONES[backbone]).parameters["sequences"].default
        if plan.sequences != default:
            arguments["sequences"] = plan.sequences
    return arguments


def backbone_settings(method: str, backbone: str, plan: ComparisonPlan | None = None) -> dict:
    """``{"backbone_settings": ...}`` of :func:`backbone_arguments`, or nothing where there
    are none, so other cells' fingerprints stay."""
    arguments = backbone_arguments(method, backbone, plan)
    return {"backbone_settings": arguments} if arguments else {}


def cell_inputs(plan: ComparisonPlan, data: SequenceData, E: np.ndarray,
                first_seen: np.ndarray | None = None) -> tuple[dict, object]:
    """The digests of a plan's inputs that enter every cell's fingerprint, and its
    cold-start split (None under the standard protocol)."""
    inputs = {"data": sequence_digest(data), "embeddings": array_digest(E)}
    split = make_split(plan, data, first_seen)
    if split is not None:
        inputs["new_items"] = array_digest(split.new_items)
    return inputs, split

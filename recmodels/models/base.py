"""The model contract shared by every backbone.

A backbone implements only ``encode``: a batch of item sequences to one state per position.
The base class owns the item table, input embedding, full-sort scoring and the loss. A
backbone that can compute the states of a few positions more cheaply than all of them also
overrides ``encode_at``, which the loss and evaluation call.
"""

from __future__ import annotations

from numbers import Integral

import numpy as np
import torch
from torch import nn

from ..batching import causal_prefixes, causal_windows
from ..data import SequenceData
from ..item_table import ItemTable
from ._blas import mm
from ._loss import linear_cross_entropy

CAUSAL_SEQUENCES = ("windows", "prefixes")


def trim_padding(items: torch.Tensor) -> torch.Tensor:
    """Drop trailing columns that are padding in every row (inputs are left-aligned)."""
    longest = int((items > 0).sum(dim=1).max()) if items.numel() else 0
    return items[:, : max(longest, 1)]


class SequentialRecommender(nn.Module):
    """Base class: item table, scoring over all items, cross-entropy loss.

    Parameters
    ----------
    item_table : ItemTable
        Supplies the ``(n_items + 1, hidden_size)`` item weights; row 0 is padding.
    max_len : int
        Longest input sequence.

    Notes
    -----
    Inputs are left-aligned: a sequence of length ``m`` fills positions ``0..m-1`` and the
    rest is padding (item 0). Causal backbones therefore never see padding at a valid
    position, and the user state is the output at position ``m - 1``.

    A backbone with modules of its own builds them inside
    :func:`~recmodels.item_table.rng_kept` and draws their initial weights in
    ``_reset_backbone_parameters``, which its constructor calls: :meth:`reset_parameters`
    then repeats construction's draws exactly.

    Examples
    --------
    A backbone only implements ``encode``; scoring, loss and evaluation come from here:

    >>> import torch
    >>> from torch import nn
    >>> from recmodels import SequentialRecommender, TrainableTable
    >>> class MeanOfPrefix(SequentialRecommender):
    ...     def encode(self, items, weights):
    ...         embedded = weights[items]
    ...         steps = torch.arange(1, items.shape[1] + 1).view(1, -1, 1)
    ...         return embedded.cumsum(dim=1) / steps
    >>> model = MeanOfPrefix(TrainableTable(10, 8), max_len=4)
    >>> model.predict(torch.tensor([[3, 4, 0, 0]]), torch.tensor([2])).shape
    torch.Size([1, 11])
    >>> loss = model.loss(torch.tensor([[3, 4, 0, 0]]), torch.tensor([[4, 5, 0, 0]]))
    >>> loss.item() > 0
    True
    """

    causal: bool = True
    # "windows" (every target of a window in one encoder pass) or "prefixes" (one row per
    # target, RecBole's way); an instance attribute only when not the default, so that
    # models of earlier versions keep their settings and checkpoints.
    sequences: str = "windows"
    # Whether the trainer may group rows of similar length into a batch to trim padding.
    # SASRec's and GRU4Rec's prefix rows are not grouped: a batch of same-length prefixes
    # holds targets at one position only, which trains GRU4Rec markedly slower than
    # RecBole's shuffled rows. (BERT4Rec's cloze prefixes keep the sort: after two epochs
    # on Beauty it matched RecBole's shuffled rows, docs/results.md.)
    sort_by_length: bool = True

    def __init__(self, item_table: ItemTable, *, max_len: int) -> None:
        super().__init__()
        if isinstance(max_len, bool) or not isinstance(max_len, Integral) or max_len < 1:
            raise ValueError(f"max_len={max_len!r} must be a positive integer (the longest "
                             "input sequence), e.g. max_len=50.")
        if item_table.n_items < 1:
            raise ValueError(f"the item table has {item_table.n_items} items; a model needs "
                             "at least one (build it with data.n_items rows).")
        if item_table.hidden_size < 1:
            raise ValueError(f"the item table is {item_table.hidden_size} columns wide; a model "
                             "needs at least one (its hidden_size).")
        self.item_table = item_table
        self.max_len = max_len
        self.hidden_size = item_table.hidden_size
        self.n_items = item_table.n_items
        # Not in the state_dict: which items may be candidates is a setting of the training
        # run (the cold-start protocol's), not a weight.
        self.register_buffer("training_excluded", None, persistent=False)

    def _set_sequences(self, sequences: str) -> None:
        if sequences not in CAUSAL_SEQUENCES:
            raise ValueError(f"sequences={sequences!r} must be one of {list(CAUSAL_SEQUENCES)}.")
        if sequences != type(self).sequences:
            self.sequences = sequences
            self.sort_by_length = sequences != "prefixes"

    def reset_parameters(self) -> None:
        """Redraw every initial weight from torch's global RNG, as construction drew it.

        The item table first (a table built from a matrix returns to it; frozen buffers stay
        as they are), then the backbone's own modules
        (:meth:`_reset_backbone_parameters`). Building the table and then the model draws
        the same numbers in the same order, so ``torch.manual_seed(s)`` before
        construction and ``torch.manual_seed(s); model.reset_parameters()`` give the same
        weights.
        """
        self.item_table.reset_parameters()
        self._reset_backbone_parameters()

    def _reset_backbone_parameters(self) -> None:
        """Initialise the backbone's own modules (not the item table).

        Backbones build their modules inside :func:`~recmodels.item_table.rng_kept` and then
        call this, so that this method is the only place their initial weights come from.
        """

    def exclude_from_training(self, items) -> None:
        """Keep ``items`` out of the training loss's candidates; None lets every item back.

        The training loss (:meth:`loss`) then gives these items a ``-inf`` logit, so a
        full-softmax step never pushes their scores down as negatives and their rows get
        exactly zero gradient from it. Scoring for evaluation (:meth:`predict`,
        :meth:`score`) is unaffected: the items rank like any other. This is how the
        cold-start protocol (:mod:`recmodels.cold_start`) keeps new items out of training.

        Parameters
        ----------
        items : array-like of int or None
            Model item indices in ``1..n_items`` (0 is padding). No training target may be
            one of them: its loss would be infinite.

        Examples
        --------
        >>> import torch
        >>> from recmodels import SASRec, TrainableTable
        >>> model = SASRec(TrainableTable(6, 8), max_len=4, inner_size=16)
        >>> model.exclude_from_training([5, 6])
        >>> model.training_excluded.nonzero().ravel().tolist()
        [5, 6]
        >>> scores = model.predict(torch.tensor([[1, 2]]), torch.tensor([2]))
        >>> bool(torch.isfinite(scores[0, 5:]).all())  # evaluation still ranks them
        True
        >>> model.exclude_from_training([0])
        Traceback (most recent call last):
        ...
        ValueError: items must be model item indices in 1..6 (0 is padding); got [0]. ...
        """
        if items is None:
            self.training_excluded = None
            vars(self).pop("n_excluded_from_training", None)
            return
        index = np.unique(np.asarray(items, dtype=np.int64).ravel())
        bad = index[(index < 1) | (index > self.n_items)]
        if bad.size:
            raise ValueError(f"items must be model item indices in 1..{self.n_items} (0 is "
                             f"padding); got {bad[:5].tolist()}. Pass data.items-style indices, "
                             "i.e. embedding row + 1.")
        device = next((t.device for t in (*self.parameters(), *self.buffers())),
                      torch.device("cpu"))
        mask = torch.zeros(self.n_items + 1, dtype=torch.bool, device=device)
        mask[torch.from_numpy(index).to(device)] = True
        self.training_excluded = mask
        # A plain int lands in the trainer's settings (provenance.module_settings), so a run
        # with excluded items never resumes a checkpoint written without them. It exists
        # only while items are excluded, so other runs' settings are unchanged.
        self.n_excluded_from_training = int(index.size)

    @property
    def context_len(self) -> int:
        """How many past items an evaluation input holds."""
        return self.max_len

    def item_weights(self) -> torch.Tensor:
        """Weights used both to embed inputs and to score items."""
        return self.item_table()

    def encode(self, items: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Map ``(batch, length)`` item indices to ``(batch, length, hidden)`` states."""
        raise NotImplementedError

    def logit_bias(self) -> torch.Tensor | None:
        """A per-item term added to every logit, shape ``(n_items + 1,)``; None here."""
        return None

    def encode_at(self, items: torch.Tensor, weights: torch.Tensor, rows: torch.Tensor,
                  positions: torch.Tensor) -> torch.Tensor:
        """The states :meth:`encode` gives at ``(rows[i], positions[i])``, shape ``(n, hidden)``.

        Training reads states only where there is a target and evaluation only at each
        sequence's end; a backbone overrides this when it can skip the work for the other
        positions (SASRec's and BERT4Rec's last layer runs its queries only there).
        """
        return self.encode(items, weights)[rows, positions]

    def score(self, states: torch.Tensor, weights: torch.Tensor, *,
              out: torch.Tensor | None = None) -> torch.Tensor:
        """Logits over item indices ``0..n_items``; the padding item gets ``-inf``.

        ``out``, a ``(len(states), n_items + 1)`` buffer for 2-d ``states`` outside autograd,
        takes the logits in place of a fresh tensor: evaluation reuses one across batches,
        because a fresh buffer of that size costs a page fault every 4 KiB.
        """
        candidates = weights[: self.n_items + 1]
        bias = self.logit_bias()
        if out is None:
            logits = mm(states, candidates.T) if states.dim() == 2 else states @ candidates.T
            logits = logits if bias is None else logits + bias
        else:
            if states.dim() != 2:
                raise ValueError(f"score(out=...) takes 2-d states; got shape "
                                 f"{tuple(states.shape)}. Leave out out= for batched states.")
            logits = mm(states, candidates.T, out=out)
            if bias is not None:
                logits.add_(bias)
        logits[..., 0] = float("-inf")
        return logits

    def user_states(self, items: torch.Tensor, lengths: torch.Tensor,
                    weights: torch.Tensor) -> torch.Tensor:
        """One state per sequence, at its last item."""
        last = (lengths - 1).clamp(min=0)
        return self.encode_at(trim_padding(items), weights,
                              torch.arange(items.shape[0], device=items.device), last)

    def predict(self, items: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Scores of every item for each sequence, shape ``(batch, n_items + 1)``."""
        weights = self.item_weights()
        return self.score(self.user_states(items, lengths, weights), weights)

    def loss(self, items: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy over all positions with a target (``targets > 0``).

        The candidates are every item except padding and those excluded with
        :meth:`exclude_from_training`.
        """
        weights = self.item_weights()
        items = trim_padding(items)
        targets = targets[:, : items.shape[1]]
        has_target = targets > 0
        picked = targets[has_target]
        if picked.numel() == 0:  # e.g. a cloze batch in which no item was masked
            return self.encode(items, weights).sum() * 0.0
        states = self.encode_at(items, weights, *has_target.nonzero(as_tuple=True))
        # Padding, and the items exclude_from_training keeps out (never 0, it checks).
        blocked = torch.zeros(1, dtype=torch.long, device=picked.device)
        if self.training_excluded is not None:
            blocked = torch.cat([blocked, self.training_excluded.nonzero().ravel()])
        return linear_cross_entropy(states, weights, picked,
                                    n_classes=self.n_items + 1, blocked=blocked,
                                    bias=self.logit_bias())

    def window_weights(self, windows: torch.Tensor) -> torch.Tensor:
        """Training examples carried by each stored window (its number of targets)."""
        return (windows[:, 1] > 0).sum(dim=1)

    def training_windows(self, data: SequenceData, stride: int = 1) -> torch.Tensor:
        """Every training example of a data set: ``(n_windows, channels, max_len)`` integers.

        Channel 0 holds the left-aligned input items; causal models keep targets in channel 1.
        ``stride`` is passed to :func:`~recmodels.batching.causal_windows`; with
        ``sequences="prefixes"`` they come from :func:`~recmodels.batching.causal_prefixes`
        and ``stride`` does not apply.
        """
        if self.sequences == "prefixes":
            inputs, targets = causal_prefixes(data, self.max_len)
        else:
            inputs, targets = causal_windows(data, self.max_len, stride)
        return torch.from_numpy(np.stack([inputs, targets], axis=1))

    def training_batch(self, windows: torch.Tensor, generator: torch.Generator):
        """Turn a batch of stored windows into ``(items, targets)`` for :meth:`loss`."""
        return windows[:, 0], windows[:, 1]

"""GRU4Rec: a recurrent session encoder (Hidasi et al., 2016), RecBole's variant."""

from __future__ import annotations

import math

import torch
from torch import nn

from ..item_table import ItemTable, rng_kept
from ._gru import GRU
from .base import SequentialRecommender


OUTPUT_INITS = ("torch", "xavier")
# encode_at groups rows whose lengths lie within this factor of each other.
LENGTH_BAND = 1.5
# ... and does so only when that cuts the GRU's steps to this share of the padded batch's:
# each extra group is another GRU call.
GROUPING_GAIN = 0.75


def length_groups(needed: torch.Tensor):
    """Rows grouped by the GRU steps they need, or None where one pass costs about as much.

    Parameters
    ----------
    needed : Tensor of shape (batch,)
        Steps each row needs (its last requested position + 1), at least 1.

    Returns
    -------
    (order, counts, longest) or None
        ``order`` lists the rows group by group, ``counts`` the rows in each group and
        ``longest`` each group's longest row; None where grouping would not cut the steps
        of one pass over the batch (``batch x needed.max()``) to ``GROUPING_GAIN`` or less.

    Examples
    --------
    >>> import torch
    >>> order, counts, longest = length_groups(torch.tensor([50, 2, 3, 48, 1, 2, 2, 1]))
    >>> counts.tolist(), longest.tolist()
    ([2, 3, 1, 2], [1, 2, 3, 50])
    >>> length_groups(torch.tensor([50, 49, 50])) is None
    True
    """
    band = torch.floor(torch.log(needed.float()) / math.log(LENGTH_BAND)).long()
    order = torch.argsort(band, stable=True)
    group = torch.unique_consecutive(band[order], return_inverse=True)[1]
    counts = torch.bincount(group)
    longest = torch.zeros_like(counts).scatter_reduce(0, group, needed[order], "amax")
    if float((counts * longest).sum()) > GROUPING_GAIN * needed.numel() * float(needed.max()):
        return None
    return order, counts, longest


class GRU4Rec(SequentialRecommender):
    """GRU over the item embeddings, projected back to the item table's width.

    Parameters
    ----------
    item_table : ItemTable
        Item weights; their width is the embedding size.
    max_len : int, default=50
        Longest input sequence.
    gru_hidden_size : int, default=128
    n_layers : int, default=1
    dropout : float, default=0.5
        Dropout on the input embeddings (``dropout_prob`` of the reference GRU4Rec model
        file; the dataset file's hidden and attention dropout do not reach GRU4Rec).
    output_init : {"torch", "xavier"}, default="torch"
        The output layer's weights: torch's default (RecBole's GRU4Rec) or Xavier-normal
        (the reference code's GRU4Rec variants of whitening, WhitenRec+ and AlphaRec).
    sequences : {"windows", "prefixes"}, default="windows"
        Training rows: every target of a window in one pass, or a row per target as
        RecBole trains (see :class:`~recmodels.SASRec`).

    Notes
    -----
    Initialisation follows RecBole's GRU4Rec: Xavier-uniform GRU weights (no biases) and
    torch's default for the output layer unless ``output_init="xavier"``. The item table
    keeps its own (``ace-bench``'s ID table on GRU4Rec is Xavier-normal, as RecBole's).

    Examples
    --------
    >>> import torch
    >>> from recmodels import GRU4Rec, TrainableTable
    >>> model = GRU4Rec(TrainableTable(10, 8), max_len=5, gru_hidden_size=6)
    >>> model.predict(torch.tensor([[3, 4, 5, 0, 0]]), torch.tensor([3])).shape
    torch.Size([1, 11])
    """

    def __init__(self, item_table: ItemTable, *, max_len: int = 50, gru_hidden_size: int = 128,
                 n_layers: int = 1, dropout: float = 0.5, output_init: str = "torch",
                 sequences: str = "windows") -> None:
        super().__init__(item_table, max_len=max_len)
        self._set_sequences(sequences)
        if output_init not in OUTPUT_INITS:
            raise ValueError(f"output_init={output_init!r} must be one of {list(OUTPUT_INITS)}.")
        self.output_init = output_init
        self.dropout = nn.Dropout(dropout)
        with rng_kept():
            self.gru = GRU(self.hidden_size, gru_hidden_size, n_layers, batch_first=True,
                              bias=False)
            self.out = nn.Linear(gru_hidden_size, self.hidden_size)
        self._reset_backbone_parameters()

    def _reset_backbone_parameters(self) -> None:
        # RecBole's GRU4Rec: Xavier-uniform input and recurrent weights, the output layer
        # left at torch's default initialisation.
        for weight in self.gru.parameters():
            nn.init.xavier_uniform_(weight)
        self.out.reset_parameters()
        if self.output_init == "xavier":
            nn.init.xavier_normal_(self.out.weight)

    def encode(self, items: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        states, _ = self.gru(self.dropout(weights[items]))
        return self.out(states)

    def encode_at(self, items: torch.Tensor, weights: torch.Tensor, rows: torch.Tensor,
                  positions: torch.Tensor) -> torch.Tensor:
        """:meth:`encode`'s states at ``(rows[i], positions[i])``, without the padding's work.

        The GRU is causal, so row ``r`` needs only the steps up to its last requested
        position. Shuffled prefix rows (``sequences="prefixes"``, one target at each row's
        end) are grouped by those lengths (bands growing by ``LENGTH_BAND``), each group
        run trimmed to its longest row, when that cuts the GRU's steps to
        ``GROUPING_GAIN`` of one pass over the batch or less: a batch then costs about its
        real tokens instead of the longest row times the batch. Length-sorted windows
        keep one pass over the batch, as :meth:`encode` makes it. The output layer runs at
        the requested positions only. Grouped, dropout draws its masks over the steps each
        group runs, so in training the draws differ from :meth:`encode`'s; without
        dropout the states are equal to float rounding.
        """
        batch = items.shape[0]
        needed = torch.ones(batch, dtype=torch.long, device=items.device)
        needed = needed.scatter_reduce(0, rows, (positions + 1).to(needed.dtype), "amax")
        # Length-sorted rows (windows) keep one pass: their dropout draws stay encode's.
        groups = None if self.sort_by_length else length_groups(needed)
        if groups is None:
            states, _ = self.gru(self.dropout(weights[items[:, : int(needed.max())]]))
            return self.out(states[rows, positions])
        order, counts, longest = groups
        # Where each row's states start in the groups' concatenated (row, step) states.
        group = torch.repeat_interleave(torch.arange(counts.numel(), device=items.device),
                                        counts)
        group_start = torch.cumsum(counts * longest, 0) - counts * longest
        slot = torch.arange(batch, device=items.device) - (torch.cumsum(counts, 0) - counts)[group]
        row_start = torch.empty_like(needed)
        row_start[order] = group_start[group] + slot * longest[group]
        chunks = []
        for members, length in zip(torch.split(order, counts.tolist()), longest.tolist()):
            states, _ = self.gru(self.dropout(weights[items[members, :length]]))
            chunks.append(states.reshape(-1, states.shape[-1]))
        return self.out(torch.cat(chunks)[row_start[rows] + positions])

"""GRU4Rec: a recurrent session encoder (Hidasi et al., 2016), RecBole's variant."""

from __future__ import annotations

import torch
from torch import nn

from ..item_table import ItemTable, rng_kept
from .base import SequentialRecommender


OUTPUT_INITS = ("torch", "xavier")


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
            self.gru = nn.GRU(self.hidden_size, gru_hidden_size, n_layers, batch_first=True,
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

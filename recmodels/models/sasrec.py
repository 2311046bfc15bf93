"""SASRec: causal self-attention over the item sequence (Kang and McAuley, 2018)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..item_table import ItemTable, rng_kept
from .attention import attention, pack_queries
from .base import SequentialRecommender
from .dropout import Dropout

# A last layer reading more than 1 / DENSE_SELECTION of its positions runs in full.
DENSE_SELECTION = 4


class TransformerBlock(nn.Module):
    """Post-norm transformer layer with separate attention and hidden dropout (RecBole's)."""

    def __init__(self, hidden_size: int, n_heads: int, inner_size: int, hidden_dropout: float,
                 attn_dropout: float, layer_norm_eps: float) -> None:
        super().__init__()
        if hidden_size % n_heads:
            raise ValueError(f"hidden_size={hidden_size} must be divisible by n_heads={n_heads}.")
        self.n_heads = n_heads
        self.attn_dropout = attn_dropout
        self.qkv = nn.Linear(hidden_size, 3 * hidden_size)
        self.attn_out = nn.Linear(hidden_size, hidden_size)
        self.norm_attn = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self.ff_in = nn.Linear(hidden_size, inner_size)
        self.ff_out = nn.Linear(inner_size, hidden_size)
        self.norm_ff = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self.dropout = Dropout(hidden_dropout)

    def forward(self, x: torch.Tensor, *, causal: bool, key_mask: torch.Tensor | None = None,
                at: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """States of every position, or with ``at=(rows, positions)`` only of those.

        Every position still serves as a key and value; only the queries, the output
        projection and the feed-forward part run for the selected positions, so a layer
        whose outputs are read at a few positions costs about a quarter of a full one.
        """
        if at is None:
            return self._finish(x, self._attend_all(x, causal, key_mask))
        rows, positions = at
        if rows.numel() * DENSE_SELECTION > x.shape[0] * x.shape[1]:
            # Packing the queries costs more than it saves when most positions are read.
            return self._finish(x, self._attend_all(x, causal, key_mask))[rows, positions]
        selected = x[rows, positions]
        return self._finish(selected, self._attend_at(x, selected, rows, positions, causal,
                                                      key_mask))

    def _attend_all(self, x, causal, key_mask):
        batch, length, hidden = x.shape
        q, k, v = (
            self.qkv(x).view(batch, length, 3, self.n_heads, hidden // self.n_heads)
            .permute(2, 0, 3, 1, 4)
        )
        attended = attention(q, k, v, key_mask, self.attn_dropout if self.training else 0.0,
                             is_causal=causal)
        return attended.transpose(1, 2).reshape(batch, length, hidden)

    def _attend_at(self, x, selected, rows, positions, causal, key_mask):
        batch, length, hidden = x.shape
        head_size = hidden // self.n_heads
        weight, bias = self.qkv.weight, self.qkv.bias
        k, v = (F.linear(x, weight[hidden:], bias[hidden:])
                .view(batch, length, 2, self.n_heads, head_size).permute(2, 0, 3, 1, 4))
        # The queries of a sequence side by side, (batch, width): attention then reads each
        # sequence's keys in place. Empty slots hold a zero query that may attend to every
        # key it is allowed and are never read.
        slots, width = pack_queries(rows, batch)
        selected_q = F.linear(selected, weight[:hidden], bias[:hidden])
        q = selected_q.new_zeros(batch, width, hidden)  # autocast's dtype, where it is on
        q[rows, slots] = selected_q
        allowed = None
        if causal:
            reach = positions.new_full((batch, width), length - 1)
            reach[rows, slots] = positions
            allowed = (torch.arange(length, device=x.device) <= reach[..., None])[:, None]
        if key_mask is not None:
            allowed = key_mask if allowed is None else allowed & key_mask
        attended = attention(q.view(batch, width, self.n_heads, head_size).transpose(1, 2),
                             k, v, allowed, self.attn_dropout if self.training else 0.0)
        return attended.transpose(1, 2)[rows, slots].reshape(-1, hidden)

    def _finish(self, x, attended):
        x = self.norm_attn(x + self.dropout(self.attn_out(attended)))
        return self.norm_ff(x + self.dropout(self.ff_out(F.gelu(self.ff_in(x)))))


class TransformerEncoder(nn.Module):
    """Item + position embedding, LayerNorm, dropout, then a stack of blocks."""

    def __init__(self, hidden_size: int, max_len: int, n_layers: int, n_heads: int,
                 inner_size: int, hidden_dropout: float, attn_dropout: float,
                 layer_norm_eps: float) -> None:
        super().__init__()
        self.position = nn.Embedding(max_len, hidden_size)
        self.norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self.dropout = Dropout(hidden_dropout)
        self.blocks = nn.ModuleList(
            TransformerBlock(hidden_size, n_heads, inner_size, hidden_dropout, attn_dropout,
                             layer_norm_eps)
            for _ in range(n_layers)
        )

    def forward(self, embedded: torch.Tensor, *, causal: bool,
                key_mask: torch.Tensor | None = None,
                at: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """``(batch, length, hidden)`` states, or ``(len(rows), hidden)`` with ``at``."""
        positions = torch.arange(embedded.shape[1], device=embedded.device)
        x = self.dropout(self.norm(embedded + self.position(positions)))
        for depth, block in enumerate(self.blocks):
            last = depth == len(self.blocks) - 1
            x = block(x, causal=causal, key_mask=key_mask, at=at if last else None)
        if at is not None and not self.blocks:
            return x[at]
        return x


def init_weights(module: nn.Module, std: float) -> None:
    """Truncation-free normal init of linear and embedding weights (RecBole's)."""
    for layer in module.modules():
        if isinstance(layer, (nn.Linear, nn.Embedding)):
            nn.init.normal_(layer.weight, std=std)
        if isinstance(layer, nn.Linear) and layer.bias is not None:
            nn.init.zeros_(layer.bias)
        if isinstance(layer, nn.LayerNorm):
            nn.init.ones_(layer.weight)
            nn.init.zeros_(layer.bias)


class SASRec(SequentialRecommender):
    """Self-attentive sequential recommendation with a tied item table.

    Parameters
    ----------
    item_table : ItemTable
        Item weights (random, initialised, frozen, AlphaFuse or adapter).
    max_len : int, default=50
        Longest input sequence.
    n_layers, n_heads, inner_size : int, default=2, 2, 256
        Transformer shape.
    hidden_dropout, attn_dropout : float, default=0.5, 0.3
        Dropout on hidden states and attention weights.
    layer_norm_eps : float, default=1e-12
    init_std : float, default=0.02
        Standard deviation of the initial weights (the item table keeps its own).
    sequences : {"windows", "prefixes"}, default="windows"
        Training rows: ``"windows"`` trains every target of a window in one pass (fast);
        ``"prefixes"`` gives each target a row of its own, as RecBole does (the same
        targets and loss, several times the encoder work, a dropout mask per target).

    Examples
    --------
    >>> import torch
    >>> from recmodels import SASRec, TrainableTable
    >>> model = SASRec(TrainableTable(10, 8), max_len=5, inner_size=16)
    >>> model.predict(torch.tensor([[1, 2, 0, 0, 0]]), torch.tensor([2])).shape
    torch.Size([1, 11])
    """

    def __init__(self, item_table: ItemTable, *, max_len: int = 50, n_layers: int = 2,
                 n_heads: int = 2, inner_size: int = 256, hidden_dropout: float = 0.5,
                 attn_dropout: float = 0.3, layer_norm_eps: float = 1e-12,
                 init_std: float = 0.02, sequences: str = "windows") -> None:
        super().__init__(item_table, max_len=max_len)
        self._set_sequences(sequences)
        self.init_std = init_std
        with rng_kept():
            self.encoder = TransformerEncoder(self.hidden_size, max_len, n_layers, n_heads,
                                              inner_size, hidden_dropout, attn_dropout,
                                              layer_norm_eps)
        self._reset_backbone_parameters()

    def _reset_backbone_parameters(self) -> None:
        init_weights(self.encoder, self.init_std)

    def encode(self, items: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        return self.encoder(weights[items], causal=True)

    def encode_at(self, items: torch.Tensor, weights: torch.Tensor, rows: torch.Tensor,
                  positions: torch.Tensor) -> torch.Tensor:
        return self.encoder(weights[items], causal=True, at=(rows, positions))

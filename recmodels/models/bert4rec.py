"""BERT4Rec: bidirectional self-attention trained by cloze masking (Sun et al., 2019)."""

from __future__ import annotations

import torch
from torch import nn

from ..batching import cloze_windows
from ..data import SequenceData
from ..item_table import ItemTable
from .base import SequentialRecommender
from .sasrec import TransformerEncoder, init_weights


class BERT4Rec(SequentialRecommender):
    """Bidirectional transformer; predicts masked items, and a mask appended at the end.

    The mask token's row is owned by the model, not by the item table, so a reshaped
    matrix maps to items only.

    Parameters
    ----------
    item_table : ItemTable
        Item weights.
    max_len : int, default=50
        Window length, the appended mask included.
    mask_ratio : float, default=0.2
        Share of positions masked in each training window (at least one).
    last_item_share : float, default=0.1
        Share of training windows in which only the last item is masked, the pattern that
        evaluation asks for (as in the BERT4Rec paper).
    n_layers, n_heads, inner_size : int, default=2, 2, 256
    hidden_dropout, attn_dropout : float, default=0.5, 0.3
    layer_norm_eps : float, default=1e-12
    init_std : float, default=0.02

    Examples
    --------
    >>> import torch
    >>> from recmodels import BERT4Rec, TrainableTable
    >>> model = BERT4Rec(TrainableTable(10, 8), max_len=5, inner_size=16)
    >>> model.predict(torch.tensor([[1, 2, 0, 0]]), torch.tensor([2])).shape
    torch.Size([1, 11])
    """

    causal = False

    def __init__(self, item_table: ItemTable, *, max_len: int = 50, mask_ratio: float = 0.2,
                 last_item_share: float = 0.1, n_layers: int = 2, n_heads: int = 2, inner_size: int = 256,
                 hidden_dropout: float = 0.5, attn_dropout: float = 0.3,
                 layer_norm_eps: float = 1e-12, init_std: float = 0.02) -> None:
        super().__init__(item_table, max_len=max_len)
        if not 0 < mask_ratio < 1:
            raise ValueError(f"mask_ratio={mask_ratio} must be in (0, 1).")
        if not 0 <= last_item_share <= 1:
            raise ValueError(f"last_item_share={last_item_share} must be in [0, 1].")
        self.mask_ratio = mask_ratio
        self.last_item_share = last_item_share
        self.mask_index = self.n_items + 1
        self.mask_embedding = nn.Parameter(torch.randn(1, self.hidden_size) * init_std)
        self.encoder = TransformerEncoder(self.hidden_size, max_len, n_layers, n_heads,
                                          inner_size, hidden_dropout, attn_dropout,
                                          layer_norm_eps)
        self.head = nn.Sequential(nn.Linear(self.hidden_size, self.hidden_size), nn.GELU(),
                                  nn.LayerNorm(self.hidden_size, eps=layer_norm_eps))
        init_weights(self.encoder, init_std)
        init_weights(self.head, init_std)

    @property
    def context_len(self) -> int:
        return self.max_len - 1

    def item_weights(self) -> torch.Tensor:
        return torch.cat([self.item_table(), self.mask_embedding])

    def encode(self, items: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        key_mask = (items > 0)[:, None, None, :]
        return self.head(self.encoder(weights[items], causal=False, key_mask=key_mask))

    def user_states(self, items: torch.Tensor, lengths: torch.Tensor,
                    weights: torch.Tensor) -> torch.Tensor:
        rows = torch.arange(items.shape[0], device=items.device)
        width = int(lengths.max()) + 1
        padded = torch.zeros(items.shape[0], width, dtype=items.dtype, device=items.device)
        padded[:, : min(items.shape[1], width)] = items[:, :width]
        padded[rows, lengths] = self.mask_index
        return self.encode(padded, weights)[rows, lengths]

    def window_weights(self, windows: torch.Tensor) -> torch.Tensor:
        """Each cloze window is one training example, as in RecBole."""
        return torch.ones(windows.shape[0], dtype=torch.long)

    def training_windows(self, data: SequenceData, stride: int = 1) -> torch.Tensor:
        """Non-overlapping cloze windows; ``stride`` does not apply to cloze training."""
        return torch.from_numpy(cloze_windows(data, self.max_len))[:, None, :]

    def training_batch(self, windows: torch.Tensor, generator: torch.Generator):
        windows = windows[:, 0]
        valid = windows > 0
        draw = torch.rand(windows.shape, generator=generator).to(windows.device)
        last_only = (torch.rand(windows.shape[0], generator=generator)
                     < self.last_item_share).to(windows.device)
        masked = (draw < self.mask_ratio) & valid & ~last_only[:, None]
        # Every window trains on at least one item: its last one when the draw chose none.
        last = valid.sum(dim=1) - 1
        none = ~masked.any(dim=1)
        masked[torch.nonzero(none).squeeze(1), last[none]] = True
        items = torch.where(masked, torch.full_like(windows, self.mask_index), windows)
        targets = torch.where(masked, windows, torch.zeros_like(windows))
        return items, targets

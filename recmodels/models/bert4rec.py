"""BERT4Rec: bidirectional self-attention trained by cloze masking (Sun et al., 2019)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..batching import cloze_windows, prefix_windows
from ..data import SequenceData
from ..item_table import ItemTable, rng_kept
from .base import SequentialRecommender
from .sasrec import TransformerEncoder, init_weights

TRAINING_SEQUENCES = ("prefixes", "windows")


class BERT4Rec(SequentialRecommender):
    """Bidirectional transformer; predicts masked items, and a mask appended at the end.

    Trained as RecBole 1.2.1 trains it: on every training prefix, with cloze masks drawn
    per batch, and a per-item output bias added to the logits. The mask token's row is owned
    by the model, not by the item table, so a reshaped matrix maps to items only.

    Parameters
    ----------
    item_table : ItemTable
        Item weights.
    max_len : int, default=50
        Longest training sequence; evaluation inputs hold ``max_len - 1`` items and the
        appended mask.
    mask_ratio : float, default=0.2
        Probability that each item of a sequence is masked in a cloze batch.
    ft_ratio : float, default=0.5
        Probability that a whole batch masks only the last item of each sequence (the
        pattern evaluation asks for) instead of drawing cloze masks.
    sequences : {"prefixes", "windows"}, default="prefixes"
        Training sequences: every prefix that precedes a training target (RecBole's, one
        per next-item target), or the training part cut into non-overlapping windows of
        ``max_len`` (several times fewer sequences per epoch).
    n_layers, n_heads, inner_size : int, default=2, 2, 256
    hidden_dropout, attn_dropout : float, default=0.5, 0.3
        The reference runs' dataset file sets these for every backbone.
    layer_norm_eps : float, default=1e-12
    init_std : float, default=0.02
        Standard deviation of the initial weights and of the mask token's row.

    Notes
    -----
    Masking follows RecBole's ``MaskItemSequence`` transform: one draw per batch decides
    between fine-tuning (with probability ``ft_ratio``, the last item of every sequence
    is replaced by the mask token in place and is the only target; nothing is appended)
    and cloze masking (each item is replaced by the mask token with probability
    ``mask_ratio``; a sequence may get no mask and then no loss). At most
    ``int(mask_ratio * max_len)`` masked items of a sequence are targets, its last ones
    (RecBole's ``mask_item_length``); the others stay masked in the input. One departure:
    RecBole's loss drops a masked item at position 0 (its index doubles as padding), here
    it is a target like any other.

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
                 ft_ratio: float = 0.5, sequences: str = "prefixes", n_layers: int = 2,
                 n_heads: int = 2, inner_size: int = 256, hidden_dropout: float = 0.5,
                 attn_dropout: float = 0.3, layer_norm_eps: float = 1e-12,
                 init_std: float = 0.02) -> None:
        super().__init__(item_table, max_len=max_len)
        if not 0 < mask_ratio < 1:
            raise ValueError(f"mask_ratio={mask_ratio} must be in (0, 1).")
        if not 0 <= ft_ratio <= 1:
            raise ValueError(f"ft_ratio={ft_ratio} must be in [0, 1].")
        if sequences not in TRAINING_SEQUENCES:
            raise ValueError(f"sequences={sequences!r} must be one of {list(TRAINING_SEQUENCES)}.")
        self.mask_ratio, self.ft_ratio, self.sequences = mask_ratio, ft_ratio, sequences
        # RecBole's mask_item_length; 0 (tiny max_len) keeps every masked item as a target.
        self.max_targets = int(mask_ratio * max_len) or max_len
        self.init_std = init_std
        self.mask_index = self.n_items + 1
        with rng_kept():
            self.mask_embedding = nn.Parameter(torch.empty(1, self.hidden_size))
            self.output_bias = nn.Parameter(torch.empty(self.n_items + 1))
            self.encoder = TransformerEncoder(self.hidden_size, max_len, n_layers, n_heads,
                                              inner_size, hidden_dropout, attn_dropout,
                                              layer_norm_eps)
            self.head = nn.Sequential(nn.Linear(self.hidden_size, self.hidden_size), nn.GELU(),
                                      nn.LayerNorm(self.hidden_size, eps=layer_norm_eps))
        self._reset_backbone_parameters()

    def _reset_backbone_parameters(self) -> None:
        init_weights(self.encoder, self.init_std)
        init_weights(self.head, self.init_std)
        with torch.no_grad():
            self.mask_embedding.normal_(0.0, self.init_std)
            self.output_bias.zero_()

    @property
    def context_len(self) -> int:
        return self.max_len - 1

    def item_weights(self) -> torch.Tensor:
        return torch.cat([self.item_table(), self.mask_embedding])

    def encode(self, items: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        key_mask = (items > 0)[:, None, None, :]
        return self.head(self.encoder(weights[items], causal=False, key_mask=key_mask))

    def encode_at(self, items: torch.Tensor, weights: torch.Tensor, rows: torch.Tensor,
                  positions: torch.Tensor) -> torch.Tensor:
        key_mask = (items > 0)[:, None, None, :]
        return self.head(self.encoder(weights[items], causal=False, key_mask=key_mask,
                                      at=(rows, positions)))

    def logit_bias(self) -> torch.Tensor:
        """The per-item output bias RecBole's BERT4Rec adds to every logit."""
        return self.output_bias

    def user_states(self, items: torch.Tensor, lengths: torch.Tensor,
                    weights: torch.Tensor) -> torch.Tensor:
        rows = torch.arange(items.shape[0], device=items.device)
        width = int(lengths.max()) + 1
        padded = torch.zeros(items.shape[0], width, dtype=items.dtype, device=items.device)
        padded[:, : min(items.shape[1], width)] = items[:, :width]
        padded[rows, lengths] = self.mask_index
        return self.encode_at(padded, weights, rows, lengths)

    def window_weights(self, windows: torch.Tensor) -> torch.Tensor:
        """Each training sequence is one example, as in RecBole."""
        return torch.ones(windows.shape[0], dtype=torch.long)

    def training_windows(self, data: SequenceData, stride: int = 1) -> torch.Tensor:
        """Training sequences, ``(n, 1, max_len)`` int32; ``stride`` does not apply.

        ``sequences="prefixes"``: :func:`~recmodels.batching.prefix_windows`, one per
        next-item training target; ``"windows"``:
        :func:`~recmodels.batching.cloze_windows`.
        """
        build = prefix_windows if self.sequences == "prefixes" else cloze_windows
        windows = build(data, self.max_len).astype(np.int32)
        return torch.from_numpy(windows)[:, None, :]

    def training_batch(self, windows: torch.Tensor, generator: torch.Generator):
        """Mask a batch of sequences: ``(items, targets)`` for :meth:`loss`."""
        sequence = windows[:, 0].long()
        valid = sequence > 0
        if float(torch.rand(1, generator=generator)) < self.ft_ratio:
            last = (valid.sum(dim=1) - 1).clamp(min=0)
            masked = torch.zeros_like(valid)
            masked[torch.arange(sequence.shape[0], device=sequence.device), last] = True
            masked &= valid
        else:
            draw = torch.rand(sequence.shape, generator=generator).to(sequence.device)
            masked = (draw < self.mask_ratio) & valid
        # Masked items counted from the end of each sequence: the last max_targets train.
        from_end = masked.flip(1).cumsum(dim=1).flip(1)
        trained = masked & (from_end <= self.max_targets)
        items = torch.where(masked, torch.full_like(sequence, self.mask_index), sequence)
        targets = torch.where(trained, sequence, torch.zeros_like(sequence))
        return items, targets

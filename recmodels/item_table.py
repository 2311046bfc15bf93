"""Item tables: where a reshaped embedding matrix enters a backbone.

Every table returns the full ``(n_items + 1, hidden_size)`` weight, row 0 being the padding
item (always zero). Backbones use it both to embed inputs and to score all items.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "leaky_relu": nn.LeakyReLU, "linear": None}


def _as_tensor(matrix, name: str) -> torch.Tensor:
    array = np.asarray(matrix, dtype=np.float32)
    if array.ndim != 2 or not np.isfinite(array).all():
        raise ValueError(f"{name} must be a finite 2-D matrix (n_items, width); got shape "
                         f"{array.shape}{'' if np.isfinite(array).all() else ' with NaN/inf'}.")
    return torch.from_numpy(array.copy())


def _check_width(matrix: torch.Tensor, hidden_size: int, name: str) -> None:
    if matrix.shape[1] != hidden_size:
        raise ValueError(
            f"{name} has {matrix.shape[1]} columns but the backbone's hidden_size is "
            f"{hidden_size}; reshape it to {hidden_size} columns first (for example "
            f"ACETransformer(n_components={hidden_size})) or use an adapter table."
        )


def _with_padding_row(table: torch.Tensor) -> torch.Tensor:
    return torch.cat([table.new_zeros(1, table.shape[1]), table])


class ItemTable(nn.Module):
    """Base of all item tables: ``forward()`` returns the weight, padding row included.

    Subclasses set ``n_items`` and ``hidden_size`` and return an ``(n_items + 1,
    hidden_size)`` tensor whose row 0 is the padding item.

    Examples
    --------
    >>> import torch
    >>> from recmodels import ItemTable
    >>> class OneHot(ItemTable):
    ...     def __init__(self, n_items):
    ...         super().__init__()
    ...         self.n_items = self.hidden_size = n_items
    ...     def forward(self):
    ...         return torch.cat([torch.zeros(1, self.n_items), torch.eye(self.n_items)])
    >>> OneHot(3)().shape
    torch.Size([4, 3])
    """

    n_items: int
    hidden_size: int

    def forward(self) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


class TrainableTable(ItemTable):
    """A trainable table, random (ID-only baseline) or initialised from a matrix.

    Parameters
    ----------
    n_items : int
        Number of items.
    hidden_size : int
        Width of the table.
    init : array-like of shape (n_items, hidden_size), optional
        Initial rows (ACE, PCA init, Rec-PCA). None draws N(0, init_std^2).
    init_std : float, default=0.02
        Standard deviation of the random initialisation.
    frozen : bool, default=False
        Keep the table fixed.

    Examples
    --------
    >>> import numpy as np
    >>> table = TrainableTable(3, 2, init=np.ones((3, 2)))
    >>> table().shape
    torch.Size([4, 2])
    """

    def __init__(self, n_items: int, hidden_size: int, *, init=None, init_std: float = 0.02,
                 frozen: bool = False) -> None:
        super().__init__()
        self.n_items, self.hidden_size = n_items, hidden_size
        if init is None:
            rows = torch.randn(n_items, hidden_size) * init_std
        else:
            rows = _as_tensor(init, "init")
            if rows.shape[0] != n_items:
                raise ValueError(f"init has {rows.shape[0]} rows for {n_items} items.")
            _check_width(rows, hidden_size, "init")
        self.weight = nn.Parameter(rows, requires_grad=not frozen)

    def forward(self) -> torch.Tensor:
        return _with_padding_row(self.weight)


class AlphaFuseTable(ItemTable):
    """Frozen semantic table plus a trainable ID residual on the null slots (AlphaFuse).

    Parameters
    ----------
    semantic : array-like of shape (n_items, hidden_size)
        ``AlphaFuseSplitter`` output.
    null_slots : array-like of int
        Columns that receive the trainable residual (``AlphaFuseSplitter.null_slots_``).
    init : {"zeros", "normal"}, default="zeros"
        Initialisation of the residual.

    Examples
    --------
    >>> import numpy as np
    >>> table = AlphaFuseTable(np.ones((3, 4)), null_slots=[2, 3])
    >>> table.residual.shape
    torch.Size([3, 2])
    """

    def __init__(self, semantic, null_slots: Sequence[int], *, init: str = "zeros") -> None:
        super().__init__()
        semantic = _as_tensor(semantic, "semantic")
        self.n_items, self.hidden_size = semantic.shape
        self.register_buffer("semantic", semantic)
        self.register_buffer("null_slots", torch.as_tensor(np.asarray(null_slots, np.int64)))
        residual = torch.zeros(self.n_items, self.null_slots.numel())
        if init == "normal":
            residual.normal_()
        self.residual = nn.Parameter(residual)

    def forward(self) -> torch.Tensor:
        table = self.semantic.index_add(1, self.null_slots, self.residual)
        return _with_padding_row(table)


class AdapterTable(ItemTable):
    """Frozen views through one shared trainable MLP, outputs summed.

    WhitenRec+ (full and group-whitened views, ReLU), AlphaRec (raw embeddings,
    LeakyReLU) and LLMEmb (PCA-1536, no activation) are all this table.

    Parameters
    ----------
    views : sequence of array-like of shape (n_items, width)
        Frozen matrices of equal width.
    hidden_size : int
        Output width.
    inner_size : int or None, default=None
        Width of the MLP's middle layer; None uses ``width // 2``.
    activation : {"relu", "leaky_relu", "linear"}, default="relu"
        Non-linearity between the two layers.

    Examples
    --------
    >>> import numpy as np
    >>> table = AdapterTable([np.ones((5, 8)), np.zeros((5, 8))], hidden_size=4)
    >>> table().shape
    torch.Size([6, 4])
    """

    def __init__(self, views: Sequence, hidden_size: int, *, inner_size: int | None = None,
                 activation: str = "relu") -> None:
        super().__init__()
        tensors = [_as_tensor(v, f"views[{i}]") for i, v in enumerate(views)]
        if not tensors or len({tuple(t.shape) for t in tensors}) != 1:
            raise ValueError("views must be one or more matrices of the same shape; got "
                             f"{[tuple(t.shape) for t in tensors]}.")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation={activation!r} must be one of {sorted(ACTIVATIONS)}.")
        self.n_items, width = tensors[0].shape
        self.hidden_size = hidden_size
        self.register_buffer("views", torch.stack(tensors))
        inner = inner_size or max(width // 2, 1)
        layers: list[nn.Module] = [nn.Linear(width, inner)]
        if ACTIVATIONS[activation] is not None:
            layers.append(ACTIVATIONS[activation]())
        layers.append(nn.Linear(inner, hidden_size))
        self.mlp = nn.Sequential(*layers)

    def forward(self) -> torch.Tensor:
        return _with_padding_row(self.mlp(self.views).sum(dim=0))

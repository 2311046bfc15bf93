"""Item tables: where a reshaped embedding matrix enters a backbone.

Every table returns the full ``(n_items + 1, hidden_size)`` weight, row 0 being the padding
item (always zero). Backbones use it both to embed inputs and to score all items.

Every table draws its initial values in ``reset_parameters()``, and its constructor does
nothing else with torch's global RNG, so ``torch.manual_seed(s); table.reset_parameters()``
gives exactly the table that ``torch.manual_seed(s); Table(...)`` built.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ._validation import check_counts

ACTIVATIONS = {"relu": nn.ReLU, "leaky_relu": nn.LeakyReLU, "linear": None}
ADAPTER_INITS = ("normal", "xavier", "torch")
RESIDUAL_INITS = ("normal", "zeros")


def rng_kept():
    """Context in which building modules leaves torch's global CPU RNG where it was.

    Constructors build their layers inside it (torch's own layer constructors draw default
    weights) and then draw the real initial values in ``reset_parameters()``: the RNG then
    advances by exactly what ``reset_parameters()`` draws.
    """
    return torch.random.fork_rng(devices=[])


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


def _check_option(value: str, options: Sequence[str], name: str) -> None:
    if value not in options:
        raise ValueError(f"{name}={value!r} must be one of {list(options)}.")


def _with_padding_row(table: torch.Tensor) -> torch.Tensor:
    return torch.cat([table.new_zeros(1, table.shape[1]), table])


class ItemTable(nn.Module):
    """Base of all item tables: ``forward()`` returns the weight, padding row included.

    Subclasses set ``n_items`` and ``hidden_size``, return an ``(n_items + 1,
    hidden_size)`` tensor whose row 0 is the padding item, and draw their initial values
    in :meth:`reset_parameters`.

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

    def reset_parameters(self) -> None:
        """Redraw the initial values from torch's global RNG, as the constructor did.

        The base class resets every submodule that has a ``reset_parameters`` (torch's
        defaults); subclasses with their own initialisation override it.
        """
        for module in self.modules():
            if module is not self and hasattr(module, "reset_parameters"):
                module.reset_parameters()


class TrainableTable(ItemTable):
    """A trainable table, random (ID-only baseline) or initialised from a matrix.

    Parameters
    ----------
    n_items : int
        Number of items.
    hidden_size : int
        Width of the table.
    init : array-like of shape (n_items, hidden_size), optional
        Initial rows (ACE, PCA init, Rec-PCA). None draws N(0, init_std^2), the
        initialisation of RecBole's SASRec and BERT4Rec.
    init_std : float, default=0.02
        Standard deviation of the random initialisation.
    frozen : bool, default=False
        Keep the table fixed.

    Notes
    -----
    The table keeps a private copy of ``init`` (a buffer outside the ``state_dict``), so
    :meth:`reset_parameters` returns to it after training.

    Examples
    --------
    >>> import numpy as np
    >>> import torch
    >>> table = TrainableTable(3, 2, init=np.ones((3, 2)))
    >>> table().shape
    torch.Size([4, 2])
    >>> with torch.no_grad():
    ...     _ = table.weight.mul_(5.0)
    >>> table.reset_parameters()
    >>> float(table.weight.detach().max())
    1.0
    """

    def __init__(self, n_items: int, hidden_size: int, *, init=None, init_std: float = 0.02,
                 frozen: bool = False) -> None:
        super().__init__()
        check_counts(n_items=n_items, hidden_size=hidden_size)
        if not init_std >= 0:
            raise ValueError(f"init_std={init_std!r} must be a standard deviation of at least 0.")
        self.n_items, self.hidden_size = n_items, hidden_size
        self.init_std, self.frozen = init_std, frozen
        rows = None
        if init is not None:
            rows = _as_tensor(init, "init")
            if rows.shape[0] != n_items:
                raise ValueError(f"init has {rows.shape[0]} rows for {n_items} items.")
            _check_width(rows, hidden_size, "init")
        self.register_buffer("_initial", rows, persistent=False)
        self.weight = nn.Parameter(torch.empty(n_items, hidden_size), requires_grad=not frozen)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Back to ``init``, or a fresh N(0, init_std^2) draw for a random table."""
        with torch.no_grad():
            if self._initial is None:
                self.weight.normal_(0.0, self.init_std)
            else:
                self.weight.copy_(self._initial)

    @property
    def initial_rows(self) -> torch.Tensor | None:
        """The ``init`` matrix the table starts from (one row per item), or None if random."""
        return self._initial

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
    init : {"normal", "zeros"}, default="normal"
        Initialisation of the residual: N(0, 1), as the paper's runs (``init_type:
        normal``), or zeros, so that training starts from the semantic table itself.
    zero_rows : array-like of int, optional
        Rows (0-based item positions) whose residual starts at zero whatever ``init`` is:
        items nothing will be learned about, such as the cold-start protocol's new items,
        whose row is then their semantic row. The other rows are drawn exactly as without
        it.

    Examples
    --------
    >>> import numpy as np
    >>> import torch
    >>> table = AlphaFuseTable(np.ones((3, 4)), null_slots=[2, 3], init="zeros")
    >>> table.residual.shape, bool(torch.equal(table()[1:], torch.ones(3, 4)))
    (torch.Size([3, 2]), True)
    """

    def __init__(self, semantic, null_slots: Sequence[int], *, init: str = "normal",
                 zero_rows: Sequence[int] | None = None) -> None:
        super().__init__()
        _check_option(init, RESIDUAL_INITS, "init")
        semantic = _as_tensor(semantic, "semantic")
        self.n_items, self.hidden_size = semantic.shape
        self.init = init
        self.register_buffer("semantic", semantic)
        self.register_buffer("null_slots", torch.as_tensor(np.asarray(null_slots, np.int64)))
        zero = None
        if zero_rows is not None:
            zero = torch.as_tensor(np.asarray(zero_rows, dtype=np.int64).ravel())
            if zero.numel() and not 0 <= int(zero.min()) <= int(zero.max()) < self.n_items:
                raise ValueError(f"zero_rows must be row positions in 0..{self.n_items - 1}; "
                                 f"got values from {int(zero.min())} to {int(zero.max())}.")
        # Not in the state_dict, so tables built without it keep their keys.
        self.register_buffer("zero_rows", zero, persistent=False)
        self.residual = nn.Parameter(torch.empty(self.n_items, self.null_slots.numel()))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """A fresh residual; the semantic table is a buffer and stays as it is."""
        with torch.no_grad():
            if self.init == "normal":
                self.residual.normal_()
            else:
                self.residual.zero_()
            if self.zero_rows is not None:
                self.residual[self.zero_rows] = 0.0

    def forward(self) -> torch.Tensor:
        table = self.semantic.index_add(1, self.null_slots, self.residual)
        return _with_padding_row(table)


class AdapterTable(ItemTable):
    """Frozen views through one shared trainable MLP, outputs summed.

    WhitenRec+ (full and group-whitened views, ReLU), whitening (one view), AlphaRec (raw
    embeddings, LeakyReLU) and LLMEmb (PCA-1536, no activation) are all this table.

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
    init : {"normal", "xavier", "torch"}, default="normal"
        Initial MLP weights. ``"normal"``: N(0, init_std^2) weights and zero biases, the
        initialisation the reference code's SASRec and BERT4Rec apply to their adapters.
        ``"xavier"``: Xavier-normal weights and torch's default biases, what its GRU4Rec
        variants of whitening, WhitenRec+ and AlphaRec apply. ``"torch"``: torch's
        default ``nn.Linear`` initialisation, what its GRU4Rec LLMEmb variant leaves.
    init_std : float, default=0.02
        Standard deviation of the ``"normal"`` weights.

    Examples
    --------
    >>> import numpy as np
    >>> table = AdapterTable([np.ones((5, 8)), np.zeros((5, 8))], hidden_size=4)
    >>> table().shape
    torch.Size([6, 4])
    >>> float(table.mlp[0].bias.detach().abs().max())
    0.0
    """

    def __init__(self, views: Sequence, hidden_size: int, *, inner_size: int | None = None,
                 activation: str = "relu", init: str = "normal",
                 init_std: float = 0.02) -> None:
        super().__init__()
        tensors = [_as_tensor(v, f"views[{i}]") for i, v in enumerate(views)]
        if not tensors or len({tuple(t.shape) for t in tensors}) != 1:
            raise ValueError("views must be one or more matrices of the same shape; got "
                             f"{[tuple(t.shape) for t in tensors]}.")
        _check_option(activation, list(ACTIVATIONS), "activation")
        _check_option(init, ADAPTER_INITS, "init")
        check_counts(hidden_size=hidden_size,
                     **({} if inner_size is None else {"inner_size": inner_size}))
        self.n_items, width = tensors[0].shape
        self.hidden_size = hidden_size
        self.init, self.init_std = init, init_std
        self.register_buffer("views", torch.stack(tensors))
        inner = inner_size or max(width // 2, 1)
        with rng_kept():
            layers: list[nn.Module] = [nn.Linear(width, inner)]
            if ACTIVATIONS[activation] is not None:
                layers.append(ACTIVATIONS[activation]())
            layers.append(nn.Linear(inner, hidden_size))
        self.mlp = nn.Sequential(*layers)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Fresh MLP weights; the frozen views stay as they are."""
        for layer in self.mlp:
            if not isinstance(layer, nn.Linear):
                continue
            if self.init == "normal":
                nn.init.normal_(layer.weight, std=self.init_std)
                nn.init.zeros_(layer.bias)
            else:
                layer.reset_parameters()
                if self.init == "xavier":
                    nn.init.xavier_normal_(layer.weight)

    def forward(self) -> torch.Tensor:
        if len(self.mlp) == 2:  # no activation: one (width, hidden) map, the same function
            return _with_padding_row(self._linear_map())
        return _with_padding_row(self._summed_mlp())

    def _summed_mlp(self) -> torch.Tensor:
        """``sum_v (f(V_v W1^T + b1) W2^T + b2)`` as ``(sum_v f(V_v W1^T + b1)) W2^T + G b2``:
        the second layer runs once instead of once per view (equal up to float rounding,
        gradients too). With WhitenRec+'s two views, 384 -> 192 -> 128, that saves 1.8 of the
        10.7 GFLOP a Beauty step spends in the adapter, forward and backward; one view runs
        the plain two layers."""
        first, activation, second = self.mlp
        inner = activation(first(self.views))
        if len(self.views) == 1:
            return second(inner[0])
        return F.linear(inner.sum(dim=0), second.weight, second.bias * len(self.views))

    def _linear_map(self) -> torch.Tensor:
        """``sum_v (V_v W1^T + b1) W2^T + b2`` as ``(sum_v V_v) (W1^T W2^T) + G (b1 W2^T +
        b2)``: equal up to float rounding, and so are its gradients (autograd goes through
        the product). Per item, forward and backward, ``2 width hidden`` multiply-adds in
        place of ``2 width inner + 3 inner hidden`` (LLMEmb's 384 -> 192 -> 128: 2.25x
        fewer)."""
        first, second = self.mlp
        weight = first.weight.T @ second.weight.T
        bias = first.bias @ second.weight.T + second.bias
        summed = self.views[0] if len(self.views) == 1 else self.views.sum(dim=0)
        return torch.addmm(bias * len(self.views), summed, weight)

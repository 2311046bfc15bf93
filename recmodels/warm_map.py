"""The cold-start protocol's warm-to-trained map: new items' rows into a fine-tuned table.

A table initialised from a reshaped matrix (ACE, PCA init, Rec-PCA) moves while it is
fine-tuned; the rows of items that were kept out of training still sit in the initial
space. A ridge regression fitted on the warm items (initial row -> trained row) carries
them across. Also importable from :mod:`recmodels.cold_start`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .item_table import TrainableTable

__all__ = ["DEFAULT_MAP_REG", "WarmMap", "fit_warm_map", "map_new_rows"]

DEFAULT_MAP_REG = 1e-3


@dataclass(frozen=True)
class WarmMap:
    """Affine ridge map from initial item rows to trained ones, fitted on warm items.

    Attributes
    ----------
    coef : ndarray of shape (width_in, width_out)
    intercept : ndarray of shape (width_out,)
    alpha : float
        The ridge penalty used: ``reg`` times the mean eigenvalue of the centred inputs'
        scatter matrix (``trace(Xc^T Xc) / width_in``), so ``reg`` is scale-free.

    Examples
    --------
    >>> import numpy as np
    >>> from recmodels.cold_start import fit_warm_map
    >>> rng = np.random.default_rng(0)
    >>> initial = rng.standard_normal((100, 4))
    >>> trained = initial @ rng.standard_normal((4, 4)) + 0.5
    >>> warm_map = fit_warm_map(initial, trained, reg=0.0)
    >>> bool(np.allclose(warm_map(initial), trained))
    True
    """

    coef: np.ndarray
    intercept: np.ndarray
    alpha: float

    def __call__(self, rows) -> np.ndarray:
        return np.asarray(rows, dtype=np.float64) @ self.coef + self.intercept


def fit_warm_map(initial, trained, reg: float = DEFAULT_MAP_REG) -> WarmMap:
    """Ridge regression ``trained ~ initial @ coef + intercept`` (intercept not penalised).

    Parameters
    ----------
    initial : array-like of shape (n_warm, width_in)
        Rows of the warm items before training (the reshaper's output).
    trained : array-like of shape (n_warm, width_out)
        The same items' rows after training.
    reg : float, default=1e-3
        Penalty relative to the mean eigenvalue of ``Xc^T Xc`` (see :class:`WarmMap`).
        With ``reg`` small against the spread of those eigenvalues, the map reproduces an
        affine relation almost exactly; it only has to stabilise near-null directions.

    Returns
    -------
    WarmMap

    Examples
    --------
    >>> import numpy as np
    >>> from recmodels.cold_start import fit_warm_map
    >>> rng = np.random.default_rng(0)
    >>> initial = rng.standard_normal((200, 8))
    >>> trained = 3 * initial - 1
    >>> error = fit_warm_map(initial, trained)(initial) - trained   # default reg=1e-3
    >>> bool(np.abs(error).max() < 0.01 * np.abs(trained).max())
    True
    """
    X = np.asarray(initial, dtype=np.float64)
    Y = np.asarray(trained, dtype=np.float64)
    if X.ndim != 2 or Y.ndim != 2 or X.shape[0] != Y.shape[0] or X.shape[0] < 2:
        raise ValueError(f"initial and trained must be matrices with the same number (>= 2) "
                         f"of rows, one per warm item; got shapes {X.shape} and {Y.shape}.")
    if not reg >= 0:
        raise ValueError(f"reg={reg} must be >= 0; the default is {DEFAULT_MAP_REG}.")
    x_mean, y_mean = X.mean(axis=0), Y.mean(axis=0)
    Xc = X - x_mean
    gram = Xc.T @ Xc
    alpha = reg * float(np.trace(gram)) / X.shape[1]
    coef = np.linalg.lstsq(gram + alpha * np.eye(X.shape[1]), Xc.T @ (Y - y_mean), rcond=None)[0]
    return WarmMap(coef, y_mean - x_mean @ coef, alpha)


def map_new_rows(table: TrainableTable, new_items, reg: float = DEFAULT_MAP_REG) -> WarmMap:
    """Replace the new items' rows of a fine-tuned table by the warm-fitted map of their
    initial rows, in place.

    A table initialised from a matrix (ACE, PCA init, Rec-PCA) and then fine-tuned has
    moved: its warm rows are no longer in the space of the reshaper's ``transform``, the
    new rows (never trained) still are. :func:`fit_warm_map` learns initial -> trained on the
    warm items and carries the new rows across.

    Parameters
    ----------
    table : TrainableTable
        Built with ``init``; trained.
    new_items : array-like of int
        Model item indices of the new items.
    reg : float, default=1e-3

    Returns
    -------
    WarmMap
        The fitted map.

    Examples
    --------
    >>> import numpy as np
    >>> import torch
    >>> from recmodels import TrainableTable
    >>> from recmodels.cold_start import map_new_rows
    >>> table = TrainableTable(30, 3, init=np.random.default_rng(0).standard_normal((30, 3)))
    >>> with torch.no_grad():
    ...     table.weight[:-1] = 2 * table.weight[:-1] + 1   # "training" moved the warm rows
    >>> _ = map_new_rows(table, [30], reg=0.0)
    >>> torch.allclose(table.weight[-1], 2 * table.initial_rows[-1] + 1, atol=1e-5)
    True
    """
    initial = table.initial_rows
    if initial is None:
        raise ValueError("the table has no initial rows (it was built without init): there "
                         "is no initial space to map from. Only tables built from a matrix "
                         "are mapped; a random table's new rows stay as drawn.")
    new_rows = np.asarray(new_items, dtype=np.int64) - 1
    warm = np.ones(table.n_items, dtype=bool)
    warm[new_rows] = False
    before = initial.detach().cpu().numpy()
    after = table.weight.detach().float().cpu().numpy()
    warm_map = fit_warm_map(before[warm], after[warm], reg)
    with torch.no_grad():
        rows = torch.as_tensor(new_rows, device=table.weight.device)
        table.weight[rows] = torch.as_tensor(warm_map(before[new_rows]), device=rows.device,
                                             dtype=table.weight.dtype)
    return warm_map

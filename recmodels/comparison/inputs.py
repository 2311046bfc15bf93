"""Checks of ``ace-bench``'s input files, with errors that name the file, problem and fix."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["InputError", "load_embeddings"]

NPY_MAGIC = b"\x93NUMPY"
ZIP_MAGIC = b"PK\x03\x04"


class InputError(ValueError):
    """A bad argument or input file, found before any training starts.

    The message reads ``"<file or argument>: <problem and fix>"``; ``ace-bench`` prints it
    as one line, ``ace-bench: error: <message>``, and exits with status 2.

    Examples
    --------
    >>> from recmodels.comparison.inputs import InputError
    >>> issubclass(InputError, ValueError)
    True
    >>> str(InputError("--seeds a: not an integer; write e.g. --seeds 0,1,2"))
    '--seeds a: not an integer; write e.g. --seeds 0,1,2'
    """


def load_embeddings(path: str | Path, n_items: int | None = None, *,
                    catalogue: str = "the item catalogue") -> np.ndarray:
    """Read an item embedding matrix from a ``.npy`` file and check it.

    Never unpickles: the file is read with ``allow_pickle=False``, so a file from an untrusted
    source can not run code.

    Parameters
    ----------
    path : str or Path
        A ``.npy`` file written by ``np.save``: a 2-D floating-point array, one row per item.
    n_items : int, optional
        The number of rows the matrix must have (one per item of ``catalogue``).
    catalogue : str, default="the item catalogue"
        What the rows correspond to, for the error message (e.g. the ``items.csv.gz`` path).

    Returns
    -------
    ndarray of shape (n_items, n_features), float32
        float16 and float64 files are converted to float32.

    Raises
    ------
    InputError
        Naming ``path``, when the file is missing, is not a ``.npy`` file, holds an object
        (pickled) array, an integer, boolean or other non-floating array, is not 2-D, has the
        wrong number of rows or holds NaN or inf.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import numpy as np
    >>> from recmodels.comparison.inputs import load_embeddings
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> np.save(folder / "items.npy", np.ones((3, 4), dtype=np.float16))
    >>> E = load_embeddings(folder / "items.npy", 3)
    >>> E.shape, E.dtype
    ((3, 4), dtype('float32'))
    >>> np.save(folder / "ids.npy", np.arange(3))
    >>> load_embeddings(folder / "ids.npy", 3)
    Traceback (most recent call last):
    ...
    recmodels.comparison.inputs.InputError: .../ids.npy: holds a 1-D array of dtype int64, ...
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file; pass a .npy matrix saved with np.save, one "
                         f"row per item of {catalogue}.")
    save_hint = "save the matrix with np.save(path, matrix.astype(np.float32))"
    with open(path, "rb") as stream:
        magic = stream.read(len(NPY_MAGIC))
    if magic.startswith(ZIP_MAGIC):
        raise InputError(f"{path}: is an .npz archive, not a .npy file; take the matrix out "
                         f"of it and {save_hint}.")
    if magic != NPY_MAGIC:
        raise InputError(f"{path}: is not a .npy file (it lacks NumPy's header); {save_hint}.")
    try:
        matrix = np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "Object arrays" in str(exc):
            raise InputError(f"{path}: holds an object array, which would have to be unpickled "
                             f"(that is never done here); {save_hint}.") from exc
        raise InputError(f"{path}: could not be read ({exc}); the file may be truncated, "
                         f"{save_hint} again.") from exc
    except (OSError, EOFError) as exc:
        raise InputError(f"{path}: could not be read ({exc}); {save_hint} again.") from exc
    if matrix.ndim != 2 or not np.issubdtype(matrix.dtype, np.floating):
        raise InputError(f"{path}: holds a {matrix.ndim}-D array of dtype {matrix.dtype}, not a "
                         "matrix of floats; it needs shape (n_items, n_features) and a float "
                         f"dtype (float16, float32 or float64), one row per item of {catalogue}.")
    if n_items is not None and matrix.shape[0] != n_items:
        raise InputError(f"{path}: has shape {matrix.shape}, but {catalogue} has {n_items} "
                         "items; it needs one row per item, in the same order.")
    if matrix.shape[0] == 0 or matrix.shape[1] == 0:
        raise InputError(f"{path}: has shape {matrix.shape}; an embedding matrix needs at least "
                         "one row and one column.")
    matrix = np.ascontiguousarray(matrix, dtype=np.float32)
    bad_rows = np.flatnonzero(~np.isfinite(matrix).all(axis=1))
    if bad_rows.size:
        raise InputError(f"{path}: contains NaN or inf in {bad_rows.size} row(s), first at row "
                         f"{bad_rows[0]}; re-encode those items.")
    return matrix

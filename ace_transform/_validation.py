"""Input checks shared by the estimators, with error messages that name the fix."""

from __future__ import annotations

import numpy as np

from ._compat import _is_numpy_namespace, get_namespace_and_device, validate_data

FLOAT_DTYPES = (np.float64, np.float32)


def check_embeddings(estimator, X, *, reset: bool):
    """Validate an embedding matrix: 2-D, non-empty, finite, float32 or float64.

    float16 and integer input are promoted to float32 and float64 respectively; float32 stays
    float32. The finiteness test costs one reduction (a sum in ``X``'s dtype), not a boolean copy
    of ``X``, unless something is wrong.

    A dask array is checked without being computed (see ``_dask.check_dask_embeddings``);
    its finiteness is checked by the pass that fits or transforms it. Under
    ``sklearn.set_config(array_api_dispatch=True)`` an array API array (a torch tensor, say)
    stays in its namespace and on its device.
    """
    from ._dask import check_dask_embeddings, is_dask_array

    try:
        if is_dask_array(X):
            return check_dask_embeddings(estimator, X, reset=reset)
        xp, is_array_api, _ = get_namespace_and_device(X)
        if is_array_api and not _is_numpy_namespace(xp):
            half = X.dtype == getattr(xp, "float16", None)
            dtype = xp.float32 if half else (xp.float64, xp.float32)
        else:
            # validate_data converts any dtype outside FLOAT_DTYPES to the first entry,
            # float64; float16 (a common storage format for embeddings) is asked for as
            # float32 instead.
            dtype = np.float32 if _is_float16(X) else FLOAT_DTYPES
        X = validate_data(estimator, X, reset=reset, dtype=dtype, ensure_all_finite=False)
    except ValueError as exc:
        message = str(exc)
        if "features, but" in message and "is expecting" in message:
            raise ValueError(
                f"{message} Transform rows that come from the same encoder, with the same "
                "width, as the matrix the estimator was fitted on."
            ) from exc
        raise
    assert_all_finite_rows(X, "X")
    return X


def _is_float16(X) -> bool:
    """Whether ``X`` (an array, or a DataFrame with only float16 columns) is float16."""
    dtypes = getattr(X, "dtypes", None)  # pandas
    if dtypes is not None and not isinstance(dtypes, np.dtype):
        return len(dtypes) > 0 and all(d == np.float16 for d in dtypes)
    return getattr(X, "dtype", None) == np.float16


def assert_all_finite_rows(X, name: str) -> None:
    """Raise a ValueError naming the first row with NaN or inf, if there is one."""
    raise_if_not_finite_rows(X, name)


def raise_if_not_finite_rows(X, name: str, *, row_offset: int | None = 0, within: str = ""):
    """:func:`assert_all_finite_rows` for a block of rows starting at ``row_offset``.

    ``X`` may be a NumPy array or an array API array (checked on its own device).
    ``row_offset=None`` means the block's position is unknown; ``within`` describes the
    block in the message (the count is then of the block's rows only).
    """
    xp, _, _ = get_namespace_and_device(X)
    if not _is_numpy_namespace(xp):
        _raise_if_not_finite_rows_xp(X, xp, name, row_offset, within)
        return
    # Summing in X's own dtype halves the cost of a float64 sum on float32 input; an
    # overflowing sum falls through to the exact per-row test below.
    if np.isfinite(X.sum()):
        return
    bad_rows = np.flatnonzero(~np.isfinite(X).all(axis=1))
    if bad_rows.size == 0:  # the sum overflowed, the entries are finite
        return
    kind = "NaN" if np.isnan(X[bad_rows[0]]).any() else "inf"
    first = None if row_offset is None else row_offset + int(bad_rows[0])
    raise ValueError(non_finite_message(name, kind, int(bad_rows.size), first, within))


def _raise_if_not_finite_rows_xp(X, xp, name, row_offset, within):
    if bool(xp.all(xp.isfinite(xp.sum(X)))):
        return
    bad_rows = xp.nonzero(xp.logical_not(xp.all(xp.isfinite(X), axis=1)))[0]
    if bad_rows.shape[0] == 0:
        return
    first_row = int(bad_rows[0])
    kind = "NaN" if bool(xp.any(xp.isnan(X[first_row, ...]))) else "inf"
    first = None if row_offset is None else row_offset + first_row
    raise ValueError(non_finite_message(name, kind, int(bad_rows.shape[0]), first, within))


def non_finite_message(
    name: str, kind: str, n_bad_rows: int, first_row: int | None, within: str = ""
) -> str:
    """The error for non-finite input; ``first_row`` None when it is not known."""
    where = "" if first_row is None else f", first at row {first_row}"
    return (
        f"Input {name} contains {kind} (NaN or inf) in {n_bad_rows} row(s){within}{where}. "
        "Re-encode those items or drop their rows before fitting; an embedding matrix "
        "must be finite."
    )


def check_n_components(n_components: int, n_samples: int, n_features: int) -> None:
    """Raise when more components are asked for than the data can have."""
    limit = min(n_samples, n_features)
    if n_components > limit:
        raise ValueError(
            f"n_components={n_components} must be <= min(n_samples, n_features)={limit} "
            f"(n_samples={n_samples}, n_features={n_features}); lower n_components."
        )

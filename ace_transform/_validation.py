"""Input checks shared by the estimators, with error messages that name the fix."""

from __future__ import annotations

import numpy as np

from ._compat import validate_data

FLOAT_DTYPES = (np.float64, np.float32)


def check_embeddings(estimator, X, *, reset: bool):
    """Validate an embedding matrix: 2-D, non-empty, finite, float32 or float64.

    float16 and integer input are promoted to float32 and float64 respectively; float32 stays
    float32. The finiteness test costs one reduction (a sum in ``X``'s dtype), not a boolean copy
    of ``X``, unless something is wrong.
    """
    # validate_data converts any dtype outside FLOAT_DTYPES to the first entry, float64;
    # float16 (a common storage format for embeddings) is asked for as float32 instead.
    dtype = np.float32 if _is_float16(X) else FLOAT_DTYPES
    try:
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


def assert_all_finite_rows(X: np.ndarray, name: str) -> None:
    """Raise a ValueError naming the first row with NaN or inf, if there is one."""
    # Summing in X's own dtype halves the cost of a float64 sum on float32 input; an
    # overflowing sum falls through to the exact per-row test below.
    if np.isfinite(X.sum()):
        return
    bad_rows = np.flatnonzero(~np.isfinite(X).all(axis=1))
    if bad_rows.size == 0:  # the sum overflowed, the entries are finite
        return
    kind = "NaN" if np.isnan(X[bad_rows[0]]).any() else "inf"
    raise ValueError(
        f"Input {name} contains {kind} (NaN or inf) in {bad_rows.size} row(s), first at row "
        f"{bad_rows[0]}. Re-encode those items or drop their rows before fitting; an "
        "embedding matrix must be finite."
    )


def check_n_components(n_components: int, n_samples: int, n_features: int) -> None:
    """Raise when more components are asked for than the data can have."""
    limit = min(n_samples, n_features)
    if n_components > limit:
        raise ValueError(
            f"n_components={n_components} must be <= min(n_samples, n_features)={limit} "
            f"(n_samples={n_samples}, n_features={n_features}); lower n_components."
        )

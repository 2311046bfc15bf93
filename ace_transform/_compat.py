"""The one place that imports scikit-learn's private helpers.

scikit-learn moves its private utilities between releases; keeping every such import here
means a new release breaks one file, not every estimator.
"""

from sklearn.base import _fit_context
from sklearn.utils._array_api import (
    _convert_to_numpy,
    _is_numpy_namespace,
    _max_precision_float_dtype,
    get_namespace_and_device,
)
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_feature_names, _check_n_features, validate_data

try:  # scikit-learn >= 1.8
    from sklearn.utils._array_api import check_same_namespace, move_to
except ImportError:  # pragma: no cover - older scikit-learn

    def move_to(*arrays, xp, device):
        """Move arrays to namespace ``xp`` on ``device`` (through NumPy)."""
        moved = []
        for array in arrays:
            if array is None:
                moved.append(None)
                continue
            array_xp, _, array_device = get_namespace_and_device(array)
            if array_xp == xp and array_device == device:
                moved.append(array)
            elif _is_numpy_namespace(xp):
                moved.append(_convert_to_numpy(array, array_xp))
            else:
                moved.append(xp.asarray(_convert_to_numpy(array, array_xp), device=device))
        return moved[0] if len(moved) == 1 else tuple(moved)

    def check_same_namespace(X, estimator, *, attribute, method):
        """Raise when ``X`` and a fitted attribute live in different namespaces or devices."""
        fitted_xp, _, fitted_device = get_namespace_and_device(getattr(estimator, attribute))
        X_xp, _, X_device = get_namespace_and_device(X)
        if _is_numpy_namespace(fitted_xp) and _is_numpy_namespace(X_xp):
            return
        if fitted_xp != X_xp or fitted_device != X_device:
            raise ValueError(
                f"Inputs passed to {type(estimator).__name__}.{method}() must use the same "
                "namespace and the same device as those passed to fit()."
            )


__all__ = [
    "Interval",
    "StrOptions",
    "_check_feature_names",
    "_check_n_features",
    "_fit_context",
    "_is_numpy_namespace",
    "_max_precision_float_dtype",
    "check_same_namespace",
    "get_namespace_and_device",
    "move_to",
    "validate_data",
]

"""scikit-learn's estimator checks over every reshaper, with small test-time parameters."""

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import Normalizer
from sklearn.utils.estimator_checks import (
    check_global_output_transform_pandas,
    check_param_validation,
    check_set_output_transform,
    check_set_output_transform_pandas,
    check_transformer_get_feature_names_out,
    check_transformer_get_feature_names_out_pandas,
    parametrize_with_checks,
)

from ace_transform import (
    ACETransformer,
    AlphaFuseSplitter,
    PCAInit,
    RecPCA,
    WhiteningTransformer,
)

# User defaults (n_components=128) suit real embeddings; the checks feed 2 to 10 features.
TEST_ESTIMATORS = [
    ACETransformer(n_components=2),
    ACETransformer(n_components=2, lam=0.0, center=True),
    PCAInit(n_components=2, target_std=0.1),
    WhiteningTransformer(),
    WhiteningTransformer(method="zca", n_components=2),
    AlphaFuseSplitter(n_components=2, null_dim=1),
    RecPCA(n_components=2),
]
EXTRA_CHECKS = [
    check_set_output_transform,
    check_set_output_transform_pandas,
    check_global_output_transform_pandas,
    check_transformer_get_feature_names_out,
    check_transformer_get_feature_names_out_pandas,
    check_param_validation,
]


@parametrize_with_checks(TEST_ESTIMATORS)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


# The pandas-output checks fit on a DataFrame and transform an array (and the reverse) on
# purpose; scikit-learn's own PCA warns there the same way.
@pytest.mark.filterwarnings("ignore:X (does not have valid|has) feature names:UserWarning")
@pytest.mark.parametrize("estimator", TEST_ESTIMATORS, ids=repr)
@pytest.mark.parametrize("check", EXTRA_CHECKS, ids=lambda c: c.__name__)
def test_output_and_parameter_checks(estimator, check):
    check(type(estimator).__name__, estimator)


@pytest.mark.parametrize("estimator", TEST_ESTIMATORS, ids=repr)
def test_float32_pickle_clone_pipeline(estimator):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 6)).astype(np.float32)
    pipe = make_pipeline(Normalizer(), clone(estimator))
    out = pipe.fit_transform(X)
    assert out.dtype == np.float32
    restored = pickle.loads(pickle.dumps(pipe))
    np.testing.assert_array_equal(restored.transform(X), pipe.transform(X))
    assert clone(estimator).get_params() == estimator.get_params()

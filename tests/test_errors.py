"""Bad input stops with a ValueError that names the problem and the fix."""

import numpy as np
import pytest
from sklearn.utils._param_validation import InvalidParameterError

from ace_transform import (
    ACETransformer,
    AlphaFuseSplitter,
    RecPCA,
    WhiteningTransformer,
    mean_pairwise_cosine,
)

X = np.random.default_rng(0).standard_normal((20, 6))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_rows_are_named(bad):
    Xbad = X.copy()
    Xbad[7, 2] = bad
    with pytest.raises(ValueError, match=r"NaN or inf.*first at row 7.*drop their rows"):
        ACETransformer(n_components=2).fit(Xbad)
    fitted = ACETransformer(n_components=2).fit(X)
    with pytest.raises(ValueError, match="first at row 7"):
        fitted.transform(Xbad)


def test_one_dimensional_and_empty_input():
    with pytest.raises(ValueError, match="Expected 2D array"):
        ACETransformer(n_components=2).fit(X[0])
    with pytest.raises(ValueError, match="0 sample"):
        ACETransformer(n_components=2).fit(np.empty((0, 6)))


def test_too_many_components():
    with pytest.raises(ValueError, match=r"n_components=7 must be <= min\(n_samples, n_features\)=6.*lower n_components"):
        ACETransformer(n_components=7).fit(X)


@pytest.mark.parametrize(
    "params, pattern",
    [
        ({"lam": -1.0}, r"'lam' parameter of ACETransformer must be a float in the range \[0(\.0)?, inf\)"),
        ({"gamma": 0.0}, r"'gamma' parameter of ACETransformer must be a float in the range \(0(\.0)?, inf\)"),
        ({"n_components": 0}, r"'n_components' parameter of ACETransformer"),
    ],
)
def test_parameter_errors(params, pattern):
    with pytest.raises(InvalidParameterError, match=pattern):
        ACETransformer(**params).fit(X)
    assert issubclass(InvalidParameterError, ValueError)


def test_feature_count_mismatch_names_the_fix():
    fitted = ACETransformer(n_components=2).fit(X)
    with pytest.raises(ValueError, match="X has 5 features, but ACETransformer is expecting 6.*same encoder"):
        fitted.transform(X[:, :5])


def test_groups_must_divide_features():
    with pytest.raises(ValueError, match=r"n_groups=4 does not divide n_features=6; choose one of \[1, 2, 3, 6\]"):
        WhiteningTransformer(n_groups=4).fit(X)
    with pytest.raises(ValueError, match="n_components=None when n_groups=2"):
        WhiteningTransformer(n_groups=2, n_components=2).fit(X)


def test_cooccurrence_item_outside_matrix():
    with pytest.raises(ValueError, match="item index 20, but the embedding matrix has 20 rows"):
        RecPCA(n_components=2).fit(X, sequences=[[0, 1], [3, 20]])
    with pytest.raises(ValueError, match="item index -1"):
        RecPCA(n_components=2).fit(X, sequences=[[0, -1]])


def test_alphafuse_null_dim_too_large():
    with pytest.raises(ValueError, match="null_dim=5 must be <= n_components=3"):
        AlphaFuseSplitter(n_components=3, null_dim=5).fit(X)


def test_zero_rows_in_cosine():
    Xz = X.copy()
    Xz[3] = 0
    with pytest.raises(ValueError, match="all-zero row.*row 3"):
        mean_pairwise_cosine(Xz)

"""Moment-based reshapers: partial_fit continues a fit, fit starts over; float16 -> float32."""

import numpy as np
import pandas as pd
import pytest

from ace_transform import ACETransformer, AlphaFuseSplitter, PCAInit, WhiteningTransformer
from ace_transform._base import _MomentReshaper

RESHAPERS = {
    "ace": lambda: ACETransformer(n_components=4, lam=5.0),
    "ace-centred": lambda: ACETransformer(n_components=4, lam=5.0, center=True),
    "whiten-pca": lambda: WhiteningTransformer(n_components=4, eps=0.0),
    "whiten-zca": lambda: WhiteningTransformer(method="zca", eps=0.0),
    "pca-init": lambda: PCAInit(n_components=4, target_std=0.1),
    "alphafuse": lambda: AlphaFuseSplitter(n_components=5, null_dim=2),
}


@pytest.fixture
def chunks():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 8)) @ rng.standard_normal((8, 8)) + 1.5
    return X[:120], X[120:210], X[210:]


def test_every_moment_reshaper_is_covered():
    # A new moment-based reshaper must be added to RESHAPERS.
    covered = {type(make()) for make in RESHAPERS.values()}
    assert covered == {ACETransformer, WhiteningTransformer, PCAInit, AlphaFuseSplitter}
    assert all(issubclass(cls, _MomentReshaper) for cls in covered)


def assert_same_fit(a, b, X):
    assert a.n_samples_seen_ == b.n_samples_seen_
    np.testing.assert_allclose(a.projection_, b.projection_, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(a.transform(X), b.transform(X), rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("name", sorted(RESHAPERS))
def test_partial_fit_after_fit_continues_from_the_fitted_state(name, chunks):
    A, B, C = chunks
    everything = np.vstack([A, B, C])
    reference = RESHAPERS[name]().fit(everything)

    continued = RESHAPERS[name]().fit(A).partial_fit(B).partial_fit(C)
    assert continued.n_samples_seen_ == len(everything)
    assert_same_fit(continued, reference, everything)

    # fit_transform keeps the statistics too.
    estimator = RESHAPERS[name]()
    estimator.fit_transform(np.vstack([A, B]))
    assert_same_fit(estimator.partial_fit(C), reference, everything)


@pytest.mark.parametrize("name", sorted(RESHAPERS))
def test_a_second_fit_starts_over(name, chunks):
    A, B, C = chunks
    refit = RESHAPERS[name]().partial_fit(A).partial_fit(B).fit(C)
    assert refit.n_samples_seen_ == len(C)
    assert_same_fit(refit, RESHAPERS[name]().fit(C), C)
    # ... and a partial_fit after that second fit continues from C only.
    assert_same_fit(refit.partial_fit(A), RESHAPERS[name]().fit(np.vstack([C, A])), C)


@pytest.mark.parametrize("name", sorted(RESHAPERS))
def test_partial_fit_after_fit_checks_the_width(name, chunks):
    A, B, _ = chunks
    estimator = RESHAPERS[name]().fit(A)
    with pytest.raises(ValueError, match="X has 7 features, but .* is expecting 8"):
        estimator.partial_fit(B[:, :7])


@pytest.mark.parametrize("name", sorted(RESHAPERS))
def test_float16_input_gives_float32_output(name, chunks):
    X = np.vstack(chunks)
    half = X.astype(np.float16)
    estimator = RESHAPERS[name]()
    Z = estimator.fit_transform(half)
    assert Z.dtype == np.float32
    assert estimator.fit(half).transform(half).dtype == np.float32
    assert estimator.transform(pd.DataFrame(half)).dtype == np.float32
    # float16 is read as float32, not as float64: the same fit as the float32 copy.
    np.testing.assert_allclose(Z, RESHAPERS[name]().fit_transform(half.astype(np.float32)),
                               rtol=1e-5, atol=1e-5)
    # float64 and integer input still give float64.
    assert estimator.fit_transform(X).dtype == np.float64
    assert estimator.fit_transform(np.rint(X * 10).astype(np.int64)).dtype == np.float64

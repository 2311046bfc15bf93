"""ACE against the reference formula of METHODS.md, its limits, cold start and partial_fit."""

import numpy as np
import pytest

from ace_transform import ACETransformer


def reference_ace(E, k, lam, gamma, center=False, orient=False):
    """The seed paper's formula, with a full thin SVD as its code does.

    ``orient=True`` applies ACETransformer's documented sign convention to the singular
    vectors (non-negative output column sums; the largest loading positive when centred),
    which fixes the global ``std`` that the raw formula leaves to LAPACK's signs.
    """
    E = E.astype(np.float64)
    if center:
        E = E - E.mean(axis=0)
    U, S, Vt = np.linalg.svd(E, full_matrices=False)
    U, Vt = U[:, :k], Vt[:k]
    if orient:
        if center:
            U = U * np.sign(Vt[np.arange(k), np.abs(Vt).argmax(axis=1)])
        else:
            U = U * np.sign(U.sum(axis=0))
    X = U * np.sqrt(S[:k] ** 2 / (S[:k] ** 2 + lam))
    return X * gamma / X.std()


def gram_relative_error(A, B):
    """Sign- and rotation-free comparison: relative error of A A^T against B B^T."""
    ga, gb = A @ A.T, B @ B.T
    return np.linalg.norm(ga - gb) / np.linalg.norm(gb)


@pytest.fixture
def anisotropic():
    rng = np.random.default_rng(0)
    E = rng.standard_normal((400, 32)) * np.geomspace(5, 0.05, 32) + 0.3
    return (E / np.linalg.norm(E, axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize("center", [False, True])
@pytest.mark.parametrize("lam", [0.0, 1.0, 50.0])
def test_matches_reference_on_beauty(beauty_embeddings, lam, center):
    E = beauty_embeddings
    ours = ACETransformer(n_components=128, lam=lam, gamma=0.1, center=center).fit_transform(E)
    ref = reference_ace(E, 128, lam, 0.1, center=center)
    rows = np.random.default_rng(0).choice(E.shape[0], 1500, replace=False)
    assert gram_relative_error(ours[rows].astype(np.float64), ref[rows]) < 1e-3
    assert ours.std() == pytest.approx(0.1, rel=1e-4)


@pytest.mark.parametrize("center", [False, True])
def test_equals_reference_entrywise_under_the_sign_convention(beauty_embeddings, center):
    # With the singular vectors oriented the same way, the scale is no longer ambiguous and
    # the two outputs agree entry by entry, far inside the 1e-3 of the XX^T comparison.
    E = beauty_embeddings
    ours = ACETransformer(n_components=128, lam=50.0, gamma=0.1, center=center).fit_transform(E)
    ref = reference_ace(E, 128, 50.0, 0.1, center=center, orient=True)
    rows = np.random.default_rng(0).choice(E.shape[0], 1500, replace=False)
    assert gram_relative_error(ours[rows].astype(np.float64), ref[rows]) < 1e-4
    np.testing.assert_allclose(ours, ref, atol=1e-4)


def test_lam_zero_whitens_top_directions(anisotropic):
    X = ACETransformer(n_components=8, lam=0.0, gamma=1.0).fit_transform(anisotropic)
    cross = X.T.astype(np.float64) @ X
    np.testing.assert_allclose(cross / cross[0, 0], np.eye(8), atol=1e-4)


def test_large_lam_gives_pca_score_shape(anisotropic):
    k = 8
    X = ACETransformer(n_components=k, lam=1e12, gamma=1.0).fit_transform(anisotropic)
    U, S, _ = np.linalg.svd(anisotropic.astype(np.float64), full_matrices=False)
    scores = U[:, :k] * S[:k]
    X = X.astype(np.float64)
    scaled = scores * (np.linalg.norm(X) / np.linalg.norm(scores))
    assert gram_relative_error(X, scaled) < 1e-4


def test_shrinkage_matches_formula(anisotropic):
    ace = ACETransformer(n_components=6, lam=3.0).fit(anisotropic)
    s = np.linalg.svd(anisotropic.astype(np.float64), compute_uv=False)[:6]
    np.testing.assert_allclose(ace.singular_values_, s, rtol=1e-5)
    np.testing.assert_allclose(ace.shrinkage_, np.sqrt(s**2 / (s**2 + 3.0)), rtol=1e-5)


@pytest.mark.parametrize("center", [False, True])
def test_new_rows_map_consistently(beauty_embeddings, center):
    E = beauty_embeddings
    seen = np.random.default_rng(1).permutation(E.shape[0])[: int(0.8 * E.shape[0])]
    ace = ACETransformer(lam=50.0, gamma=0.1, center=center)
    fitted = ace.fit_transform(E[seen])
    all_rows = ace.transform(E)
    np.testing.assert_allclose(all_rows[seen], fitted, atol=1e-6)
    unseen = np.setdiff1d(np.arange(E.shape[0]), seen)
    # Cold-start rows land on the same scale as the fitted ones.
    assert all_rows[unseen].std() == pytest.approx(0.1, rel=0.1)


@pytest.mark.parametrize("center", [False, True])
def test_partial_fit_equals_fit(anisotropic, center):
    full = ACETransformer(n_components=8, lam=2.0, center=center).fit(anisotropic)
    chunked = ACETransformer(n_components=8, lam=2.0, center=center)
    for chunk in np.array_split(anisotropic, 5):
        chunked.partial_fit(chunk)
    assert chunked.n_samples_seen_ == anisotropic.shape[0]
    np.testing.assert_allclose(chunked.projection_, full.projection_, rtol=1e-5, atol=1e-7)
    assert chunked.scale_ == pytest.approx(full.scale_, rel=1e-6)


def test_sign_convention_makes_column_sums_non_negative(anisotropic):
    X = ACETransformer(n_components=8, center=False).fit_transform(anisotropic)
    assert np.all(X.sum(axis=0) >= 0)


def test_float64_and_float32_agree(anisotropic):
    x32 = ACETransformer(n_components=8).fit_transform(anisotropic)
    x64 = ACETransformer(n_components=8).fit_transform(anisotropic.astype(np.float64))
    assert x32.dtype == np.float32 and x64.dtype == np.float64
    np.testing.assert_allclose(x32, x64, atol=1e-5)

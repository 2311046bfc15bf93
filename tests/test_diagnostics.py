"""Diagnostics against direct numpy computations."""

import numpy as np
import pytest

from ace_transform import (
    ACETransformer,
    anisotropy_report,
    effective_rank,
    mean_pairwise_cosine,
    neighbor_overlap,
    normalized_spectrum,
    top_direction_share,
)


@pytest.fixture
def cone():
    rng = np.random.default_rng(0)
    return rng.standard_normal((300, 10)) * np.geomspace(1, 0.05, 10) + 0.5


def test_spectrum_matches_numpy(cone):
    expected = np.sort(np.linalg.eigvalsh(np.cov(cone.T)))[::-1]
    np.testing.assert_allclose(normalized_spectrum(cone), expected / expected.sum(), atol=1e-12)
    assert top_direction_share(cone) == pytest.approx(expected[0] / expected.sum())
    p = expected / expected.sum()
    assert effective_rank(cone) == pytest.approx(np.exp(-(p * np.log(p)).sum()))


def test_mean_pairwise_cosine_matches_brute_force(cone):
    unit = cone / np.linalg.norm(cone, axis=1, keepdims=True)
    sims = unit @ unit.T
    brute = (sims.sum() - np.trace(sims)) / (300 * 299)
    assert mean_pairwise_cosine(cone) == pytest.approx(brute, rel=1e-10)


def test_neighbor_overlap_brute_force_and_sampling(cone):
    noisy = cone + np.random.default_rng(1).standard_normal(cone.shape) * 0.05
    unit_a = cone / np.linalg.norm(cone, axis=1, keepdims=True)
    unit_b = noisy / np.linalg.norm(noisy, axis=1, keepdims=True)

    def top(unit):
        sims = unit @ unit.T
        np.fill_diagonal(sims, -np.inf)
        return np.argsort(-sims, axis=1)[:, :5]

    ta, tb = top(unit_a), top(unit_b)
    brute = np.mean([len(set(a) & set(b)) / 5 for a, b in zip(ta, tb)])
    assert neighbor_overlap(cone, noisy, n_neighbors=5, max_queries=None) == pytest.approx(brute)
    sampled = neighbor_overlap(cone, noisy, n_neighbors=5, max_queries=100, random_state=0)
    assert abs(sampled - brute) < 0.1


def test_ace_reduces_anisotropy_on_beauty(beauty_embeddings):
    E = beauty_embeddings
    before = anisotropy_report(E)
    whitened = ACETransformer(lam=0.0, center=True).fit_transform(E)
    after = anisotropy_report(whitened)
    assert before["mean_pairwise_cosine"] > 0.1
    assert abs(after["mean_pairwise_cosine"]) < 0.01
    assert after["effective_rank"] > 0.95 * 128
    assert 0.05 < neighbor_overlap(E, whitened) < 1.0


def test_lam_moves_ace_between_whitening_and_pca_shape(beauty_embeddings):
    ranks = [
        effective_rank(ACETransformer(lam=lam).fit_transform(beauty_embeddings))
        for lam in (0.0, 50.0, 1e9)
    ]
    assert ranks[0] > ranks[1] > ranks[2]

"""Mathematical properties of whitening, PCA init, AlphaFuse and Rec-PCA."""

import numpy as np
import pytest
from scipy import sparse
from sklearn.decomposition import PCA

from ace_transform import (
    AlphaFuseSplitter,
    PCAInit,
    RecPCA,
    WhiteningTransformer,
    cooccurrence_graph,
)


@pytest.fixture
def correlated():
    rng = np.random.default_rng(0)
    return rng.standard_normal((800, 12)) @ rng.standard_normal((12, 12)) + 2.0


@pytest.mark.parametrize("method", ["pca", "zca"])
def test_full_whitening_gives_identity_covariance(correlated, method):
    Z = WhiteningTransformer(method=method, eps=0.0).fit_transform(correlated)
    np.testing.assert_allclose(np.cov(Z.T, ddof=0), np.eye(12), atol=1e-8)


def test_zca_is_symmetric_and_truncation_keeps_top_directions(correlated):
    zca = WhiteningTransformer(method="zca", eps=0.0).fit(correlated)
    np.testing.assert_allclose(zca.projection_, zca.projection_.T, atol=1e-10)
    Z = WhiteningTransformer(n_components=4, eps=0.0).fit_transform(correlated)
    assert Z.shape == (800, 4)
    np.testing.assert_allclose(np.cov(Z.T, ddof=0), np.eye(4), atol=1e-8)
    pca_scores = PCA(n_components=4).fit_transform(correlated)
    np.testing.assert_allclose(np.abs(Z), np.abs(pca_scores / pca_scores.std(axis=0)), atol=1e-6)


def test_group_whitening_whitens_each_group_only(correlated):
    Z = WhiteningTransformer(method="zca", n_groups=3, eps=0.0).fit_transform(correlated)
    cov = np.cov(Z.T, ddof=0)
    for g in range(3):
        block = slice(4 * g, 4 * g + 4)
        np.testing.assert_allclose(cov[block, block], np.eye(4), atol=1e-8)
    # Across groups the correlation of the input survives.
    assert np.abs(cov[:4, 4:]).max() > 0.05


def test_pca_init_equals_sklearn_pca_up_to_sign(correlated):
    ours = PCAInit(n_components=5).fit_transform(correlated)
    theirs = PCA(n_components=5).fit_transform(correlated)
    np.testing.assert_allclose(np.abs(ours), np.abs(theirs), atol=1e-8)


def test_alphafuse_standardises_and_marks_slots(correlated):
    splitter = AlphaFuseSplitter(n_components=8, null_dim=3)
    Z = splitter.fit_transform(correlated)
    np.testing.assert_allclose(np.cov(Z.T, ddof=1), np.eye(8), atol=1e-8)
    np.testing.assert_array_equal(splitter.null_slots_, [5, 6, 7])
    np.testing.assert_array_equal(splitter.semantic_slots_, np.arange(5))


def test_alphafuse_threshold_and_cover(correlated):
    splitter = AlphaFuseSplitter(n_components=8, null_thres=1e9).fit(correlated)
    assert splitter.null_dim_ == 8
    threshold = np.sort(splitter.explained_variance_)[2] + 1e-12
    splitter = AlphaFuseSplitter(n_components=8, null_thres=threshold, cover=True)
    Z = splitter.fit_transform(correlated)
    assert splitter.null_dim_ == 3
    np.testing.assert_array_equal(Z[:, 5:], 0.0)


def test_cooccurrence_graph_counts_window_pairs():
    A = cooccurrence_graph([[0, 1, 2, 3], [3, 0]], n_items=5, window=2)
    expected = np.zeros((5, 5))
    for a, b in [(0, 1), (0, 2), (1, 2), (1, 3), (2, 3), (3, 0)]:
        expected[a, b] += 1
        expected[b, a] += 1
    np.testing.assert_array_equal(A.toarray(), expected)


def test_recpca_without_graph_is_pca_and_graph_smooths(correlated):
    X = correlated / np.linalg.norm(correlated, axis=1, keepdims=True)
    plain = RecPCA(n_components=3).fit_transform(X)
    np.testing.assert_allclose(np.abs(plain), np.abs(PCA(3).fit_transform(X)), atol=1e-8)

    rng = np.random.default_rng(0)
    sequences = [rng.integers(0, 800, size=12) for _ in range(300)]
    graph = cooccurrence_graph(sequences, 800, window=3)
    rec = RecPCA(n_components=3, beta=0.5)
    smooth = rec.fit_transform(X, sequences=sequences)
    assert rec.n_edges_ == sparse.triu(graph, k=1).nnz

    def variation(Z):
        rows, cols = graph.nonzero()
        return (np.asarray(graph[rows, cols]).ravel() * ((Z[rows] - Z[cols]) ** 2).sum(1)).sum()

    # Same total variance budget per direction, lower total variation over the graph.
    assert variation(smooth / smooth.std(0)) < variation(plain / plain.std(0))
    # A precomputed co-occurrence matrix gives the same fit as the sequences.
    np.testing.assert_allclose(
        RecPCA(n_components=3, beta=0.5).fit_transform(X, sequences=graph), smooth
    )

"""Tuning lam and gamma: intrinsic and downstream scorers inside a real GridSearchCV."""

import numpy as np
import pandas as pd
import pytest
from recmodels_helpers import synthetic_log
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import Normalizer

from ace_transform import ACETransformer, normalized_spectrum
from ace_transform.model_selection import (
    CombinedScorer,
    IsotropyScorer,
    ScaledPreservationScorer,
    SemanticPreservationScorer,
    WholeCatalogueSplit,
    get_scorer,
    lam_path,
)
from recmodels import build_sequences
from recmodels.trainer import Trainer
from recmodels.tuning import DownstreamScorer

LAMS = [0.0, 100.0, 10000.0]


@pytest.fixture(scope="module")
def anisotropic():
    rng = np.random.default_rng(0)
    return (rng.standard_normal((600, 48)) * np.geomspace(1, 0.01, 48) + 0.05).astype(np.float32)


def _search(E, scoring, n_jobs=None, refit=True):
    return GridSearchCV(make_pipeline(Normalizer(), ACETransformer(8)),
                        {"acetransformer__lam": LAMS}, scoring=scoring, refit=refit,
                        cv=KFold(3, shuffle=True, random_state=0), n_jobs=n_jobs).fit(E)


def test_isotropy_prefers_whitening_on_held_out_items(anisotropic):
    search = _search(anisotropic, IsotropyScorer())
    assert search.best_params_ == {"acetransformer__lam": 0.0}
    scores = search.cv_results_["mean_test_score"]
    assert np.all(np.diff(scores) < 0) and 0 < scores[-1] < scores[0] <= 1


def test_semantic_preservation_prefers_large_lam(anisotropic):
    search = _search(anisotropic, SemanticPreservationScorer(n_neighbors=5))
    assert search.best_params_ == {"acetransformer__lam": 10000.0}


@pytest.mark.parametrize("weight, best", [(1.0, 0.0), (0.0, 10000.0)])
def test_combined_weight_moves_the_optimum(anisotropic, weight, best):
    search = _search(anisotropic, CombinedScorer(weight=weight, n_neighbors=5))
    assert search.best_params_ == {"acetransformer__lam": best}


def test_combined_lies_between_its_parts(anisotropic):
    ace = make_pipeline(Normalizer(), ACETransformer(8, lam=100.0)).fit(anisotropic)
    iso = IsotropyScorer()(ace, anisotropic)
    sem = SemanticPreservationScorer()(ace, anisotropic)
    both = CombinedScorer(weight=0.5)(ace, anisotropic)
    assert min(iso, sem) <= both <= max(iso, sem)
    assert both == pytest.approx(np.sqrt(iso * sem))


def test_scaled_preservation_discounts_large_logits(anisotropic):
    small = make_pipeline(Normalizer(), ACETransformer(8, lam=100.0, gamma=0.1)).fit(anisotropic)
    large = make_pipeline(Normalizer(), ACETransformer(8, lam=100.0, gamma=1.0)).fit(anisotropic)
    kept = SemanticPreservationScorer()(small, anisotropic)
    assert SemanticPreservationScorer()(large, anisotropic) == pytest.approx(kept)
    scaled = ScaledPreservationScorer()
    assert scaled(small, anisotropic) == pytest.approx(kept / (1 + 0.1**2 * 8), rel=1e-4)
    assert scaled(large, anisotropic) < scaled(small, anisotropic)


def test_multi_metric_search_in_parallel(anisotropic):
    search = _search(anisotropic, {"iso": get_scorer("isotropy"),
                                   "sem": get_scorer("semantic_preservation")},
                     n_jobs=2, refit="iso")
    assert search.best_params_ == {"acetransformer__lam": 0.0}
    assert np.argmax(search.cv_results_["mean_test_sem"]) == len(LAMS) - 1


def test_whole_catalogue_split_fits_on_every_row(anisotropic):
    search = GridSearchCV(ACETransformer(8), {"lam": [0.0]}, scoring=IsotropyScorer(),
                          cv=WholeCatalogueSplit()).fit(anisotropic)
    # Fitted and scored on the same rows, lam=0 whitens exactly: isotropy of the uncentred
    # fit is close to but below 1 once centred.
    assert search.n_splits_ == 1
    assert 0.95 < search.best_score_ <= 1.0


def test_lam_path_matches_refitting(anisotropic):
    path = lam_path(anisotropic, [0.0, 5.0, 500.0], n_components=8, gamma=0.3)
    for lam in (0.0, 5.0, 500.0):
        direct = ACETransformer(8, lam=lam, gamma=0.3).fit_transform(anisotropic)
        np.testing.assert_allclose(path.spectra[lam], normalized_spectrum(direct, center=False),
                                   rtol=1e-4, atol=1e-7)
    assert path.diagnostics["neighbor_overlap"].is_monotonic_increasing
    with pytest.raises(ValueError, match="lams"):
        lam_path(anisotropic, [-1.0])


@pytest.fixture(scope="module")
def walk_data():
    data = build_sequences(synthetic_log(n_users=60, n_items=30), k_core=1)
    E = np.random.default_rng(0).standard_normal((30, 24)).astype(np.float32)
    return data, E


def test_downstream_search_rejects_an_absurd_scale(walk_data):
    data, E = walk_data
    scorer = DownstreamScorer(data, E, epochs=3, lr=1e-2, batch_size=64, verbose=False)
    search = GridSearchCV(make_pipeline(Normalizer(), ACETransformer(16)),
                          {"acetransformer__gamma": [1000.0, 0.1]}, scoring=scorer,
                          cv=WholeCatalogueSplit()).fit(E)
    assert search.best_params_ == {"acetransformer__gamma": 0.1}
    low, high = search.cv_results_["mean_test_score"]
    assert high > low + 0.1


def test_downstream_scorer_caches_and_never_looks_at_test(walk_data, tmp_path, monkeypatch):
    data, E = walk_data
    splits = []
    original = Trainer.rank  # every evaluation of the trainer ranks through here

    def recording(self, split="valid"):
        splits.append(split)
        return original(self, split)

    monkeypatch.setattr(Trainer, "rank", recording)
    scorer = DownstreamScorer(data, E, epochs=1, memory=str(tmp_path), verbose=False)
    ace = ACETransformer(8).fit(E)
    first = scorer(ace, E)
    assert splits == ["valid"]
    assert scorer(ace, E) == first and splits == ["valid"]
    other = scorer(ACETransformer(8, gamma=0.5).fit(E), E)
    assert splits == ["valid", "valid"] and 0.0 <= other <= 1.0


def test_downstream_scorer_bad_input(walk_data):
    data, E = walk_data
    with pytest.raises(ValueError, match="lack an embedding row"):
        DownstreamScorer(data, E[:10])
    with pytest.raises(ValueError, match="Unknown metric 'auc'"):
        DownstreamScorer(data, E, metric="auc")
    with pytest.raises(ValueError, match="Unknown backbone"):
        DownstreamScorer(data, E, backbone="transformer")
    with pytest.raises(NotFittedError, match="not fitted yet"):
        DownstreamScorer(data, E, verbose=False)(ACETransformer(8), E)


@pytest.mark.parametrize("scorer", [IsotropyScorer(), SemanticPreservationScorer(),
                                    CombinedScorer()])
def test_intrinsic_scorer_needs_a_fitted_estimator(scorer, anisotropic):
    with pytest.raises(NotFittedError, match="not fitted yet"):
        scorer(make_pipeline(Normalizer(), ACETransformer(8)), anisotropic)


def test_unknown_scorer_name():
    with pytest.raises(ValueError, match="Unknown scorer 'ndcg'.*combined"):
        get_scorer("ndcg")
    with pytest.raises(ValueError, match="weight"):
        CombinedScorer(weight=2.0)


def test_plots_from_a_search(anisotropic):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    from ace_transform.plotting import plot_score_vs_lam, plot_spectra

    search = _search(anisotropic, IsotropyScorer())
    ax = plot_score_vs_lam(search.cv_results_)
    x, y = ax.get_lines()[0].get_data()
    np.testing.assert_allclose(y, search.cv_results_["mean_test_score"])
    assert x[0] == pytest.approx(10.0)  # lam = 0 drawn at a tenth of the smallest lam > 0
    spectra = lam_path(anisotropic, LAMS, n_components=8).spectra
    assert len(plot_spectra(spectra).get_lines()) == len(LAMS) + 1
    with pytest.raises(ValueError, match="no column 'mean_test_ndcg'"):
        plot_score_vs_lam(pd.DataFrame(search.cv_results_), score="mean_test_ndcg")

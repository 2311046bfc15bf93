"""ace-bench --jobs: cells trained side by side in worker processes, as one at a time."""

import time
from concurrent.futures import CancelledError
from concurrent.futures.process import BrokenProcessPool

import numpy as np
import pandas as pd
import pytest
import torch

from recmodels import build_sequences
from recmodels.comparison import ComparisonPlan, run_comparison
from recmodels.comparison.cli import main
from recmodels.comparison.parallel import cell_pool, stop_workers
from recmodels.datasets import make_interactions
from recmodels_helpers import toy_argv, toy_folder

OUTCOME = ["ndcg@10", "recall@20", "ndcg@20", "epochs", "best_epoch"]


@pytest.fixture(scope="module")
def inputs():
    data = build_sequences(make_interactions(n_users=40, n_items=15), k_core=1)
    E = np.random.default_rng(0).standard_normal((data.n_items, 24)).astype(np.float32)
    return data, E


def _plan(jobs, **settings):
    return ComparisonPlan(["id", "ace"], ["sasrec", "gru4rec"], [0, 1], hidden_size=8,
                          max_len=6, max_epochs=3, lr_grid=(1e-2, 1e-3), grid_epochs=1,
                          k_core=1, jobs=jobs, **settings)


def test_jobs_train_the_same_cells_as_one_at_a_time(inputs, tmp_path):
    data, E = inputs
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the workers' share on a 2-core machine: the same arithmetic
    try:
        alone = run_comparison(_plan(1), data, E, tmp_path / "alone", verbose=False)
    finally:
        torch.set_num_threads(threads)
    side_by_side = run_comparison(_plan(2), data, E, tmp_path / "jobs", verbose=False)
    # Rows come back in the plan's order, whichever cell finished first.
    assert side_by_side["fingerprint"].tolist() == alone["fingerprint"].tolist()
    alone, side_by_side = (frame.sort_values(["fingerprint", "split"]).reset_index(drop=True)
                           for frame in (alone, side_by_side))
    assert side_by_side["fingerprint"].tolist() == alone["fingerprint"].tolist()
    assert side_by_side["selected"].tolist() == alone["selected"].tolist()
    assert side_by_side["selected"].sum() == 2 * 2 * 2 * 2  # methods x backbones x seeds x splits
    np.testing.assert_allclose(side_by_side[OUTCOME].to_numpy(float),
                               alone[OUTCOME].to_numpy(float), rtol=1e-4, atol=1e-6)
    written = pd.read_csv(tmp_path / "jobs" / "results.csv")
    assert len(written) == len(side_by_side)  # one writer: no row lost to a race
    assert set(written["lr_grid"]) == {"0.01,0.001"}
    # Candidates' checkpoints are gone once each method is done; the chosen runs' too.
    assert not list((tmp_path / "jobs" / "checkpoints").glob("*.pt"))


def test_jobs_print_each_cells_progress_under_its_name(tmp_path, capfd):
    folder = toy_folder(tmp_path / "toy")
    assert main(toy_argv(folder, tmp_path / "out", "--methods", "id,ace", "--lr", "1e-3",
                         "--max-epochs", "2", "--jobs", "2")) == 0
    err = capfd.readouterr().err
    for method in ("id", "ace"):
        assert f"[{method} sasrec s0 lr 0.001] epoch   1" in err
        assert f"[{method} sasrec s0 lr 0.001] epoch   2" in err


def test_a_failing_cell_ends_the_run_with_its_error(inputs, tmp_path):
    data, E = inputs
    plan = _plan(2, overrides={"ace": {"lam": -1.0}})  # ACE refuses a negative lam
    with pytest.raises(ValueError, match="lam"):
        run_comparison(plan, data, E, tmp_path / "out", verbose=False)


def test_stopping_workers_midway_ends_their_work_at_once(tmp_path):
    pool = cell_pool(1, _Sleeper, ())
    running, waiting = pool.submit(_sleep_in_worker, 600), pool.submit(_sleep_in_worker, 600)
    while not running.running():
        time.sleep(0.05)
    started = time.perf_counter()
    stop_workers(pool, finished=False)
    for future in (running, waiting):
        with pytest.raises((BrokenProcessPool, CancelledError)):
            future.result(timeout=30)
    assert time.perf_counter() - started < 20  # not the 30 s timeout, not the 600 s task


def test_jobs_must_be_positive(tmp_path, capsys):
    folder = toy_folder(tmp_path / "toy")
    assert main(toy_argv(folder, tmp_path / "out", "--jobs", "0")) == 2
    assert "--jobs 0: must be a positive integer; write e.g. --jobs 2." in capsys.readouterr().err


class _Sleeper:
    def __init__(self, announce=True):
        pass


def _sleep_in_worker(seconds):
    time.sleep(seconds)


def test_each_cells_rows_are_written_as_it_finishes(inputs, tmp_path, monkeypatch):
    """A run stopped in its third cell keeps the two before it (their checkpoints are
    gone: without their rows they would train again)."""
    from recmodels import Trainer

    data, E = inputs
    fit, calls = Trainer.fit, []

    def fit_until_the_third(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "fit", fit_until_the_third)
    plan = ComparisonPlan(["id"], ["sasrec"], [0, 1, 2], hidden_size=8, max_len=6,
                          max_epochs=2, lr=1e-3, k_core=1)
    with pytest.raises(KeyboardInterrupt):
        run_comparison(plan, data, E, tmp_path / "out", verbose=False)
    written = pd.read_csv(tmp_path / "out" / "results.csv")
    assert sorted(written["seed"].unique()) == [0, 1] and len(written) == 4


def test_a_name_given_twice_is_one_cell(inputs, tmp_path):
    data, E = inputs
    plan = ComparisonPlan(["id", "id"], ["sasrec"], [0, 0, 1], hidden_size=8, max_len=6,
                          max_epochs=1, lr=1e-3, k_core=1, jobs=2)
    assert plan.methods == ["id"] and plan.seeds == [0, 1]
    results = run_comparison(plan, data, E, tmp_path / "out", verbose=False)
    assert len(results) == 4 and results["fingerprint"].nunique() == 2

"""ace-bench's robustness: diverged candidates, other runs' checkpoints, argument checks,
dry runs on item text."""

import json

import numpy as np
import pandas as pd
import pytest

from recmodels import TrainingDivergedError
from recmodels.comparison import runner
from recmodels.comparison.cli import main
from recmodels_helpers import toy_argv, toy_folder

GRID = ("--lr-grid", "3e-2,1e-3", "--grid-epochs", "1", "--max-epochs", "2")


@pytest.fixture
def folder(tmp_path):
    return toy_folder(tmp_path / "toy")


def _diverge_at(monkeypatch, rate):
    """Trainer.fit raises TrainingDivergedError in epoch 1 for ``rate``, trains otherwise."""
    fit = runner.Trainer.fit

    def fit_or_diverge(self, *args, **kwargs):
        if np.isclose(self.lr, rate):
            raise TrainingDivergedError("the training loss became nan in epoch 1", epoch=1)
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(runner.Trainer, "fit", fit_or_diverge)


def test_a_diverged_candidate_loses_the_choice_and_the_comparison_goes_on(folder, tmp_path,
                                                                          capsys, monkeypatch):
    out = tmp_path / "out"
    _diverge_at(monkeypatch, 3e-2)
    assert main(toy_argv(folder, out, "--methods", "id,ace", *GRID)) == 0
    err = capsys.readouterr().err
    assert err.count("this candidate is out of the choice") == 2
    assert "lr 0.001 chosen on valid ndcg@10 (0.03: diverged, 0.001: " in err
    results = pd.read_csv(out / "results.csv")
    diverged = results[np.isclose(results["lr"], 3e-2)]
    assert len(diverged) == 4 and diverged["ndcg@10"].isna().all()
    assert set(diverged["best_epoch"]) == {0} and set(diverged["epochs"]) == {1}
    assert not diverged["selected"].any()
    chosen = results[results["selected"]]
    assert set(chosen["lr"]) == {1e-3} and set(chosen["epochs"]) == {2}
    assert chosen["ndcg@10"].notna().all()
    assert json.loads(results["lr_valid"].iloc[0])["0.03"] is None
    assert not list((out / "checkpoints").glob("*.pt"))
    # The diverged cells are finished cells: a second run trains nothing, the dry run agrees.
    monkeypatch.undo()
    assert main(toy_argv(folder, out, "--methods", "id,ace", *GRID)) == 0
    assert "learning-rate candidate" not in capsys.readouterr().err
    assert main(toy_argv(folder, out, "--methods", "id,ace", *GRID, "--dry-run")) == 0
    assert "6 of 6 cells done" in capsys.readouterr().out


def test_a_full_budget_candidate_that_diverges_leaves_a_record_and_no_checkpoint(
        folder, tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    fit = runner.Trainer.fit

    def fit_or_diverge(self, *args, **kwargs):
        if np.isclose(self.lr, 3e-2):
            self.checkpoint_path.parent.mkdir(parents=True, exist_ok=True)
            self.checkpoint_path.write_bytes(b"epoch 1")  # the last good epoch's checkpoint
            error = TrainingDivergedError("the training loss became nan in epoch 2", epoch=2)
            error.history, error.seconds = [{"epoch": 1, "loss": 9.0, "seconds": 4.0}], 7.5
            raise error
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(runner.Trainer, "fit", fit_or_diverge)
    # No --grid-epochs: every candidate trains under the full budget, the best is the run.
    assert main(toy_argv(folder, out, "--methods", "id", "--lr-grid", "3e-2,1e-3",
                         "--max-epochs", "2")) == 0
    err = capsys.readouterr().err
    assert "diverged in epoch 2; this candidate is out of the choice, and its checkpoint is " \
           "removed" in err
    assert not list((out / "checkpoints").glob("*.pt"))
    results = pd.read_csv(out / "results.csv", dtype={"fingerprint": str})
    diverged = results[np.isclose(results["lr"], 3e-2)]
    assert set(diverged["seconds"]) == {7.5} and set(diverged["epochs"]) == {2}
    record = json.loads((out / "runs" / f"{diverged['fingerprint'].iloc[0]}.json").read_text())
    assert record["diverged_in_epoch"] == 2 and len(record["history"]) == 1
    assert record["cell_settings"]["lr"] == 3e-2
    assert results.loc[results["selected"], "lr"].unique().tolist() == [1e-3]
    monkeypatch.undo()
    assert main(toy_argv(folder, out, "--methods", "id", "--lr-grid", "3e-2,1e-3",
                         "--max-epochs", "2", "--dry-run")) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()
            if line.split()[:2] == ["sasrec", "id"]]
    assert rows == [["sasrec", "id", "0", "0.03", "candidate", "done", "(diverged)"],
                    ["sasrec", "id", "0", "0.001", "candidate", "done"]]


def test_a_chosen_run_that_diverges_is_an_error_naming_the_cell_and_the_grid(
        folder, tmp_path, capsys, monkeypatch):
    fit = runner.Trainer.fit

    def diverge_at_seed_1(self, *args, **kwargs):
        if self.seed == 1:
            raise TrainingDivergedError("the training loss became nan in epoch 1", epoch=1)
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(runner.Trainer, "fit", diverge_at_seed_1)
    assert main(toy_argv(folder, tmp_path / "out", "--methods", "id", "--seeds", "0,1",
                         *GRID)) == 2
    line = capsys.readouterr().err.rstrip().splitlines()[-1]
    assert line.startswith("ace-bench: error: --lr-grid: id + sasrec, seed 1, lr ")
    assert line.endswith("the training loss became nan in epoch 1")


def test_every_candidate_diverging_is_a_one_line_error_naming_the_grid(
        folder, tmp_path, capsys, monkeypatch):
    def diverge(self, *args, **kwargs):
        raise TrainingDivergedError("the training loss became nan in epoch 1", epoch=1)

    monkeypatch.setattr(runner.Trainer, "fit", diverge)
    assert main(toy_argv(folder, tmp_path / "out", "--methods", "id", *GRID)) == 2
    assert capsys.readouterr().err.rstrip().splitlines()[-1] == (
        "ace-bench: error: --lr-grid: id + sasrec: the training loss diverged at every "
        "candidate rate (0.03, 0.001); give lower rates.")
    assert main(toy_argv(folder, tmp_path / "out", "--methods", "id", *GRID, "--dry-run")) == 0
    assert "every candidate diverged" in capsys.readouterr().out


def test_a_run_leaves_other_settings_checkpoints_of_its_cell_alone(folder, tmp_path, capsys):
    out = tmp_path / "out"
    other = out / "checkpoints" / "id-sasrec-s0-lr0.001-0123456789ab.pt"
    other.parent.mkdir(parents=True)
    other.write_bytes(b"another protocol's run, still to resume")
    assert main(toy_argv(folder, out, "--methods", "id", "--lr", "1e-3",
                         "--max-epochs", "1")) == 0
    assert other.read_bytes() == b"another protocol's run, still to resume"
    assert f"left alone: {other.name}" in capsys.readouterr().err


@pytest.mark.parametrize("option, value, example", [
    ("--patience", "0", "10"), ("--max-epochs", "-1", "400"), ("--hidden-size", "0", "128"),
    ("--max-len", "0", "50"), ("--window-stride", "0", "1"), ("--max-history", "0", "100"),
])
def test_non_positive_sizes_are_refused_before_any_work(folder, tmp_path, capsys, option,
                                                        value, example):
    out = tmp_path / "out"
    assert main(toy_argv(folder, out, "--methods", "id", option, value)) == 2
    assert capsys.readouterr().err.rstrip().splitlines()[-1] == (
        f"ace-bench: error: {option} {value}: must be a positive integer; write e.g. "
        f"{option} {example}.")
    assert not out.exists()


@pytest.mark.parametrize("value", ["0", "-0.001", "2"])
def test_a_learning_rate_outside_0_1_is_refused(folder, tmp_path, capsys, value):
    assert main(toy_argv(folder, tmp_path / "out", "--methods", "id", "--lr", value)) == 2
    assert capsys.readouterr().err.rstrip().splitlines()[-1] == (
        f"ace-bench: error: --lr {float(value):g}: not a learning rate in (0, 1); write e.g. "
        "--lr 1e-3.")


def test_the_choice_is_on_file_while_the_chosen_rate_trains_on(folder, tmp_path, monkeypatch):
    fit = runner.Trainer.fit

    def killed_in_the_long_run(self, *args, **kwargs):
        if self.max_epochs > 1:  # the chosen rate's run after the 1-epoch candidates
            raise KeyboardInterrupt
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(runner.Trainer, "fit", killed_in_the_long_run)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        main(toy_argv(folder, out, "--methods", "id", *GRID))
    results = pd.read_csv(out / "results.csv", dtype={"lr_valid": str})
    assert len(results) == 4 and not results["selected"].any()  # two candidates, no run yet
    assert set(results["lr_grid"]) == {"0.03,0.001"}
    scores = json.loads(results["lr_valid"].iloc[0])
    valid = results[results["split"] == "valid"].set_index("lr")["ndcg@10"]
    assert scores == {f"{lr:g}": pytest.approx(v, abs=1e-6) for lr, v in valid.items()}


def test_a_dry_run_without_embeddings_finds_the_cells_a_run_on_item_text_trained(
        folder, tmp_path, capsys):
    pytest.importorskip("sentence_transformers")
    out = tmp_path / "out"
    argv = ["--data", str(folder), "--out", str(out), "--methods", "id,ace", "--lr", "1e-3",
            "--max-epochs", "1", "--k-core", "1", "--hidden-size", "8", "--max-len", "6",
            "--window-stride", "3"]
    assert main(argv) == 0  # encodes the toy titles with the default encoder
    cached = {p: p.read_bytes() for p in (out / "cache").iterdir()}
    assert len(cached) == 1
    capsys.readouterr()
    assert main(argv + ["--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert "2 of 2 cells done" in printed
    assert {p: p.read_bytes() for p in (out / "cache").iterdir()} == cached

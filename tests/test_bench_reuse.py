"""ace-bench reuses a finished cell only under the same settings; the learning-rate grid."""

import json

import numpy as np
import pandas as pd
import pytest

from recmodels.comparison.cli import main
from recmodels.comparison.report import training_seconds, training_summary
from recmodels.comparison.runs import load_ranks
from recmodels.metrics import per_user_metrics
from recmodels_helpers import toy_argv, toy_folder


@pytest.fixture
def folder(tmp_path):
    return toy_folder(tmp_path / "toy")


def test_quick_then_full_into_one_folder_recomputes(folder, tmp_path, capsys):
    out = tmp_path / "out"
    quick = toy_argv(folder, out, "--quick", "--methods", "id,ace", "--max-epochs", "1")
    assert main(quick) == 0
    first = pd.read_csv(out / "results.csv")
    assert set(first["epochs"]) == {1}
    printed = capsys.readouterr().out
    # The line under the table says that both cells were cut by the cap, not early stopping.
    assert ("learning rate 0.002 for every method. Training: sasrec: id 1 epochs (best 1), "
            "ace 1 (best 1); 2 of 2 cells reached the 1-epoch cap before early stopping"
            ) in printed
    assert "Training: sasrec" in (out / "results.md").read_text()
    full = toy_argv(folder, out, "--methods", "id,ace", "--max-epochs", "2", "--lr", "2e-3")
    assert main(full) == 0
    err = capsys.readouterr().err
    assert err.count("results.csv holds this cell under other settings (") == 2
    for change in ("max_epochs: 1 -> 2", "patience: 5 -> 10", "batch_size: 1024 -> 256"):
        assert err.count(change) == 2, change
    both = pd.read_csv(out / "results.csv")
    assert len(both) == 2 * len(first)  # the quick rows stay, new rows are added
    assert both["fingerprint"].nunique() == 4
    table = (out / "results.md").read_text()
    newest = both[(both["epochs"] == 2) & (both["split"] == "test")]
    for _, row in newest.iterrows():
        assert f"{row['ndcg@10']:.4f}" in table


def test_a_changed_method_setting_recomputes_only_that_method(folder, tmp_path, capsys):
    out = tmp_path / "out"
    argv = toy_argv(folder, out, "--methods", "id,ace", "--max-epochs", "1", "--lr", "1e-3",
                    "--param", "ace.lam=5")
    assert main(argv) == 0
    capsys.readouterr()
    assert main(argv[:-1] + ["ace.lam=0"]) == 0
    err = capsys.readouterr().err
    assert "method_settings.lam: 5 -> 0" in err
    assert "id + sasrec" not in err  # the id cell is unchanged and reused
    results = pd.read_csv(out / "results.csv")
    lams = {json.loads(s)["method_settings"].get("lam") for s in results["settings"]}
    assert lams == {None, 5, 0}
    settings = json.loads(results["settings"].iloc[0])
    for key in ("method", "method_settings", "lr", "backbone", "hidden_size", "max_len",
                "max_epochs", "patience", "batch_size", "window_stride", "k_core", "seed",
                "data", "embeddings", "version"):
        assert key in settings
    # Other embeddings are other inputs: every cell is trained again.
    np.save(folder / "emb.npy", np.load(folder / "emb.npy") * 2)
    capsys.readouterr()
    assert main(argv) == 0
    assert capsys.readouterr().err.count("under other settings (embeddings:") == 2


def test_the_learning_rate_is_chosen_per_method_on_validation(folder, tmp_path):
    out = tmp_path / "out"
    argv = toy_argv(folder, out, "--methods", "id,pca", "--seeds", "0,1", "--max-epochs", "2",
                    "--lr-grid", "3e-2,1e-3,1e-5")
    assert main(argv) == 0
    results = pd.read_csv(out / "results.csv")
    for method, rows in results.groupby("method"):
        first = rows[(rows["seed"] == 0) & (rows["split"] == "valid")]
        assert sorted(first["lr"]) == [1e-5, 1e-3, 3e-2]
        best = first.loc[first["ndcg@10"].idxmax(), "lr"]
        assert set(rows.loc[rows["selected"], "lr"]) == {best}
        assert set(rows.loc[rows["seed"] == 1, "lr"]) == {best}  # other seeds: chosen rate
        scores = json.loads(rows["lr_valid"].iloc[0])
        assert scores == pytest.approx({f"{lr:g}": v for lr, v in
                                        zip(first["lr"], first["ndcg@10"])}, abs=1e-6)
        assert set(rows["lr_grid"]) == {"0.03,0.001,1e-05"}
        for key, recorded in zip(rows.loc[rows["split"] == "test", "fingerprint"],
                                 rows.loc[rows["split"] == "test", "ndcg@10"]):
            ranks = load_ranks(out, key)
            assert ranks.shape == (50,) and ranks.min() >= 0
            assert per_user_metrics(ranks, (10,))["ndcg@10"].mean() == pytest.approx(recorded)
        chosen_test = rows[rows["selected"] & (rows["split"] == "test") & (rows["seed"] == 0)]
        table = (out / "results.md").read_text()
        assert f"| {method} | {best:g} | 2 |" in table
        assert len(chosen_test) == 1
    assert "t-test" in (out / "results.md").read_text()
    assert "chosen from 0.03, 0.001, 1e-05" in (out / "results.md").read_text()


def test_short_grid_chooses_on_validation_then_trains_the_chosen_rate_in_full(folder, tmp_path,
                                                                             capsys):
    out = tmp_path / "out"
    argv = toy_argv(folder, out, "--methods", "id,ace", "--lr-grid", "3e-2,1e-3,1e-5",
                    "--grid-epochs", "1", "--max-epochs", "3", "--patience", "5")
    assert main(argv) == 0
    results = pd.read_csv(out / "results.csv")
    for method, rows in results.groupby("method"):
        candidates = rows[rows["epochs"] == 1]
        assert sorted(candidates["lr"].unique()) == [1e-5, 1e-3, 3e-2]
        assert not candidates["selected"].any()
        valid = candidates[candidates["split"] == "valid"]
        best = valid.loc[valid["ndcg@10"].idxmax(), "lr"]  # validation only
        chosen = rows[rows["selected"]]
        assert set(chosen["split"]) == {"valid", "test"} and len(chosen) == 2
        assert set(chosen["lr"]) == {best} and set(chosen["epochs"]) == {3}
        assert json.loads(chosen["settings"].iloc[0])["max_epochs"] == 3
        assert set(json.loads(rows["lr_valid"].iloc[0])) == {"0.03", "0.001", "1e-05"}
    printed = capsys.readouterr()
    assert "after at most 1 epochs per candidate" in printed.out
    assert "under other settings" not in printed.err  # candidates are not stale cells
    # Run again: every cell is reused, nothing trains.
    assert main(argv) == 0
    assert "learning-rate candidate" not in capsys.readouterr().err


def test_chosen_rate_continues_its_candidate_exactly(folder, tmp_path, capsys):
    grid, fixed = tmp_path / "grid", tmp_path / "fixed"
    common = ("--methods", "id,ace", "--max-epochs", "3", "--patience", "5")
    assert main(toy_argv(folder, grid, *common, "--lr-grid", "3e-2,1e-3",
                         "--grid-epochs", "1")) == 0
    err = capsys.readouterr().err
    assert err.count("continuing the learning-rate candidate's run") == 2
    assert err.count("after epoch 1") == 2
    assert not list((grid / "checkpoints").glob("*.pt"))  # no candidate left behind
    results = pd.read_csv(grid / "results.csv", dtype={"fingerprint": str})
    # The runs' histories show the continuation: no chosen candidate is counted again.
    unchosen = results[(results["split"] == "test") & ~results["selected"]
                       & (results["lr"] != results["method"].map(
                           results[results["selected"]].groupby("method")["lr"].first()))]
    assert training_seconds(results, grid) == pytest.approx(
        results[(results["split"] == "test") & results["selected"]]["seconds"].sum()
        + unchosen["seconds"].sum())
    for method in ("id", "ace"):
        chosen = results[results["selected"] & (results["method"] == method)]
        lr = chosen["lr"].iloc[0]
        # The same cell trained from scratch at the chosen rate, in another folder.
        assert main(toy_argv(folder, fixed, *common, "--methods", method, "--lr", f"{lr}")) == 0
        alone = pd.read_csv(fixed / "results.csv", dtype={"fingerprint": str})
        alone = alone[alone["method"] == method]
        assert set(alone["fingerprint"]) == set(chosen["fingerprint"])
        key = chosen["fingerprint"].iloc[0]
        continued = json.loads((grid / "runs" / f"{key}.json").read_text())["history"]
        scratch = json.loads((fixed / "runs" / f"{key}.json").read_text())["history"]
        assert [h["epoch"] for h in continued] == [1, 2, 3]
        for a, b in zip(continued, scratch):
            assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)
            assert a["ndcg@10"] == pytest.approx(b["ndcg@10"], abs=1e-6)
        assert np.array_equal(load_ranks(grid, key), load_ranks(fixed, key))


def test_grid_epochs_beyond_max_epochs_is_a_one_line_error(folder, tmp_path, capsys):
    argv = toy_argv(folder, tmp_path / "out", "--grid-epochs", "9", "--max-epochs", "3")
    assert main(argv) == 2
    assert "--grid-epochs 9: must be between 1 and --max-epochs (3)" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_backbone_settings_of_the_reference_code_reach_the_model(folder, tmp_path):
    out = tmp_path / "out"
    argv = toy_argv(folder, out, "--methods", "id,pca", "--max-epochs", "1", "--lr", "1e-3")
    argv[argv.index("sasrec")] = "gru4rec"
    assert main(argv) == 0
    results = pd.read_csv(out / "results.csv", dtype={"fingerprint": str})
    for method, dropout in (("id", 0.5), ("pca", 0.3)):
        row = results[results["method"] == method].iloc[0]
        settings = json.loads(row["settings"])
        assert settings.get("backbone_settings", {}).get("dropout", 0.5) == dropout
        saved = json.loads((out / "runs" / f"{row['fingerprint']}.json").read_text())
        assert saved["trainer_settings"]["model"]["dropout"]["p"] == dropout


def test_sequences_reaches_the_model_and_the_fingerprint_only_where_it_changes_it(folder,
                                                                                 tmp_path):
    out = tmp_path / "out"
    argv = toy_argv(folder, out, "--methods", "id", "--max-epochs", "1", "--lr", "1e-3")
    argv[argv.index("sasrec")] = "sasrec,bert4rec"

    def cells():
        results = pd.read_csv(out / "results.csv", dtype={"fingerprint": str})
        valid = results[results["split"] == "valid"].set_index("backbone")
        return {backbone: (row["fingerprint"], json.loads(row["settings"]))
                for backbone, row in valid.iterrows()}

    assert main(argv) == 0
    before = cells()
    assert main([*argv, "--sequences", "prefixes"]) == 0
    after = cells()
    # BERT4Rec trains on prefixes already: the same cell, reused. SASRec's is a new cell.
    assert after["bert4rec"][0] == before["bert4rec"][0]
    assert after["sasrec"][0] != before["sasrec"][0]
    assert "backbone_settings" not in before["sasrec"][1]
    assert after["sasrec"][1]["backbone_settings"] == {"sequences": "prefixes"}
    for key, _ in (before["sasrec"], after["sasrec"]):
        saved = json.loads((out / "runs" / f"{key}.json").read_text())
        assert saved["trainer_settings"]["model"]["model"].get("sequences", "windows") == (
            "windows" if key == before["sasrec"][0] else "prefixes")


def test_dry_run_lists_every_cell_and_trains_nothing(folder, tmp_path, capsys):
    out = tmp_path / "out"
    grid = ("--lr-grid", "1e-3,1e-4", "--grid-epochs", "1", "--max-epochs", "2")
    assert main(toy_argv(folder, out, "--methods", "id", *grid)) == 0
    before = {path: path.read_bytes() for path in out.rglob("*") if path.is_file()}
    capsys.readouterr()
    assert main(toy_argv(folder, out, "--methods", "id,ace", "--seeds", "0,1", *grid,
                         "--dry-run")) == 0
    printed = capsys.readouterr().out
    # Nothing was trained or written: the folder holds exactly what it held.
    assert {path: path.read_bytes() for path in out.rglob("*") if path.is_file()} == before
    rows = [line.split() for line in printed.splitlines() if line.split()[:1] == ["sasrec"]]
    results = pd.read_csv(out / "results.csv")
    best = f"{results.loc[results['selected'], 'lr'].iloc[0]:g}"  # id's rate is known
    assert rows == [
        ["sasrec", "id", "0", "0.001", "candidate", "done"],
        ["sasrec", "id", "0", "0.0001", "candidate", "done"],
        ["sasrec", "id", "0", best, "run", "done"],
        ["sasrec", "id", "1", best, "run", "to", "train"],
        ["sasrec", "ace", "0", "0.001", "candidate", "to", "train"],
        ["sasrec", "ace", "0", "0.0001", "candidate", "to", "train"],
        ["sasrec", "ace", "0", "-", "run", "after", "the", "candidates"],
        ["sasrec", "ace", "1", "-", "run", "after", "the", "candidates"],
    ]
    assert "3 of 8 cells done, 5 left" in printed
    # The finished run's test row, as the table prints it; ace has nothing finished yet.
    test = results[results["selected"] & (results["split"] == "test")].iloc[0]
    table = printed.split("The finished cells so far:")[1]
    assert f"| id | {best} | 1 | {test['recall@10']:.4f} | {test['ndcg@10']:.4f} |" in table
    assert "| ace |" not in table and "id 2 epochs" in table


def test_dry_run_with_one_rate_reuses_any_seed_already_run(folder, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(toy_argv(folder, out, "--methods", "id", "--lr", "1e-3", "--seeds", "1",
                         "--max-epochs", "1")) == 0
    capsys.readouterr()
    assert main(toy_argv(folder, out, "--methods", "id", "--lr", "1e-3", "--seeds", "0,1,1",
                         "--max-epochs", "1", "--dry-run")) == 0
    printed = capsys.readouterr().out
    rows = [line.split() for line in printed.splitlines() if line.split()[:1] == ["sasrec"]]
    assert rows == [["sasrec", "id", "0", "0.001", "run", "to", "train"],
                    ["sasrec", "id", "1", "0.001", "run", "done"]]
    assert "| id | 0.001 | 1 |" in printed.split("The finished cells so far:")[1]
    # A plan none of whose cells is finished prints no table of them.
    assert main(toy_argv(folder, out, "--methods", "id", "--lr", "1e-3", "--seeds", "0",
                         "--max-epochs", "1", "--dry-run")) == 0
    assert "finished cells" not in capsys.readouterr().out


def test_dry_run_reports_a_checkpoint_to_resume(folder, tmp_path):
    from recmodels import build_sequences, load_folder
    from recmodels.checkpoint import save_atomic
    from recmodels.comparison import ComparisonPlan
    from recmodels.comparison.plan import cell_inputs, cell_settings
    from recmodels.comparison.runs import checkpoint_path
    from recmodels.comparison.status import plan_status
    from recmodels.provenance import fingerprint

    interactions, _ = load_folder(folder)
    data = build_sequences(interactions, k_core=1)
    E = np.random.default_rng(0).standard_normal((data.n_items, 8)).astype(np.float32)
    plan = ComparisonPlan(["id"], ["sasrec"], [0], hidden_size=8, max_len=5, max_epochs=4,
                          lr=1e-3, k_core=1)
    inputs, _ = cell_inputs(plan, data, E)
    key = fingerprint(cell_settings(plan, "id", "sasrec", 0, 1e-3, inputs))
    assert plan_status(plan, data, E, tmp_path)["status"].tolist() == ["to train"]
    save_atomic({"trainer": {"epoch": 3}}, checkpoint_path(tmp_path, "id", "sasrec", 0, 1e-3, key))
    assert plan_status(plan, data, E, tmp_path)["status"].tolist() == ["resumes after epoch 3"]


def test_training_seconds_counts_a_candidate_its_chosen_run_did_not_continue(tmp_path):
    rows = pd.DataFrame({"method": "ace", "backbone": "sasrec", "seed": 0, "split": "test",
                         "lr": [1e-3, 1e-3, 1e-4], "selected": [True, False, False],
                         "fingerprint": ["full", "c1", "c2"], "seconds": [600.0, 120.0, 100.0]})
    runs = tmp_path / "runs"
    runs.mkdir()

    def write(key, first_epoch_seconds):
        history = [{"epoch": 1, "seconds": first_epoch_seconds}]
        (runs / f"{key}.json").write_text(json.dumps({"history": history}))

    write("full", 20.5)
    write("c1", 20.5)  # the full run went on from c1's checkpoint: c1's epochs are in it
    assert training_seconds(rows, tmp_path) == 700.0
    write("c1", 19.0)  # the full run started afresh: c1's 120 s were spent besides
    assert training_seconds(rows, tmp_path) == 820.0
    assert training_seconds(rows) == 700.0  # without the folder: taken as continued


def test_training_summary_counts_only_the_tables_methods():
    rows = pd.DataFrame({"method": ["ace", "ace", "pca"], "backbone": "sasrec", "seed": 0,
                         "split": "test", "lr": [1e-3, 1e-4, 1e-3],
                         "selected": [True, False, False], "epochs": [12, 6, 6],
                         "best_epoch": [2, 6, 6], "fingerprint": ["a1", "a2", "p1"],
                         "seconds": [600.0, 120.0, 300.0]})
    # pca is still choosing its rate: not in the table, so not in its minutes.
    assert training_summary(rows, max_epochs=400, patience=10).endswith(
        "12.0 min of training in these cells, learning-rate candidates included.")


def test_dry_run_table_shows_this_plans_choice_not_the_files_flags(folder, tmp_path, capsys):
    out = tmp_path / "out"
    one_epoch = ("--methods", "id", "--max-epochs", "1")
    for lr in ("1e-3", "1e-4"):  # two commands, each marking its own cell selected
        assert main(toy_argv(folder, out, *one_epoch, "--lr", lr)) == 0
    results = pd.read_csv(out / "results.csv")
    assert results["selected"].all()
    valid = results[results["split"] == "valid"].set_index("lr")["ndcg@10"]
    best = valid.idxmax() if valid.nunique() > 1 else 1e-3  # ties go to the earlier rate
    capsys.readouterr()
    assert main(toy_argv(folder, out, *one_epoch, "--lr-grid", "1e-3,1e-4", "--dry-run")) == 0
    table = capsys.readouterr().out.split("The finished cells so far:")[1]
    rows = [line for line in table.splitlines() if line.startswith("| id |")]
    test = results[(results["split"] == "test") & (results["lr"] == best)].iloc[0]
    assert rows == [f"| id | {best:g} | 1 | {test['recall@10']:.4f} | {test['ndcg@10']:.4f} | "
                    f"{test['recall@20']:.4f} | {test['ndcg@20']:.4f} |"]


def test_a_run_killed_in_the_next_method_keeps_the_finished_methods_choice(folder, tmp_path,
                                                                           monkeypatch):
    from recmodels.comparison import runner

    def killed(method, *args, **kwargs):
        if method == "ace":
            raise KeyboardInterrupt
        return build_table(method, *args, **kwargs)

    build_table = runner.build_table
    monkeypatch.setattr(runner, "build_table", killed)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        main(toy_argv(folder, out, "--methods", "id,ace", "--lr-grid", "3e-2,1e-3",
                      "--max-epochs", "1"))
    results = pd.read_csv(out / "results.csv")
    assert set(results["method"]) == {"id"} and len(results) == 4  # two rates, two splits
    valid = results[results["split"] == "valid"].set_index("lr")["ndcg@10"]
    assert results.loc[results["selected"], "lr"].unique().tolist() == [valid.idxmax()]


def test_dry_run_reports_a_chosen_run_that_continues_its_candidate(folder, tmp_path):
    from recmodels import build_sequences, load_folder
    from recmodels.checkpoint import save_atomic
    from recmodels.comparison import ComparisonPlan, run_comparison
    from recmodels.comparison.runs import checkpoint_path
    from recmodels.comparison.status import plan_status

    interactions, _ = load_folder(folder)
    data = build_sequences(interactions, k_core=1)
    E = np.random.default_rng(0).standard_normal((data.n_items, 8)).astype(np.float32)
    common = dict(hidden_size=8, max_len=5, k_core=1, lr_grid=[3e-2, 1e-3])
    run_comparison(ComparisonPlan(["id"], ["sasrec"], [0], max_epochs=1, **common),
                   data, E, tmp_path, verbose=False)  # the two 1-epoch candidates, finished
    plan = ComparisonPlan(["id"], ["sasrec"], [0], max_epochs=3, grid_epochs=1, **common)
    status = plan_status(plan, data, E, tmp_path)
    assert status["status"].tolist() == ["done", "done", "to train"]
    candidate = status.iloc[[0, 1]].set_index("lr")
    results = pd.read_csv(tmp_path / "results.csv", dtype={"fingerprint": str})
    valid = results[results["split"] == "valid"].set_index("lr")["ndcg@10"]
    best = valid.idxmax()  # ties go to the earlier rate, as in idxmax
    assert status["lr"].iloc[2] == best
    # A candidate's checkpoint still on disk: the chosen run will go on from it.
    save_atomic({"trainer": {"epoch": 1}}, checkpoint_path(
        tmp_path, "id", "sasrec", 0, best, candidate.loc[best, "fingerprint"]))
    status = plan_status(plan, data, E, tmp_path)
    assert status["status"].iloc[2] == "continues its candidate after epoch 1"
    assert status["chosen"].tolist() == [False, False, True]

"""Cells trained in separate ace-bench folders merge into one that reuses them."""

import shutil

import numpy as np
import pandas as pd
import pytest

from recmodels.comparison.cli import main
from recmodels.comparison.inputs import InputError
from recmodels.comparison.merge import main as merge_main
from recmodels.comparison.merge import merge_folders
from recmodels.comparison.runs import load_ranks
from recmodels_helpers import toy_argv, toy_folder


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Seed 0 and seed 1 of one method trained into two folders, and both into a third."""
    tmp = tmp_path_factory.mktemp("merge")
    folder = toy_folder(tmp / "toy")
    common = ("--methods", "id,ace", "--max-epochs", "2", "--lr", "1e-3")
    for name, seeds in (("a", "0"), ("b", "1"), ("both", "0,1")):
        assert main(toy_argv(folder, tmp / name, *common, "--seeds", seeds)) == 0
    return tmp, folder, common


def _cells(frame):
    return frame.sort_values(["fingerprint", "split"]).reset_index(drop=True)


def test_merged_folders_equal_one_run_of_every_cell(runs, capsys):
    tmp, folder, common = runs
    dest = tmp / "merged"
    assert merge_main(["--into", str(dest), str(tmp / "a"), str(tmp / "b")]) == 0
    assert "4 cell(s) added, 0 already there" in capsys.readouterr().out
    merged, both = (_cells(pd.read_csv(f / "results.csv")) for f in (dest, tmp / "both"))
    assert merged["fingerprint"].tolist() == both["fingerprint"].tolist()
    np.testing.assert_allclose(merged[["ndcg@10", "recall@20", "epochs"]].to_numpy(float),
                               both[["ndcg@10", "recall@20", "epochs"]].to_numpy(float))
    for key in merged["fingerprint"].unique():
        assert np.array_equal(load_ranks(dest, key), load_ranks(tmp / "both", key))
    # ace-bench on the merged folder reuses every cell: it trains nothing.
    assert main(toy_argv(folder, dest, *common, "--seeds", "0,1")) == 0
    assert "epoch   1" not in capsys.readouterr().err
    assert len(pd.read_csv(dest / "results.csv")) == len(both)


def test_a_second_merge_adds_nothing_and_names_differing_figures(runs, capsys):
    tmp, _, _ = runs
    dest = tmp / "again"
    shutil.copytree(tmp / "both", dest)
    altered = tmp / "altered"
    shutil.copytree(tmp / "a", altered)
    results = pd.read_csv(altered / "results.csv", dtype={"fingerprint": str})
    results.loc[0, "ndcg@10"] += 0.01
    results.to_csv(altered / "results.csv", index=False)
    before = (dest / "results.csv").read_text()
    outcome = merge_folders([tmp / "a", altered], dest)
    assert outcome["added"] == [] and len(outcome["kept"]) == 4
    assert outcome["differ"] == [results.loc[0, "fingerprint"]]
    assert (dest / "results.csv").read_text() == before  # nothing added: nothing written


def test_a_cell_without_its_run_files_stops_the_merge_before_any_write(runs):
    tmp, _, _ = runs
    broken = tmp / "broken"
    shutil.copytree(tmp / "b", broken)
    key = pd.read_csv(broken / "results.csv", dtype={"fingerprint": str})["fingerprint"][0]
    (broken / "runs" / f"{key}.npz").unlink()
    dest = tmp / "untouched"
    with pytest.raises(InputError, match=f"cell {key} is in results.csv but .*{key}.npz is "
                                         "missing"):
        merge_folders([tmp / "a", broken], dest)
    assert not dest.exists()


def test_bad_folders_are_clear_errors(runs, capsys):
    tmp, _, _ = runs
    assert merge_main(["--into", str(tmp / "x"), str(tmp / "toy")]) == 2
    assert "toy: no results.csv here" in capsys.readouterr().err
    with pytest.raises(InputError, match="a source is the destination itself"):
        merge_folders([tmp / "a"], tmp / "a")
    (tmp / "foreign").mkdir()
    (tmp / "foreign" / "results.csv").write_text("user,item\n1,2\n")
    with pytest.raises(InputError, match=r"foreign.results.csv: not a results table ace-bench "
                                         r"wrote \(no column\(s\) \['method'"):
        merge_folders([tmp / "foreign"], tmp / "y")
    assert not (tmp / "y").exists()


def test_later_seeds_at_the_chosen_rate_merge_into_a_grid_run(tmp_path, capsys):
    """beauty_converged_seeds.sh's premise: seeds 1+ trained with ``--lr`` at the rate the
    grid chose have the fingerprints the grid run would give them."""
    folder = toy_folder(tmp_path / "toy")
    grid = ("--methods", "ace", "--lr-grid", "1e-3,1e-4", "--grid-epochs", "1",
            "--max-epochs", "2")
    main_folder, side = tmp_path / "main", tmp_path / "side"
    assert main(toy_argv(folder, main_folder, *grid, "--seeds", "0")) == 0
    results = pd.read_csv(main_folder / "results.csv")
    chosen = results.loc[results["selected"].astype(bool), "lr"].iloc[0]
    assert main(toy_argv(folder, side, "--methods", "ace", "--lr", f"{chosen:g}",
                         "--max-epochs", "2", "--seeds", "1")) == 0
    assert len(merge_folders([side], main_folder)["added"]) == 1
    capsys.readouterr()
    assert main(toy_argv(folder, main_folder, *grid, "--seeds", "0,1")) == 0
    assert "epoch   1" not in capsys.readouterr().err  # seed 1 reused, nothing trained
    test = pd.read_csv(main_folder / "results.csv").query("split == 'test' and selected")
    assert sorted(test["seed"]) == [0, 1] and set(test["lr"]) == {chosen}


def test_a_cell_under_other_settings_is_added_unselected_and_named(runs, capsys):
    tmp, folder, common = runs
    other = tmp / "other_patience"
    assert main(toy_argv(folder, other, *common, "--seeds", "1", "--patience", "5")) == 0
    dest = tmp / "with_other"
    shutil.copytree(tmp / "both", dest)
    capsys.readouterr()
    assert merge_main(["--into", str(dest), str(other)]) == 0
    printed = capsys.readouterr().out
    assert "2 cell(s) added" in printed and printed.count("patience: 10 -> 5") == 2
    test = pd.read_csv(dest / "results.csv").query("split == 'test'")
    # One selected cell per method and seed, as before the merge: a report takes those.
    assert (test[test["selected"]].groupby(["method", "seed"]).size() == 1).all()
    assert len(test) == 6 and test["selected"].sum() == 4


def test_a_diverged_cell_merges_with_its_history_alone(runs):
    tmp, _, _ = runs
    diverged = tmp / "diverged"
    shutil.copytree(tmp / "b", diverged)
    results = pd.read_csv(diverged / "results.csv", dtype={"fingerprint": str})
    key = results["fingerprint"][0]
    cell = results["fingerprint"] == key
    results.loc[cell, ["ndcg@10", "recall@20"]] = np.nan
    results.loc[cell, "best_epoch"] = 0
    results.to_csv(diverged / "results.csv", index=False)
    (diverged / "runs" / f"{key}.npz").unlink()
    dest = tmp / "empty"
    dest.mkdir()
    outcome = merge_folders([diverged], dest)
    assert key in outcome["added"] and len(outcome["added"]) == 2
    assert (dest / "runs" / f"{key}.json").is_file()
    assert not (dest / "runs" / f"{key}.npz").exists()
    merged = pd.read_csv(dest / "results.csv", dtype={"fingerprint": str})
    assert merged.loc[merged["fingerprint"] == key, "ndcg@10"].isna().all()
    # Merging it again finds it the same (NaN equals NaN), not a cell with other figures.
    again = merge_folders([diverged], dest)
    assert again["added"] == [] and again["differ"] == []

"""ace-bench: input checks before training, prompts, an end-to-end run and its resume."""

import numpy as np
import pandas as pd
import pytest

from recmodels.comparison import build_table, item_prompts
from recmodels.comparison.cli import main
from recmodels.comparison.methods import METHODS
from recmodels_helpers import synthetic_log, toy_argv, toy_folder


@pytest.fixture
def folder(tmp_path):
    return toy_folder(tmp_path / "toy", brand=True)


def test_prompt_follows_the_paper_and_skips_empty_fields():
    items = pd.DataFrame({"item_id": ["a", "b"], "title": ["Red lipstick", "Soap"],
                          "brand": ["Acme", None], "categories": ["Makeup|Lips", "Bath"]})
    prompts = item_prompts(items, "Beauty")
    assert prompts[0] == ("The Beauty item has the following attributes: \n title: Red "
                          "lipstick; brand: Acme; categories: Makeup, Lips;")
    assert "brand" not in prompts[1]


def test_items_without_text_are_named():
    items = pd.DataFrame({"item_id": ["a", "b"], "title": ["x", ""]})
    with pytest.raises(ValueError, match=r"1 item\(s\) in items.csv.gz have no text.*\['b'\]"):
        item_prompts(items, "Toy")


def one_line_error(capsys):
    """The single stderr line of a failed ace-bench run (the filter report may precede it)."""
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith("ace-bench: error: "), err
    assert not any("Traceback" in line for line in err)
    return err[-1]


def test_bad_folders_stop_before_training(folder, tmp_path, capsys):
    out = tmp_path / "out"
    np.save(folder / "emb_bad.npy", np.zeros((3, 24), dtype=np.float32))
    assert main(["--data", str(folder), "--embeddings", str(folder / "emb_bad.npy"),
                 "--out", str(out)]) == 2
    assert one_line_error(capsys) == (
        f"ace-bench: error: {folder / 'emb_bad.npy'}: has shape (3, 24), but "
        f"{folder / 'items.csv.gz'} has 20 items; it needs one row per item, in the same order.")
    (folder / "items.csv.gz").rename(folder / "items.bak")
    assert main(["--data", str(folder), "--out", str(out)]) == 2
    assert one_line_error(capsys).startswith(
        f"ace-bench: error: {folder / 'items.csv.gz'}: no such file")
    pd.DataFrame({"id": [1]}).to_csv(folder / "items.csv.gz", index=False)
    assert main(["--data", str(folder), "--out", str(out)]) == 2
    assert one_line_error(capsys).startswith(
        f"ace-bench: error: {folder / 'items.csv.gz'}: lacks column(s) ['item_id']")
    assert not out.exists()


def test_end_to_end_and_resume(folder, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["--data", str(folder), "--embeddings", str(folder / "emb.npy"), "--out", str(out),
            "--methods", "id,ace", "--backbones", "sasrec,gru4rec", "--seeds", "0,1",
            "--max-epochs", "1", "--k-core", "1", "--param", "ace.lam=5",
            "--window-stride", "3", "--hidden-size", "16", "--max-len", "8", "--lr", "1e-3"]
    assert main(argv) == 0
    results = pd.read_csv(out / "results.csv")
    assert len(results) == 2 * 2 * 2 * 2  # methods x backbones x seeds x splits
    assert {"method", "backbone", "seed", "split", "recall@10", "ndcg@10", "recall@20",
            "ndcg@20", "epochs", "seconds"} <= set(results.columns)
    table = (out / "results.md").read_text()
    assert "### sasrec" in table and "| ace | 0.001 | 2 |" in table
    assert (out / "spectrum.csv").exists()
    assert not list((out / "checkpoints").glob("*.pt"))
    # A second run finds every cell done and recomputes nothing.
    before = (out / "results.csv").read_text()
    capsys.readouterr()
    assert main(argv) == 0
    assert (out / "results.csv").read_text() == before
    assert "seed 0" not in capsys.readouterr().err


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_builds_a_table_of_the_right_shape(method):
    from recmodels import build_sequences

    data = build_sequences(synthetic_log(n_users=50, n_items=40), k_core=1)
    E = np.random.default_rng(0).standard_normal((data.n_items, 32)).astype(np.float32) + 1
    table = build_table(method, E, data, hidden=16,
                        overrides={"n_groups": 4} if method == "whitenplus" else None)
    weights = table()
    assert weights.shape == (data.n_items + 1, 16)
    assert torch_all_finite(weights)


def torch_all_finite(tensor):
    import torch

    return bool(torch.isfinite(tensor).all())


def test_unknown_method_setting_is_rejected():
    from recmodels import build_sequences

    data = build_sequences(synthetic_log(), k_core=1)
    with pytest.raises(ValueError, match=r"method 'ace' has no setting\(s\) \['lamda'\]"):
        build_table("ace", np.ones((data.n_items, 8)), data, 8, {"lamda": 1.0})
    with pytest.raises(ValueError, match=r"init='zeros' must be one of \['normal', 'xavier'\]"):
        build_table("id", np.ones((data.n_items, 8)), data, 8, {"init": "zeros"})


def test_a_method_that_can_not_be_built_stops_the_run_before_any_cell(tmp_path, monkeypatch):
    from recmodels import build_sequences
    from recmodels.comparison import ComparisonPlan, run_comparison
    from recmodels.comparison import runner
    from recmodels.comparison.inputs import InputError

    def train(*args, **kwargs):
        raise AssertionError("a cell trained before the plan was checked")

    monkeypatch.setattr(runner.Trainer, "fit", train)
    data = build_sequences(synthetic_log(), k_core=1)
    E = np.random.default_rng(0).standard_normal((data.n_items, 6)).astype(np.float32)
    # id would train first; ace's table can not have 8 columns from 6.
    plan = ComparisonPlan(["id", "ace"], ["sasrec"], [0], hidden_size=8, max_len=5, lr=1e-3,
                          k_core=1, device="cpu")
    with pytest.raises(InputError, match="method 'ace' reshapes the embeddings to 8 columns, "
                                         "but they have 6"):
        run_comparison(plan, data, E, tmp_path / "out", verbose=False)
    assert not (tmp_path / "out").exists()


def test_kept_models_rank_as_their_cells_did(tmp_path):
    from recmodels import build_sequences, load_folder
    from recmodels.comparison.runner import load_results
    from recmodels.comparison.runs import load_model, load_ranks
    from recmodels.evaluation import rank_targets

    folder = toy_folder(tmp_path / "toy")
    out = tmp_path / "out"
    assert main(toy_argv(folder, out, "--methods", "id,alphafuse", "--lr", "1e-3",
                         "--max-epochs", "2", "--keep-models")) == 0
    data = build_sequences(load_folder(folder)[0], k_core=1)
    cells = load_results(out / "results.csv").query("split == 'test'")
    assert len(cells) == 2
    for key in cells["fingerprint"]:
        model = load_model(out, key)
        # The model kept is the restored best epoch's: it ranks every test user as the cell.
        np.testing.assert_array_equal(rank_targets(model, data, "test"),
                                      load_ranks(out, key, "test"))
    # Without --keep-models nothing is kept, and the loader says how to get one.
    plain = tmp_path / "plain"
    assert main(toy_argv(folder, plain, "--methods", "id", "--lr", "1e-3",
                         "--max-epochs", "1")) == 0
    key = load_results(plain / "results.csv")["fingerprint"].iloc[0]
    with pytest.raises(FileNotFoundError, match="only with --keep-models"):
        load_model(plain, key)


@pytest.mark.parametrize("seeds", [[-1], [2**32], [0, 1.5], [True]])
def test_a_plan_refuses_seeds_numpy_and_torch_would_not_take(seeds):
    from recmodels.comparison.plan import ComparisonPlan
    with pytest.raises(ValueError, match=r"seeds=.* must be integers from 0 to 2\*\*32 - 1"):
        ComparisonPlan(["id"], ["sasrec"], seeds, lr=1e-3)
    seeds = ComparisonPlan(["id"], ["sasrec"], [0, np.int64(2)], lr=1e-3).seeds
    assert seeds == [0, 2] and all(type(seed) is int for seed in seeds)

"""The cold-start protocol: new items never reach training, join the catalogue at evaluation."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from ace_transform import ACETransformer, AlphaFuseSplitter, PCAInit, RecPCA, __version__
from recmodels import BERT4Rec, GRU4Rec, SASRec, TrainableTable, Trainer, build_sequences
from recmodels.batching import eval_batch
from recmodels.cold_start import (
    choose_new_items,
    cold_start_split,
    first_seen_times,
    fit_warm_map,
    map_new_rows,
)
from recmodels.comparison import ComparisonPlan, build_table
from recmodels.comparison.cli import main
from recmodels.comparison.methods import METHODS
from recmodels.comparison.report import per_user_test_metrics
from recmodels.comparison.plan import backbone_settings, cell_settings
from recmodels.comparison.runs import load_ranks
from recmodels.provenance import fingerprint
from recmodels.trainer import resolve_device
from recmodels_helpers import synthetic_log, toy_argv, toy_folder

HIDDEN = 16


def small(backbone, table):
    extra = {} if backbone is GRU4Rec else {"inner_size": 16}
    return backbone(table, max_len=8, **extra)
# fit_warm_map at its default reg (1e-3) on a well-conditioned affine fixture: the
# tolerance on the relative Frobenius error of the rows it reproduces (measured ~1e-3).
MAP_TOLERANCE = 5e-3


@pytest.fixture(scope="module")
def data():
    return build_sequences(synthetic_log(n_users=60, n_items=30), k_core=1)


@pytest.fixture(scope="module")
def split(data):
    return cold_start_split(data, choose_new_items(data, 0.2, "random", seed=3))


def training_parts(data):
    """Each user's training part (everything before the validation target), as lists."""
    return [data.items[start:end - 2].tolist()
            for start, end in zip(data.offsets[:-1], data.offsets[1:])]


def test_latest_items_are_those_first_seen_last_and_random_is_seeded(data):
    log = synthetic_log(n_users=60, n_items=30)
    log["timestamp"] = log["position"] * 7 + log["user_id"].str[1:].astype(int) % 5
    log = log.drop(columns="position")
    data = build_sequences(log, k_core=1)
    first = log.groupby("item_id")["timestamp"].min()
    new = choose_new_items(data, 0.1, first_seen=first_seen_times(log, data))
    assert new.size == 3
    chosen = set(data.item_ids[new - 1])
    assert first[list(chosen)].min() >= first.drop(list(chosen)).max()
    draw = choose_new_items(data, 0.1, "random", seed=1)
    assert np.array_equal(draw, choose_new_items(data, 0.1, "random", seed=1))
    assert not np.array_equal(draw, choose_new_items(data, 0.1, "random", seed=2))
    with pytest.raises(ValueError, match="needs a 'timestamp' column"):
        first_seen_times(synthetic_log(), data)
    with pytest.raises(ValueError, match=r"share=0 must be in \(0, 0.5\]"):
        choose_new_items(data, 0.0, "random")


def test_the_warm_view_drops_new_items_from_training_parts_only(data, split):
    new = set(split.new_items.tolist())
    original = training_parts(data)
    assert any(new & set(part) for part in original)  # the removal is not vacuous
    kept = np.isin(data.user_ids, split.data.user_ids)
    expected = [[i for i in part if i not in new] for part, k in zip(original, kept) if k]
    assert training_parts(split.data) == expected
    assert split.removed_interactions == sum(len(p) for p in original) - sum(
        len(p) for p in expected) - sum(len(p) for p, k in zip(original, kept) if not k)
    for name in ("valid", "test"):  # held-out targets, new ones included, stay as they were
        assert np.array_equal(eval_batch(split.data, name, 50).targets,
                              eval_batch(data, name, 50).targets[kept])
    assert split.target_is_new("test").any() and split.target_is_new("valid").any()
    # The test input ends with the validation item, new or not.
    test_input = eval_batch(split.data, "test", 50)
    last = test_input.inputs[np.arange(split.data.n_users), test_input.lengths - 1]
    assert np.array_equal(last, eval_batch(split.data, "valid", 50).targets)


def test_a_user_left_without_warm_training_items_is_dropped():
    log = pd.DataFrame({"user_id": ["a"] * 4 + ["b"] * 3,
                        "item_id": ["x", "y", "z", "w", "z", "y", "w"],
                        "position": [0, 1, 2, 3, 0, 1, 2]})
    data = build_sequences(log, k_core=1)  # items w x y z -> 1 2 3 4
    split = cold_start_split(data, [4])  # z: user b's only training item
    assert split.data.user_ids.tolist() == ["a"] and split.dropped_users == 1
    assert training_parts(split.data) == [[2, 3]]


@pytest.mark.parametrize("backbone", [SASRec, GRU4Rec, BERT4Rec])
def test_no_interaction_with_a_new_item_reaches_a_training_batch(split, data, backbone):
    model = small(backbone, TrainableTable(data.n_items, HIDDEN))
    model.exclude_from_training(split.new_items)
    seen = []
    loss = model.loss

    def recording_loss(items, targets):
        seen.append((items.clone(), targets.clone()))
        return loss(items, targets)

    model.loss = recording_loss
    Trainer(model, split.data, max_epochs=2, batch_size=32, verbose=False).fit()
    items = torch.cat([i.flatten() for i, _ in seen])
    targets = torch.cat([t.flatten() for _, t in seen])
    assert (targets > 0).sum() > 100  # real batches were checked
    new = torch.as_tensor(split.new_items)
    assert not torch.isin(items, new).any() and not torch.isin(targets, new).any()
    # The same model on the standard data would have met them.
    assert torch.isin(model.training_windows(data), new).any()


class Recorder:
    def __init__(self, monkeypatch, cls):
        self.calls, original = [], cls.fit

        def fit(estimator, X, *args, **kwargs):
            self.calls.append((np.array(X, copy=True), kwargs.get("sequences")))
            return original(estimator, X, *args, **kwargs)

        monkeypatch.setattr(cls, "fit", fit)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_reshapers_are_fitted_without_the_new_rows(method, split, data, monkeypatch):
    rng = np.random.default_rng(0)
    E = rng.standard_normal((data.n_items, 32)).astype(np.float32) + 1
    moved = E.copy()
    new_rows = split.new_items - 1
    moved[new_rows] = rng.standard_normal((new_rows.size, 32)) * 5 - 3
    recorders = [Recorder(monkeypatch, cls)
                 for cls in (ACETransformer, PCAInit, RecPCA, AlphaFuseSplitter)]
    overrides = {"n_groups": 4} if method == "whitenplus" else None

    def initial_table(matrix):
        torch.manual_seed(0)
        table = build_table(method, matrix, split.data, HIDDEN, overrides,
                            fit_rows=split.warm_rows)
        return table().detach()[1:]

    before, after = initial_table(E), initial_table(moved)
    # Whatever the new rows hold, the warm rows come out the same: they never entered a fit.
    assert torch.equal(before[split.warm_rows], after[split.warm_rows])
    if method != "id":  # the new rows are made from their text
        assert not torch.allclose(before[new_rows], after[new_rows])
    calls = [call for recorder in recorders for call in recorder.calls]
    for X, sequences in calls:
        assert X.shape[0] == split.warm_rows.sum()
        if sequences is not None:  # Rec-PCA's graph: warm rows only, in the fitted rows' order
            assert np.concatenate(sequences).max() < X.shape[0]
    if method in ("ace", "pca", "llmemb", "alphafuse"):  # one fit per table built
        assert [X.tolist() for X, _ in calls] == [E[split.warm_rows].tolist(),
                                                   moved[split.warm_rows].tolist()]
    if method == "recpca":  # fitted on the normalised warm rows, with the warm graph
        assert len(calls) == 2 and all(sequences is not None for _, sequences in calls)


@pytest.mark.parametrize("method", sorted(set(METHODS) - {"id"}))
def test_a_new_item_with_a_warm_items_text_gets_that_items_row(method, split, data):
    E = np.random.default_rng(0).standard_normal((data.n_items, 32)).astype(np.float32) + 1
    new_row, warm_row = split.new_items[0] - 1, np.flatnonzero(split.warm_rows)[0]
    E[new_row] = E[warm_row]  # transform is the fitted map itself, applied to the new row
    torch.manual_seed(0)
    table = build_table(method, E, split.data, HIDDEN,
                        {"n_groups": 4} if method == "whitenplus" else None,
                        fit_rows=split.warm_rows)
    rows = (table.semantic if method == "alphafuse" else table()[1:]).detach()
    torch.testing.assert_close(rows[new_row], rows[warm_row], rtol=0, atol=1e-5)
    if method == "alphafuse":  # its ID residual, the only trained part, starts at zero
        assert torch.count_nonzero(table.residual[split.new_items - 1]) == 0


@pytest.mark.parametrize("backbone", [SASRec, GRU4Rec, BERT4Rec])
def test_training_candidates_exclude_new_items_and_evaluation_includes_them(split, backbone):
    torch.manual_seed(0)
    model = small(backbone, TrainableTable(split.data.n_items, HIDDEN))
    model.eval()  # no dropout: the two losses below see the same network
    windows = model.training_windows(split.data)[:64]
    items, targets = model.training_batch(windows, torch.Generator().manual_seed(0))
    items, targets = items.long(), targets.long()
    free = model.loss(items, targets)
    model.exclude_from_training(split.new_items)
    excluded = model.loss(items, targets)
    excluded.backward()
    grad = model.item_table.weight.grad
    new_rows = torch.as_tensor(split.new_items - 1)
    assert excluded < free  # fewer candidates in every softmax normaliser
    assert torch.count_nonzero(grad[new_rows]) == 0
    assert torch.count_nonzero(grad) > 0
    # Evaluation ranks over every item, the new ones included, exactly as without exclusion.
    batch = eval_batch(split.data, "test", model.context_len)
    scores = model.predict(torch.from_numpy(batch.inputs), torch.from_numpy(batch.lengths))
    assert torch.isfinite(scores[:, split.new_items]).all()
    model.exclude_from_training(None)
    again = model.predict(torch.from_numpy(batch.inputs), torch.from_numpy(batch.lengths))
    assert torch.equal(scores, again)


def test_new_rows_of_a_trained_table_are_still_their_initial_rows(split):
    init = np.random.default_rng(1).standard_normal((split.data.n_items, HIDDEN)) * 0.1
    model = SASRec(TrainableTable(split.data.n_items, HIDDEN, init=init), max_len=8,
                   inner_size=16)
    model.exclude_from_training(split.new_items)
    Trainer(model, split.data, max_epochs=2, lr=1e-2, verbose=False).fit()
    weight, initial = model.item_table.weight.detach(), model.item_table.initial_rows
    new_rows = split.new_items - 1
    assert torch.equal(weight[new_rows], initial[new_rows])  # never pushed down as negatives
    assert not torch.allclose(weight[split.warm_rows], initial[split.warm_rows])


def test_the_warm_map_reproduces_the_rows_it_was_fitted_on():
    rng = np.random.default_rng(0)
    initial = rng.standard_normal((240, 8))
    A = np.linalg.qr(rng.standard_normal((8, 8)))[0] * rng.uniform(0.5, 2, 8)
    trained = initial @ A + rng.standard_normal(8)
    fitted, held_out = slice(0, 200), slice(200, None)
    warm_map = fit_warm_map(initial[fitted], trained[fitted])
    for rows in (fitted, held_out):
        error = np.linalg.norm(warm_map(initial[rows]) - trained[rows])
        assert error / np.linalg.norm(trained[rows]) < MAP_TOLERANCE
    exact = fit_warm_map(initial[fitted], trained[fitted], reg=0.0)
    np.testing.assert_allclose(exact(initial[held_out]), trained[held_out], atol=1e-10)
    # Applied to a table: the new rows become the map of their initial rows, the rest stays.
    table = TrainableTable(240, 8, init=initial)
    new = np.arange(201, 241)  # model indices of rows 200..239
    with torch.no_grad():
        table.weight[fitted] = torch.as_tensor(trained[fitted], dtype=torch.float32)
    warm_map = map_new_rows(table, new)
    rows = table.weight.detach().double().numpy()
    np.testing.assert_allclose(rows[held_out], warm_map(initial[held_out]), atol=1e-5)
    np.testing.assert_allclose(rows[fitted], trained[fitted], atol=1e-6)
    relative = np.linalg.norm(rows[held_out] - trained[held_out]) / np.linalg.norm(
        trained[held_out])
    assert relative < MAP_TOLERANCE
    with pytest.raises(ValueError, match="has no initial rows"):
        map_new_rows(TrainableTable(5, 2), [5])


def cell_settings_before_cold_start(plan, method, backbone, seed, lr, inputs):
    """``cell_settings`` as it was before the cold-start protocol, frozen here."""
    return {"method": method,
            "method_settings": {**METHODS[method].defaults, **plan.overrides.get(method, {})},
            "backbone": backbone, "hidden_size": plan.hidden_size, "max_len": plan.max_len,
            "lr": lr, "max_epochs": plan.max_epochs, "patience": plan.patience,
            "batch_size": plan.batch_size, "window_stride": plan.window_stride,
            "k_core": plan.k_core, "seed": seed, "device": resolve_device(plan.device).type,
            **backbone_settings(method, backbone), **inputs, "version": __version__}


# GRU4Rec's id cells changed on purpose (their ID table is now Xavier-normal, as RecBole's).
@pytest.mark.parametrize("method, backbone", [("id", "sasrec"), ("pca", "gru4rec"),
                                              ("ace", "gru4rec")])
def test_the_standard_protocol_keeps_its_fingerprints(method, backbone):
    inputs = {"data": "d" * 16, "embeddings": "e" * 16}
    plan = ComparisonPlan([method], [backbone], [0], lr=1e-3)
    args = (plan, method, backbone, 0, 1e-3, inputs)
    assert fingerprint(cell_settings(*args)) == fingerprint(
        cell_settings_before_cold_start(*args))
    cold = ComparisonPlan([method], [backbone], [0], lr=1e-3, protocol="cold-start",
                          cold_share=0.2, cold_choice="random")
    settings = cell_settings(cold, method, backbone, 0, 1e-3, inputs)
    assert settings["protocol"] == "cold-start"
    assert settings["cold_start"] == {"share": 0.2, "choice": "random", "seed": 0,
                                      "map_reg": 1e-3}


def last_error(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith("ace-bench: error: ") and "Traceback" not in "".join(err)
    return err[-1]


@pytest.fixture
def folder(tmp_path):
    return toy_folder(tmp_path / "toy")


def cold_argv(folder, out, *extra):
    return toy_argv(folder, out, "--max-epochs", "1", "--lr", "1e-3", *extra)


@pytest.mark.parametrize("share", ["0", "1", "-0.1", "0.6", "ten"])
def test_a_bad_cold_share_is_one_clear_error(folder, tmp_path, capsys, share):
    out = tmp_path / "out"
    assert main(cold_argv(folder, out, "--protocol", "cold-start", "--cold-share", share)) == 2
    assert last_error(capsys) == (
        f"ace-bench: error: --cold-share {share}: not a share in (0, 0.5] of the items; most "
        "items must stay warm to train on. Write e.g. --cold-share 0.1.")
    assert not out.exists()


def test_cold_start_options_are_checked_before_training(folder, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(cold_argv(folder, out, "--cold-share", "0.2")) == 2
    assert "--cold-share 0.2: applies to --protocol cold-start only" in last_error(capsys)
    assert main(cold_argv(folder, out, "--protocol", "cold-start")) == 2  # latest by default
    message = last_error(capsys)
    assert "--cold-choice latest:" in message and "Pass --cold-choice random" in message
    assert main(cold_argv(folder, out, "--protocol", "cold-start", "--cold-choice", "random",
                          "--cold-share", "0.01")) == 2
    assert "selects no item; raise share to at least 0.05" in last_error(capsys)
    assert not out.exists()


def test_end_to_end_cold_start_writes_the_new_item_rows(folder, tmp_path, capsys):
    out = tmp_path / "out"
    argv = cold_argv(folder, out, "--methods", "id,ace", "--protocol", "cold-start",
                     "--cold-share", "0.2", "--cold-choice", "random")
    assert main(argv) == 0
    results = pd.read_csv(out / "results.csv", dtype={"fingerprint": str})
    assert sorted(zip(results["method"], results["split"])) == sorted(
        (m, s) for m in ("id", "ace", "ace+map") for s in ("valid", "test", "test-new"))
    settings = json.loads(results["settings"].iloc[0])
    assert settings["protocol"] == "cold-start" and "new_items" in settings
    table = (out / "results.md").read_text()
    assert "Users whose test target is a new item" in table and "| ace+map |" in table
    for (method, key), rows in results.groupby(["method", "fingerprint"]):
        new_rows = rows[rows["split"] == "test-new"]
        per_user = per_user_test_metrics(new_rows, out, "test-new")
        all_users = load_ranks(out, key, "test" + ("+map" if "+map" in method else ""))
        assert 0 < per_user["ndcg@10"].size < all_users.size
        assert per_user["ndcg@10"].mean() == pytest.approx(new_rows["ndcg@10"].iloc[0])
    # A second run finds every cell done.
    before = (out / "results.csv").read_text()
    capsys.readouterr()
    assert main(argv) == 0
    assert (out / "results.csv").read_text() == before
    assert "seed 0" not in capsys.readouterr().err
    # The dry run prints the same tables (all users, new-target users, +map rows).
    assert main([*argv, "--dry-run"]) == 0
    printed = capsys.readouterr().out.split("The finished cells so far:\n\n")[1]
    written = table.split("\n\n", 1)[1]
    assert printed.split("\n\nTraining: ")[0] == written.split("\n\nTraining: ")[0]
    assert "Users whose test target is a new item" in printed

"""Metrics against a brute-force loop, and the trainer's seeds, checkpoints and errors."""

import math

import numpy as np
import pytest
import torch

from recmodels import (
    BERT4Rec,
    GRU4Rec,
    SASRec,
    TrainableTable,
    Trainer,
    TrainingDivergedError,
    build_sequences,
    evaluate,
    ranking_metric_sums,
)
from recmodels.metrics import mask_history
from recmodels_helpers import synthetic_log


def test_vectorised_metrics_equal_brute_force():
    gen = torch.Generator().manual_seed(0)
    scores = torch.randn(64, 40, generator=gen)
    scores[:, 0] = float("-inf")
    targets = torch.randint(1, 40, (64,), generator=gen)
    history = torch.randint(0, 40, (64, 6), generator=gen)
    for masked in (False, True):
        s = scores.clone()
        if masked:
            mask_history(s, history, targets)
        sums = ranking_metric_sums(s, targets, ks=(1, 5, 10))
        for k in (1, 5, 10):
            recall = ndcg = 0.0
            for row in range(64):
                row_scores = scores[row].clone()
                if masked:
                    for item in history[row].tolist():
                        if item != targets[row]:
                            row_scores[item] = float("-inf")
                rank = int((row_scores > row_scores[targets[row]]).sum())
                if rank < k:
                    recall += 1
                    ndcg += 1 / math.log2(rank + 2)
            assert float(sums[f"recall@{k}"]) == pytest.approx(recall)
            assert float(sums[f"ndcg@{k}"]) == pytest.approx(ndcg, rel=1e-6)


def test_target_ranks_follow_the_tie_rule_with_ties_infinities_and_nan():
    from recmodels.metrics import target_ranks

    gen = torch.Generator().manual_seed(1)
    scores = torch.randint(0, 5, (50, 30), generator=gen).float()  # many ties
    scores[:, 0] = float("-inf")
    scores[::7, 3] = float("-inf")
    targets = torch.randint(1, 30, (50,), generator=gen)
    scores[4, targets[4]] = float("nan")
    expected = []
    for row in range(50):
        target_score = float(scores[row, targets[row]])
        others = [float(v) for i, v in enumerate(scores[row]) if i != targets[row]]
        expected.append(29 if math.isnan(target_score)
                        else sum(v >= target_score for v in others))
    assert target_ranks(scores, targets).tolist() == expected


@pytest.fixture(scope="module")
def data():
    return build_sequences(synthetic_log(n_users=60, n_items=20), k_core=1)


def make_model(data, backbone=SASRec, **kw):
    torch.manual_seed(0)
    table = TrainableTable(data.n_items, 16)
    if backbone is GRU4Rec:
        return GRU4Rec(table, max_len=10, gru_hidden_size=16, **kw)
    return backbone(table, max_len=10, inner_size=32, **kw)


# BERT4Rec learns this toy from cloze masks on its prefixes more slowly; it gets more epochs.
LEARNING_SETTINGS = {
    SASRec: ({}, dict(lr=5e-3, batch_size=64, max_epochs=15)),
    GRU4Rec: ({}, dict(lr=5e-3, batch_size=64, max_epochs=15)),
    BERT4Rec: ({"hidden_dropout": 0.0, "attn_dropout": 0.0},
               dict(lr=5e-3, batch_size=64, max_epochs=60)),
}


@pytest.mark.parametrize("backbone", [SASRec, GRU4Rec, BERT4Rec])
def test_training_learns_and_repeats_with_a_seed(data, backbone):
    model_kw, train_kw = LEARNING_SETTINGS[backbone]
    runs = [
        Trainer(make_model(data, backbone, **model_kw), data, patience=1000, verbose=False,
                seed=3, **train_kw).fit()
        for _ in range(2)
    ]
    assert runs[0].test == runs[1].test
    assert runs[0].history[-1]["loss"] < runs[0].history[0]["loss"]
    # The walks are predictable: far better than the 10/20 a random ranking gets.
    assert runs[0].best_valid["recall@10"] > 0.8
    assert runs[0].best_epoch == max(runs[0].history, key=lambda h: h["ndcg@10"])["epoch"]


def test_kill_and_resume_gives_the_same_result(data, tmp_path):
    settings = dict(lr=5e-3, batch_size=64, patience=100, verbose=False, seed=1)
    straight = Trainer(make_model(data), data, max_epochs=6, **settings).fit()
    path = tmp_path / "ckpt.pt"
    Trainer(make_model(data), data, max_epochs=3, checkpoint_path=path, **settings).fit()
    assert path.exists() and not list(tmp_path.glob("*.tmp"))
    resumed = Trainer(make_model(data), data, max_epochs=6, checkpoint_path=path, **settings).fit()
    assert resumed.epochs_run == 6
    assert resumed.test == straight.test
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in straight.history]


def test_nan_loss_stops_with_clear_error_and_keeps_checkpoint(data, tmp_path):
    path = tmp_path / "ckpt.pt"
    model = make_model(data)
    seen = {"validated": False, "checkpoint": None}

    def nan_after_the_first_epoch(module, inputs, output):
        # Validation runs the table in eval mode once epoch 1 is trained and before its
        # checkpoint is written; every training step after that gets a NaN item table.
        if not module.training:
            seen["validated"] = True
            return None
        if seen["validated"]:
            if seen["checkpoint"] is None:  # epoch 2 starts: epoch 1's checkpoint is on disk
                seen["checkpoint"] = path.read_bytes()
            return output * float("nan")
        return None

    hook = model.item_table.register_forward_hook(nan_after_the_first_epoch)
    trainer = Trainer(model, data, max_epochs=3, patience=100, checkpoint_path=path,
                      verbose=False)
    with pytest.raises(TrainingDivergedError, match="in epoch 2; lower the learning rate") as info:
        trainer.fit()
    hook.remove()
    assert str(path) in str(info.value)
    # The error carries what ace-bench records of a diverged cell.
    assert info.value.epoch == 2 and [h["epoch"] for h in info.value.history] == [1]
    assert info.value.seconds > info.value.history[0]["seconds"] > 0
    # The file is still the one written after the good epoch 1, byte for byte ...
    assert seen["checkpoint"] is not None
    assert path.read_bytes() == seen["checkpoint"]
    # ... and it loads: a run with the same settings resumes from it after epoch 1.
    fresh = make_model(data)
    resumed = Trainer(fresh, data, max_epochs=1, patience=100, checkpoint_path=path,
                      verbose=False).fit()
    assert resumed.epochs_run == 1 and resumed.best_epoch == 1
    assert [h["epoch"] for h in resumed.history] == [1]
    assert math.isfinite(resumed.history[0]["loss"])
    assert all(bool(torch.isfinite(weights).all()) for weights in fresh.parameters())
    assert path.read_bytes() == seen["checkpoint"]  # resuming a finished run writes nothing


def test_masking_seen_items_changes_only_when_asked(data):
    model = make_model(data)
    plain = Trainer(model, data, max_epochs=1, verbose=False).evaluate("test")
    masked = Trainer(model, data, max_epochs=1, verbose=False, mask_seen=True).evaluate("test")
    assert set(plain) == set(masked)
    assert masked["recall@10"] >= plain["recall@10"] - 1e-12


def test_masked_ranks_equal_a_per_user_count_over_the_unseen_items(data):
    from recmodels.batching import eval_batch
    from recmodels.evaluation import rank_targets

    model = make_model(data).eval()
    ranks = rank_targets(model, data, "test", mask_seen=True, batch_size=7)  # several batches
    batch = eval_batch(data, "test", model.context_len)
    with torch.no_grad():
        scores = model.predict(torch.from_numpy(batch.inputs), torch.from_numpy(batch.lengths))
    for user, (start, end) in enumerate(zip(data.offsets[:-1], data.offsets[1:])):
        target = int(data.items[end - 1])
        row = scores[user].clone()
        seen = [int(i) for i in data.items[start : end - 1] if i != target]
        row[seen] = float("-inf")
        assert ranks[user] == int((row >= row[target]).sum()) - 1, user
    assert (ranks <= rank_targets(model, data, "test", batch_size=7)).all()


def test_unknown_metric_is_rejected(data):
    with pytest.raises(ValueError, match="metric='auc'"):
        Trainer(make_model(data), data, metric="auc")


@pytest.mark.parametrize("arguments, message", [
    ({"n_items": -3}, "the model's item table has 22 items but the data has 25"),
    ({"n_items": +3}, "the model's item table has 28 items but the data has 25"),
    ({"lr": 0.0}, "lr=0.0 must be a finite number above 0"),
    ({"lr": float("nan")}, "lr=nan must be a finite number above 0"),
    ({"batch_size": 0}, "batch_size=0 must be a positive integer"),
    ({"patience": 1.5}, "patience=1.5 must be a positive integer"),
    ({"ks": (0, 10)}, r"ks=\(0, 10\) must be positive integers"),
    ({"weight_decay": -1e-4}, "weight_decay=-0.0001 must be a finite number of at least 0"),
    ({"seed": -1}, r"seed=-1 must be an integer from 0 to 2\*\*32 - 1"),
    ({"seed": 2**32}, r"seed=4294967296 must be an integer from 0 to 2\*\*32 - 1"),
    ({"device": "cuda"}, "device='cuda': this torch .* sees no CUDA device"),
])
def test_bad_trainer_arguments_fail_before_any_work(arguments, message):
    if arguments.get("device") == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    data = build_sequences(synthetic_log(), k_core=1)
    assert data.n_items == 25
    n_items = data.n_items + arguments.pop("n_items", 0)
    model = SASRec(TrainableTable(n_items, 8), max_len=5, inner_size=16)
    with pytest.raises(ValueError, match=message):
        Trainer(model, data, verbose=False, **arguments)


@pytest.mark.parametrize("n_items, arguments, message", [
    (+2, {}, "the model's item table has 27 items but the data has 25"),
    (-2, {}, "the model's item table has 23 items but the data has 25"),
    (0, {"ks": ()}, r"ks=\(\) must be positive integers"),
    (0, {"ks": (0, 10)}, r"ks=\(0, 10\) must be positive integers"),
    (0, {"batch_size": 0}, "batch_size=0 must be a positive integer"),
])
def test_evaluate_alone_checks_its_arguments_like_the_trainer(n_items, arguments, message):
    data = build_sequences(synthetic_log(), k_core=1)
    model = SASRec(TrainableTable(data.n_items + n_items, 8), max_len=5, inner_size=16)
    with pytest.raises(ValueError, match=message):
        evaluate(model, data, "valid", **arguments)

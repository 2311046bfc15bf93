"""Trust: tie rule, float32 scoring, seeds that cover the model, checkpoint fingerprints."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from recmodels import SASRec, SequentialRecommender, TrainableTable, Trainer, build_sequences
from recmodels.evaluation import model_device, rank_targets
from recmodels.metrics import per_user_metrics, ranking_metric_sums, target_ranks
from recmodels.trainer import CheckpointMismatchError
from recmodels_helpers import synthetic_log


def brute_force_rank(row: list[float], target: int) -> int:
    """Other items scored at least as high as the target (NaN target: last)."""
    if np.isnan(row[target]):
        return len(row) - 1
    return sum(1 for item, s in enumerate(row) if item != target and s >= row[target])


def test_ties_count_against_the_target():
    gen = torch.Generator().manual_seed(0)
    # Scores on a coarse grid: most rows have ties at the target's score.
    scores = torch.randint(0, 4, (200, 30), generator=gen).float()
    scores[:, 0] = float("-inf")
    scores[5, 7] = float("nan")
    targets = torch.randint(1, 30, (200,), generator=gen)
    targets[5] = 7
    expected = [brute_force_rank(scores[r].tolist(), int(targets[r])) for r in range(200)]
    ranks = target_ranks(scores, targets)
    assert ranks.tolist() == expected
    assert sum(int((scores[r] == scores[r, targets[r]]).sum()) > 1 for r in range(200)) > 150
    sums = ranking_metric_sums(scores, targets, ks=(1, 5, 10))
    per_user = per_user_metrics(np.array(expected), ks=(1, 5, 10))
    for name, value in sums.items():
        assert float(value) == pytest.approx(per_user[name].sum(), rel=1e-6)


def test_a_constant_scorer_gets_no_credit():
    scores = torch.zeros(3, 11)
    scores[:, 0] = float("-inf")
    assert target_ranks(scores, torch.tensor([1, 5, 10])).tolist() == [9, 9, 9]


class ScaledMean(SequentialRecommender):
    """No matmul before scoring, so autocast could touch only the scoring itself."""

    def encode(self, items, weights):
        return weights[items].cumsum(dim=1)


def test_scores_are_float32_under_bfloat16_autocast():
    torch.manual_seed(0)
    data = build_sequences(synthetic_log(n_users=60, n_items=3000, min_len=3, max_len=5),
                           k_core=1)
    table = TrainableTable(data.n_items, 64)
    with torch.no_grad():  # close scores: bf16 (8 bits of mantissa) would tie many of them
        table.weight.mul_(0.01).add_(1.0)
    model = ScaledMean(table, max_len=5)
    plain = rank_targets(model, data, "test")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = rank_targets(model, data, "test")
        states = model.user_states(torch.tensor([[1, 2]]), torch.tensor([2]), table())
        bf16 = model.score(states, table())
    assert bf16.dtype == torch.bfloat16 and (bf16 == bf16.max()).sum() > 1  # ties would happen
    np.testing.assert_array_equal(mixed, plain)


def test_evaluation_runs_on_the_models_device():
    model = SASRec(TrainableTable(5, 8), max_len=4, inner_size=8)
    assert model_device(model) == torch.device("cpu")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    data = build_sequences(synthetic_log(n_users=20, n_items=5), k_core=1)
    model = SASRec(TrainableTable(data.n_items, 8), max_len=4, inner_size=8).cuda()
    assert rank_targets(model, data, "test").shape == (data.n_users,)


@pytest.fixture(scope="module")
def data():
    return build_sequences(synthetic_log(n_users=60, n_items=20), k_core=1)


def fresh_model(data, init=None):
    # No manual seed here on purpose: the trainer's seed must cover the initial weights.
    table = TrainableTable(data.n_items, 16, init=init)
    return SASRec(table, max_len=10, inner_size=32)


SETTINGS = dict(lr=5e-3, batch_size=64, patience=100, verbose=False, seed=4)


def test_the_seed_covers_separately_built_models(data):
    torch.manual_seed(123)
    first = Trainer(fresh_model(data), data, max_epochs=2, **SETTINGS).fit()
    torch.manual_seed(456)
    second = Trainer(fresh_model(data), data, max_epochs=2, **SETTINGS).fit()
    assert first.test == second.test
    assert first.fingerprint == second.fingerprint
    np.testing.assert_array_equal(first.test_ranks, second.test_ranks)
    other = Trainer(fresh_model(data), data, max_epochs=2, **{**SETTINGS, "seed": 5}).fit()
    assert other.fingerprint != first.fingerprint


def test_a_mismatched_checkpoint_is_refused_with_the_differences_named(data, tmp_path):
    path = tmp_path / "run.pt"
    Trainer(fresh_model(data), data, max_epochs=1, checkpoint_path=path, **SETTINGS).fit()
    saved = path.read_bytes()
    other_lr = Trainer(fresh_model(data), data, max_epochs=2, checkpoint_path=path,
                       **{**SETTINGS, "lr": 1e-3})
    with pytest.raises(CheckpointMismatchError, match=r"trainer\.lr: 0\.005 -> 0\.001"):
        other_lr.fit()
    init = np.random.default_rng(0).standard_normal((data.n_items, 16)).astype(np.float32)
    other_table = Trainer(fresh_model(data, init), data, max_epochs=2, checkpoint_path=path,
                          **SETTINGS)
    with pytest.raises(CheckpointMismatchError, match="initial_weights"):
        other_table.fit()
    assert path.read_bytes() == saved  # refusing touches nothing
    # Other stopping settings resume; restart=True starts over.
    longer = Trainer(fresh_model(data), data, max_epochs=2, checkpoint_path=path, **SETTINGS)
    assert longer.fit().epochs_run == 2
    restarted = Trainer(fresh_model(data), data, max_epochs=1, checkpoint_path=path,
                        restart=True, **{**SETTINGS, "lr": 1e-3}).fit()
    assert restarted.epochs_run == 1
    assert torch.load(path, weights_only=False)["settings"]["trainer"]["lr"] == 1e-3


SCRIPT = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, {tests!r})
    from recmodels import GRU4Rec, TrainableTable, Trainer, build_sequences
    from recmodels_helpers import synthetic_log
    data = build_sequences(synthetic_log(n_users=60, n_items=20), k_core=1)
    model = GRU4Rec(TrainableTable(data.n_items, 16), max_len=10, gru_hidden_size=16)
    result = Trainer(model, data, lr=5e-3, batch_size=64, max_epochs=2, seed=7,
                     verbose=False).fit()
    print(json.dumps(result.test))
""")


def test_the_same_seed_repeats_in_two_fresh_processes():
    from pathlib import Path

    script = SCRIPT.format(tests=str(Path(__file__).parent))
    outputs = [subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                              check=True).stdout for _ in range(2)]
    assert json.loads(outputs[0]) == json.loads(outputs[1])
    assert json.loads(outputs[0])["ndcg@10"] > 0

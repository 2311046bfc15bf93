"""The trainer under torchrun (2 CPU ranks, gloo) and the sharding helpers it relies on.

Run as a script (``python -m torch.distributed.run ... tests/test_distributed.py OUT CKPT
EPOCHS``), this file is the training script every rank executes; under pytest it
launches that script and checks what the ranks wrote.
"""

import gc
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from recmodels import SASRec, TrainableTable, Trainer, build_sequences, checkpoint, distributed
from recmodels.evaluation import rank_targets, scoring_order
from recmodels.trainer import CheckpointMismatchError
from recmodels_helpers import synthetic_log

# 9 batches per epoch (asserted odd below), so the ranks' shares need padding.
TRAIN = dict(lr=5e-3, batch_size=48, eval_batch_size=8, seed=1)


def small_data():
    return build_sequences(synthetic_log(n_users=60, n_items=20), k_core=1)


def small_model(data):
    return SASRec(TrainableTable(data.n_items, 16), max_len=5, inner_size=16)


def run_rank(out: Path, checkpoint_path: Path, max_epochs: int) -> None:
    """One rank's training script: train, and record what the trainer did on this rank."""
    data = small_data()
    model = small_model(data)
    trainer = Trainer(model, data, max_epochs=max_epochs, patience=100,
                      checkpoint_path=checkpoint_path, **TRAIN)
    batch_counts, steps, saves = [], [], []
    build_batches, loss, save = trainer._epoch_batches, model.loss, checkpoint.save_atomic

    def counted_batches(windows, generator):
        batches = build_batches(windows, generator)
        batch_counts.append(len(batches))
        steps.append(0)
        return batches

    def counted_loss(items, targets):
        steps[-1] += 1
        return loss(items, targets)

    def counted_save(state, path):
        saves.append(str(path))
        save(state, path)

    trainer._epoch_batches, model.loss, checkpoint.save_atomic = (
        counted_batches, counted_loss, counted_save)
    gc.disable()  # so that only fit itself can free the DDP wrapper's reference cycle
    result = trainer.fit()
    # A DDP wrapper still here would be freed at exit, after the process group, where gloo
    # can abort the process. Counted before gc.enable(), whose next allocation collects.
    ddp_left = sum(isinstance(o, torch.nn.parallel.DistributedDataParallel)
                   for o in gc.get_objects())
    gc.enable()
    torch.save({"world_size": distributed.world_size(), "ddp_left": ddp_left,
                "batch_counts": batch_counts, "steps": steps, "saves": saves,
                "test_ranks": result.test_ranks, "losses": [h["loss"] for h in result.history],
                "final_model": model.state_dict()},
               out / f"rank{distributed.rank()}.pt")


def torchrun(tmp_path: Path, name: str, checkpoint_path: Path, max_epochs: int):
    out = tmp_path / name
    out.mkdir()
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
               "--standalone", __file__, str(out), str(checkpoint_path), str(max_epochs)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300,
                          cwd=Path(__file__).parent)
    # The ranks' own errors come first; torchrun's summary of the failure ends the output.
    assert done.returncode == 0, done.stderr[:6000] + "\n...\n" + done.stderr[-1500:]
    ranks = [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(2)]
    return ranks, done.stderr


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    if not (torch.distributed.is_available() and torch.distributed.is_gloo_available()):
        pytest.skip("torch.distributed with the gloo backend is not available")
    tmp_path = tmp_path_factory.mktemp("torchrun")
    straight, _ = torchrun(tmp_path, "straight", tmp_path / "straight.pt", 4)
    first, first_log = torchrun(tmp_path, "first", tmp_path / "resumed.pt", 2)
    second, second_log = torchrun(tmp_path, "second", tmp_path / "resumed.pt", 4)
    return {"tmp": tmp_path, "straight": straight, "first": first, "second": second,
            "first_log": first_log, "second_log": second_log}


def test_distributed_evaluation_equals_one_process_on_the_same_weights(runs):
    ranks = runs["straight"]
    assert [r["world_size"] for r in ranks] == [2, 2]
    data = small_data()
    model = small_model(data)
    model.load_state_dict(ranks[0]["final_model"])
    alone = rank_targets(model, data, "test", batch_size=TRAIN["eval_batch_size"])
    # Exact: each user is scored in the same batch as in one process, so bit for bit.
    for rank in ranks:
        np.testing.assert_array_equal(rank["test_ranks"], alone)
    assert all(torch.equal(v, ranks[1]["final_model"][k])
               for k, v in ranks[0]["final_model"].items())


def test_resumed_run_equals_a_straight_run(runs):
    assert "resuming from" not in runs["first_log"]
    assert "resuming from" in runs["second_log"] and "after epoch 2" in runs["second_log"]
    log_epochs = [line.split()[1] for line in runs["second_log"].splitlines()
                  if line.startswith("epoch ")]
    assert log_epochs == ["3", "4"]
    straight = checkpoint.load(runs["tmp"] / "straight.pt")
    resumed = checkpoint.load(runs["tmp"] / "resumed.pt")
    # Exact equality, not allclose: the same CPU kernels and gloo's fixed two-rank sums run
    # in the same order, so anything less than bit-equal means state was lost on resume
    # (each rank's dropout RNG, the optimizer moments, the trainer's bookkeeping).
    for key, value in straight["model"].items():
        assert torch.equal(value, resumed["model"][key]), key
    losses = runs["straight"][0]["losses"]
    assert runs["first"][0]["losses"] == losses[:2] and len(losses) == 4
    assert runs["second"][0]["losses"] == losses  # the resumed history carries epochs 1-2
    assert [h["loss"] for h in resumed["trainer"]["history"]] == losses
    assert straight["trainer"]["best_epoch"] == resumed["trainer"]["best_epoch"]
    best_straight, best_resumed = runs["straight"][0], runs["second"][0]
    for key, value in best_straight["final_model"].items():
        assert torch.equal(value, best_resumed["final_model"][key]), key


def test_both_ranks_take_the_same_number_of_steps(runs):
    ranks = runs["straight"]
    counts = ranks[0]["batch_counts"]
    assert counts == ranks[1]["batch_counts"] and len(counts) == 4
    assert any(count % 2 for count in counts), counts  # the case that needs padding
    for rank in ranks:
        assert rank["steps"] == [math.ceil(count / 2) for count in counts]


def test_fit_frees_its_ddp_wrapper_before_returning(runs):
    assert [rank["ddp_left"] for rank in runs["straight"]] == [0, 0]


def test_only_rank_zero_writes_checkpoints(runs):
    for name, epochs in (("straight", 4), ("first", 2), ("second", 2)):
        zero, one = runs[name]
        assert len(zero["saves"]) == epochs and one["saves"] == []
    saved = checkpoint.load(runs["tmp"] / "straight.pt")
    assert saved["settings"]["trainer"]["world_size"] == 2
    assert not any(key.startswith("module.") for key in saved["model"])
    assert len(saved["rank_rng"]) == 2


def test_a_distributed_checkpoint_refuses_a_single_process_resume(runs):
    data = small_data()
    trainer = Trainer(small_model(data), data, max_epochs=4, patience=100, verbose=False,
                      checkpoint_path=runs["tmp"] / "straight.pt", **TRAIN)
    with pytest.raises(CheckpointMismatchError, match="world_size"):
        trainer.fit()


@pytest.mark.parametrize("n_ranks", [1, 2, 3, 4])
def test_batch_shards_are_equal_and_cover_every_batch(n_ranks):
    for n_batches in range(1, 12):
        shards = [distributed.shard_batches(list(range(n_batches)), r, n_ranks)
                  for r in range(n_ranks)]
        assert {len(shard) for shard in shards} == {math.ceil(n_batches / n_ranks)}
        trained = [batch for shard in shards for batch in shard]
        assert set(trained) == set(range(n_batches))
        assert len(trained) - n_batches < n_ranks


@pytest.mark.parametrize("n_ranks", [1, 2, 3, 5])
def test_user_shards_gather_every_user_exactly_once(n_ranks):
    for n_users in (1, 7, 8, 9, 40):
        for batch_size in (1, 3, 8):
            shards = distributed.user_shards(n_users, batch_size, n_ranks)
            assert len(shards) == n_ranks
            assert all(s.start % batch_size == 0 or s.start == n_users for s in shards)
            longest = max(s.stop - s.start for s in shards)
            values = np.arange(n_users) * 10
            padded = [np.pad(values[s], (0, longest - (s.stop - s.start)), constant_values=-1)
                      for s in shards]
            np.testing.assert_array_equal(distributed.join_shards(padded, shards), values)


def test_ranking_a_batch_aligned_share_of_users_is_bit_equal():
    data = small_data()
    torch.manual_seed(0)
    model = small_model(data)
    full = rank_targets(model, data, "valid", batch_size=8)
    order = scoring_order(data, "valid", model.context_len)
    for share in distributed.user_shards(data.n_users, 8, 3):
        part = rank_targets(model, data, "valid", batch_size=8, users=order[share])
        np.testing.assert_array_equal(part, full[order[share]])


if __name__ == "__main__":
    run_rank(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]))

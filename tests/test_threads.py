"""A CPU training step's threads: small operators on one, the item-logit loss on all."""


import numpy as np
import pytest
import torch

from recmodels import SASRec, TrainableTable, Trainer, build_sequences
from recmodels.models import _loss
from recmodels.models._loss import linear_cross_entropy
from recmodels.models._threads import (
    ONE_THREAD_WORK, all_threads, cpu_threads_mode, training_step_threads)
from recmodels_helpers import assert_clear_env_error, stdout_under_each, synthetic_log

split = pytest.mark.skipif(cpu_threads_mode() != "split",
                           reason="RECMODELS_CPU_THREADS=all in this environment")


@pytest.fixture
def two_threads():
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(previous)


@split
def test_a_step_runs_on_one_thread_and_the_loss_on_all(two_threads, monkeypatch):
    seen = {}
    real_mm, real_torch_mm = _loss.mm, torch.mm

    def forward_mm(*args, **kwargs):
        seen["forward"] = torch.get_num_threads()
        return real_mm(*args, **kwargs)

    def backward_mm(*args, **kwargs):
        seen.setdefault("backward", torch.get_num_threads())
        return real_torch_mm(*args, **kwargs)

    monkeypatch.setattr(_loss, "mm", forward_mm)
    states = torch.randn(5, 4, requires_grad=True)
    weights = torch.randn(9, 4, requires_grad=True)
    with training_step_threads("cpu", work=1):
        seen["step"] = torch.get_num_threads()
        loss = linear_cross_entropy(states, weights, torch.tensor([1, 2, 3, 4, 5]),
                                    n_classes=9, blocked=torch.tensor([0]))
        monkeypatch.setattr(torch, "mm", backward_mm)
        loss.backward()
        monkeypatch.setattr(torch, "mm", real_torch_mm)
        seen["after"] = torch.get_num_threads()
    assert seen == {"step": 1, "forward": 2, "backward": 2, "after": 1}
    assert torch.get_num_threads() == 2


@split
def test_the_count_comes_back_after_an_error(two_threads):
    with pytest.raises(RuntimeError, match="boom"):
        with training_step_threads("cpu", work=1):
            with all_threads():
                assert torch.get_num_threads() == 2
                raise RuntimeError("boom")
    assert torch.get_num_threads() == 2
    with all_threads():  # outside a step: nothing to give back
        assert torch.get_num_threads() == 2


def test_wide_steps_other_devices_and_one_thread_are_left_alone(two_threads):
    with training_step_threads("cpu", work=ONE_THREAD_WORK + 1):
        assert torch.get_num_threads() == 2
    with training_step_threads("cuda", work=1):
        assert torch.get_num_threads() == 2
    torch.set_num_threads(1)
    with training_step_threads("cpu", work=1), all_threads():
        assert torch.get_num_threads() == 1


@split
def test_trainer_steps_on_one_thread_and_leaves_the_count(two_threads):
    data = build_sequences(synthetic_log(n_users=30, n_items=15), k_core=1)
    torch.manual_seed(0)
    model = SASRec(TrainableTable(data.n_items, 8), max_len=6, inner_size=8)
    counts = []
    for module in model.modules():
        if isinstance(module, torch.nn.LayerNorm):
            module.register_forward_pre_hook(
                lambda *_: counts.append(torch.get_num_threads()))
    Trainer(model, data, max_epochs=1, batch_size=32, verbose=False).fit()
    assert counts and set(counts) == {1, 2}  # training steps on one, evaluation on both
    assert torch.get_num_threads() == 2


def test_modes_train_the_same_model_up_to_rounding():
    script = (
        "import torch; from recmodels import SASRec, TrainableTable, Trainer, build_sequences\n"
        "from recmodels.models._threads import cpu_threads_mode\n"
        "import sys; sys.path.insert(0, 'tests')\n"
        "from recmodels_helpers import synthetic_log\n"
        "torch.set_num_threads(2); torch.manual_seed(0)\n"
        "data = build_sequences(synthetic_log(n_users=40, n_items=20), k_core=1)\n"
        "model = SASRec(TrainableTable(data.n_items, 16), max_len=8, inner_size=16)\n"
        "run = Trainer(model, data, max_epochs=3, batch_size=32, lr=5e-3, verbose=False).fit()\n"
        "print(cpu_threads_mode(), repr(run.history[-1]['loss']))\n")
    words = stdout_under_each("RECMODELS_CPU_THREADS", ("split", "all"), script)
    assert [name for name, _ in words.values()] == ["split", "all"]
    assert np.isclose(float(words["split"][1]), float(words["all"][1]), rtol=1e-4)


def test_unknown_mode_is_a_clear_error():
    assert_clear_env_error("RECMODELS_CPU_THREADS", "some", "split")

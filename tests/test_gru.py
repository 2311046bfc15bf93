"""The CPU GRU recurrence: nn.GRU's outputs and gradients, threads restored, clear fallbacks."""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from recmodels import GRU4Rec, TrainableTable
from recmodels.models import _gru
from recmodels.models._gru import GRU, ONE_THREAD_ELEMENTS, cpu_backend, runs_here
from recmodels_helpers import assert_clear_env_error, stdout_under_each

ours = pytest.mark.skipif(cpu_backend() != "recmodels",
                          reason="RECMODELS_CPU_GRU=torch in this environment")


def outputs_and_gradients(gru, inputs, grad_out, grad_last, inputs_grad=True):
    inputs = inputs.clone().requires_grad_(inputs_grad)
    gru.zero_grad()
    states, last = gru(inputs)
    ((states * grad_out).sum() + (last * grad_last).sum()).backward()
    return ([states.detach(), last.detach()] + ([inputs.grad] if inputs_grad else [])
            + [p.grad.clone() for p in gru.parameters()])


def twins(*args, **kwargs):
    """nn.GRU and ours with the same parameters."""
    reference = torch.nn.GRU(*args, **kwargs)
    ours = GRU(*args, **kwargs)
    ours.load_state_dict(reference.state_dict())
    return reference, ours


@ours
@pytest.mark.parametrize("batch, steps, layers", [(1, 1, 1), (3, 7, 1), (200, 4, 1),
                                                  (5, 9, 2)])
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("loop", ["one thread", "all threads"])
def test_outputs_and_gradients_equal_nn_gru(batch, steps, layers, threads, loop, monkeypatch):
    if loop == "all threads":  # every batch counts as wide: the steps keep the threads
        monkeypatch.setattr(_gru, "ONE_THREAD_ELEMENTS", 0)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        generator = torch.Generator().manual_seed(batch * steps)
        torch.manual_seed(layers)
        reference, gru = twins(6, 5, layers, batch_first=True, bias=False)
        inputs = torch.randn(batch, steps, 6, generator=generator)
        grad_out = torch.randn(batch, steps, 5, generator=generator)
        grad_last = torch.randn(layers, batch, 5, generator=generator)
        assert runs_here(gru, inputs)
        expected = outputs_and_gradients(reference, inputs, grad_out, grad_last)
        got = outputs_and_gradients(gru, inputs, grad_out, grad_last)
    finally:
        torch.set_num_threads(previous)
    assert len(got) == 3 + 2 * layers
    for mine, reference in zip(got, expected):
        torch.testing.assert_close(mine, reference, rtol=1e-5, atol=1e-5)


@ours
def test_weight_gradients_without_input_gradients_and_in_place_outputs():
    # A frozen item table: the first layer's input needs no gradient, its weights do.
    torch.manual_seed(0)
    reference, gru = twins(6, 5, 2, batch_first=True, bias=False)
    inputs, grad_out = torch.randn(4, 6, 6), torch.randn(4, 6, 5)
    grad_last = torch.randn(2, 4, 5)
    expected = outputs_and_gradients(reference, inputs, grad_out, grad_last, False)
    got = outputs_and_gradients(gru, inputs, grad_out, grad_last, False)
    assert len(got) == 2 + 4
    for mine, theirs in zip(got, expected):
        torch.testing.assert_close(mine, theirs, rtol=1e-5, atol=1e-5)
    # The output may be changed in place before the backward, as nn.GRU's may.
    for module in (reference, gru):
        module.zero_grad()
        states, _ = module(inputs)
        states.mul_(2.0).sum().backward()
    for mine, theirs in zip(gru.parameters(), reference.parameters()):
        torch.testing.assert_close(mine.grad, theirs.grad, rtol=1e-5, atol=1e-5)


@ours
def test_padded_tail_leaves_earlier_states_and_their_gradients_alone():
    # Windows are right-padded: extra steps after a row's end change nothing before it.
    torch.manual_seed(0)
    gru = GRU(4, 3, batch_first=True, bias=False)
    inputs = torch.randn(2, 6, 4, requires_grad=True)
    states = gru(inputs)[0]
    states[:, :3].sum().backward()
    torch.testing.assert_close(states[:, :3], gru(inputs[:, :3])[0])
    assert torch.count_nonzero(inputs.grad[:, 3:]) == 0
    assert torch.count_nonzero(inputs.grad[:, :3]) > 0


@ours
@pytest.mark.parametrize("batch", [2, ONE_THREAD_ELEMENTS // (3 * 8) + 1])
def test_thread_count_is_restored_and_thin_batches_step_on_one(monkeypatch, batch):
    seen = []
    real = torch.set_num_threads
    monkeypatch.setattr(_gru.torch, "set_num_threads", lambda n: (seen.append(n), real(n)))
    previous = torch.get_num_threads()
    real(2)
    try:
        gru = GRU(4, 8, batch_first=True, bias=False)
        gru(torch.randn(batch, 3, 4))[0].sum().backward()
        assert torch.get_num_threads() == 2
    finally:
        real(previous)
    thin = batch * 3 * 8 <= ONE_THREAD_ELEMENTS
    # forward and backward each drop to one thread and come back, or never touch it
    assert seen == ([1, 2, 1, 2] if thin else [])


@ours
def test_thread_count_comes_back_after_an_error_in_the_steps(monkeypatch):
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        monkeypatch.setattr(torch, "lerp", lambda *a, **k: (_ for _ in ()).throw(
            RuntimeError("boom")))
        with pytest.raises(RuntimeError, match="boom"):
            GRU(4, 8, batch_first=True, bias=False)(torch.randn(2, 3, 4))
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(previous)


@ours
def test_no_grad_forward_equals_the_recorded_one():
    torch.manual_seed(0)
    gru = GRU(4, 3, 2, batch_first=True, bias=False)
    inputs = torch.randn(5, 4, 4)
    recorded, recorded_last = gru(inputs)
    assert recorded.grad_fn is not None
    with torch.no_grad():
        plain, plain_last = gru(inputs)
    assert plain.grad_fn is None
    torch.testing.assert_close(plain, recorded.detach(), rtol=0, atol=0)
    torch.testing.assert_close(plain_last, recorded_last.detach(), rtol=0, atol=0)


def test_other_settings_run_nn_gru_itself(monkeypatch):
    torch.manual_seed(0)
    cases = [(dict(batch_first=True, bias=True), torch.float32, None),
             (dict(batch_first=False, bias=False), torch.float32, None),
             (dict(batch_first=True, bias=False), torch.float64, None),
             (dict(batch_first=True, bias=False), torch.float32, torch.zeros(1, 2, 3))]
    packed = torch.nn.utils.rnn.pack_padded_sequence(torch.randn(2, 3, 4), [3, 2],
                                                     batch_first=True)
    monkeypatch.setattr(_gru._GRULayer, "apply", None)  # must not be reached
    for settings, dtype, initial in cases:
        reference, gru = twins(4, 3, **settings)
        reference, gru = reference.to(dtype).eval(), gru.to(dtype).eval()
        inputs = torch.randn(2, 3, 4, dtype=dtype)
        assert initial is not None or not runs_here(gru, inputs)
        got, expected = gru(inputs, initial), reference(inputs, initial)
        for mine, theirs in zip(got, expected):
            torch.testing.assert_close(mine, theirs, rtol=0, atol=0)
    # Dropout between layers: nn.GRU's while training (same random draws), ours in eval.
    reference, gru = twins(4, 3, 2, batch_first=True, bias=False, dropout=0.5)
    inputs = torch.randn(2, 3, 4)
    assert not runs_here(gru, inputs)
    torch.manual_seed(1)
    got = gru(inputs)[0]
    torch.manual_seed(1)
    torch.testing.assert_close(got, reference(inputs)[0], rtol=0, atol=0)
    assert runs_here(gru.eval(), inputs)
    monkeypatch.undo()
    torch.testing.assert_close(gru(inputs)[0], reference.eval()(inputs)[0], rtol=1e-5,
                               atol=1e-6)
    empty = torch.randn(0, 3, 4)  # no rows: nn.GRU's empty outputs
    assert not runs_here(gru, empty) and gru(empty)[0].shape == (0, 3, 3)
    reference, gru = twins(4, 3, batch_first=True, bias=False)
    assert not runs_here(gru, packed)
    torch.testing.assert_close(gru(packed)[0].data, reference(packed)[0].data, rtol=0, atol=0)


def test_backends_train_the_same_gru4rec_up_to_rounding():
    script = (
        "import torch; from recmodels import GRU4Rec, TrainableTable\n"
        "from recmodels.models._gru import cpu_backend\n"
        "torch.manual_seed(0); torch.set_num_threads(2)\n"
        "model = GRU4Rec(TrainableTable(300, 16), max_len=6, gru_hidden_size=12)\n"
        "optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)\n"
        "g = torch.Generator().manual_seed(1)\n"
        "items = torch.randint(1, 301, (32, 6), generator=g)\n"
        "targets = torch.randint(1, 301, (32, 6), generator=g)\n"
        "for _ in range(5):\n"
        "    optimizer.zero_grad(); loss = model.loss(items, targets); loss.backward()\n"
        "    optimizer.step()\n"
        "print(cpu_backend(), repr(float(loss)))\n")
    words = stdout_under_each("RECMODELS_CPU_GRU", ("recmodels", "torch"), script)
    assert [name for name, _ in words.values()] == ["recmodels", "torch"]
    assert np.isclose(float(words["recmodels"][1]), float(words["torch"][1]), rtol=1e-4)


def test_gru4rec_prefix_groups_use_the_same_recurrence():
    torch.manual_seed(0)
    model = GRU4Rec(TrainableTable(50, 8), max_len=6, gru_hidden_size=7,
                    sequences="prefixes").eval()
    lengths = torch.tensor([6, 1, 2, 5, 1, 1, 2, 6])
    items = torch.randint(1, 51, (8, 6)) * (torch.arange(6) < lengths[:, None])
    rows, positions = torch.arange(8), lengths - 1
    weights = model.item_weights()
    with torch.no_grad():
        grouped = model.encode_at(items, weights, rows, positions)
        whole = model.out(model.gru(weights[items])[0])[rows, positions]
    torch.testing.assert_close(grouped, whole, rtol=1e-5, atol=1e-6)


def test_unknown_backend_is_a_clear_error():
    assert_clear_env_error("RECMODELS_CPU_GRU", "cudnn", "torch")


def test_bench_gru_prints_both_sides_for_every_shape():
    bench = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_gru.py"
    result = subprocess.run(
        [sys.executable, str(bench), "--shapes", "3x4,200x2", "--input-size", "8",
         "--hidden-size", "8", "--repeats", "2", "--threads", "1"],
        capture_output=True, text=True, check=True, timeout=120)
    rows = re.findall(r"^\s+(\d+x\d+)\s+(\d+)\s+([0-9.]+)\s+([0-9.]+)\s+([0-9.]+)x\s+(\S+)$",
                      result.stdout, flags=re.M)
    assert [row[0] for row in rows] == ["3x4", "200x2"]
    assert all(float(row[2]) > 0 and float(row[3]) > 0 for row in rows)
    assert all(float(row[5]) < 1e-4 for row in rows)  # the two agree to rounding

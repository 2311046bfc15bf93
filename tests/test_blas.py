"""The CPU logit products through NumPy's BLAS: same results as torch.mm, no side effects."""

import os
import subprocess
import sys
import re
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_info, threadpool_limits

from recmodels import BERT4Rec, SASRec, TrainableTable, build_sequences
from recmodels.datasets import make_interactions
from recmodels.evaluation import rank_targets
from recmodels.models import _blas
from recmodels.models._blas import cpu_backend, mm
from recmodels_helpers import assert_clear_env_error, stdout_under_each

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
numpy_backend = pytest.mark.skipif(cpu_backend() != "numpy",
                                   reason="RECMODELS_CPU_LOGITS=torch in this environment")


def openblas_threads():
    return [i["num_threads"] for i in threadpool_info() if i["internal_api"] == "openblas"]


@numpy_backend
def test_a_large_product_runs_in_numpy_row_blocks(monkeypatch):
    calls = []
    real_dot = np.dot

    def spy(a, b, out):
        calls.append(a.shape[0])
        return real_dot(a, b, out=out)

    monkeypatch.setattr(_blas.np, "dot", spy)
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        states, table = torch.randn(301, 64), torch.randn(900, 64)
        torch.testing.assert_close(mm(states, table.T), states @ table.T, rtol=1e-5, atol=1e-5)
    finally:
        torch.set_num_threads(previous)
    assert sorted(calls) == [150, 151]  # one block per torch thread


@pytest.mark.parametrize("rows", [1, 7, 300])  # 300 x 64 x 900: above the split threshold
@pytest.mark.parametrize("threads", [1, 2])
def test_mm_equals_torch_mm_on_transposed_views(rows, threads):
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        generator = torch.Generator().manual_seed(rows)
        states = torch.randn(rows, 64, generator=generator)
        table = torch.randn(900, 64, generator=generator)
        expected = torch.mm(states.double(), table.double().T).float()
        got = mm(states, table.T)
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
        out = torch.full((rows, 900), float("nan"))
        assert mm(states, table[:900].T, out=out) is out
        torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    finally:
        torch.set_num_threads(previous)


def test_mm_keeps_autograd_and_other_dtypes_on_torch():
    states = torch.randn(5, 8, requires_grad=True)
    table = torch.randn(11, 8, requires_grad=True)
    logits = mm(states, table.T)
    assert logits.grad_fn is not None  # recorded: autograd needs torch's product
    logits.sum().backward()
    torch.testing.assert_close(states.grad, table.detach().sum(0).expand(5, 8))
    doubles = mm(states.detach().double(), table.detach().double().T)
    assert doubles.dtype == torch.float64


def test_mm_leaves_the_process_blas_threads_as_they_were():
    with threadpool_limits(limits=3, user_api="blas"):
        before = openblas_threads()
        mm(torch.randn(400, 64), torch.randn(2000, 64).T)
        assert openblas_threads() == before


def test_products_from_several_threads_at_once_stay_correct():
    previous = torch.get_num_threads()
    torch.set_num_threads(4)
    generator = torch.Generator().manual_seed(0)
    table = torch.randn(700, 32, generator=generator)
    inputs = [torch.randn(rows, 32, generator=generator) for rows in (2, 3, 4, 257)]
    errors = []

    def work(states):
        try:
            for _ in range(30):
                torch.testing.assert_close(mm(states, table.T), states @ table.T,
                                           rtol=1e-5, atol=1e-5)
        except Exception as error:  # noqa: BLE001 - reported below, in the test's thread
            errors.append(error)

    try:
        with threadpool_limits(limits=2, user_api="blas"):
            before = openblas_threads()
            threads = [threading.Thread(target=work, args=(x,)) for x in inputs]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            after = openblas_threads()
    finally:
        torch.set_num_threads(previous)
    assert errors == []
    assert after == before


def test_score_writes_into_the_given_buffer():
    torch.manual_seed(0)
    model = SASRec(TrainableTable(30, 16), max_len=5, inner_size=16).eval()
    weights = model.item_weights().detach()
    states = torch.randn(4, 16)
    fresh = model.score(states, weights)
    buffer = torch.empty(6, 31)
    scored = model.score(states, weights, out=buffer[:4])
    assert scored.data_ptr() == buffer.data_ptr()
    torch.testing.assert_close(scored, fresh)
    assert bool(torch.isneginf(scored[:, 0]).all())
    with pytest.raises(ValueError, match="2-d states"):
        model.score(states[None], weights, out=buffer[:4])


def test_score_adds_bert4rec_bias_into_the_buffer_too():
    torch.manual_seed(0)
    model = BERT4Rec(TrainableTable(30, 16), max_len=5, inner_size=16).eval()
    with torch.no_grad():
        model.output_bias.normal_()
        weights = model.item_weights()
        states = torch.randn(3, 16)
        fresh = model.score(states, weights)
        into = model.score(states, weights, out=torch.empty(3, 31))
    torch.testing.assert_close(into, fresh)
    torch.testing.assert_close(fresh[:, 1:], states @ weights[1:31].T + model.output_bias[1:])


def test_rank_targets_under_a_float64_default_dtype():
    data = build_sequences(make_interactions(), k_core=1)
    model = SASRec(TrainableTable(data.n_items, 16), max_len=5, inner_size=16)
    expected = rank_targets(model, data, "test")
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        got = rank_targets(model, data, "test")
    finally:
        torch.set_default_dtype(previous)
    np.testing.assert_array_equal(got, expected)


def test_backends_train_the_same_model_up_to_rounding(tmp_path):
    # The same seed through both backends: the loss after a few steps agrees to rounding.
    script = (
        "import torch; from recmodels import SASRec, TrainableTable\n"
        "from recmodels.models._blas import cpu_backend\n"
        "torch.manual_seed(0); torch.set_num_threads(2)\n"
        "model = SASRec(TrainableTable(2000, 16), max_len=6, inner_size=16)\n"
        "optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)\n"
        "g = torch.Generator().manual_seed(1)\n"
        "items = torch.randint(1, 2001, (32, 6), generator=g)\n"
        "targets = torch.randint(1, 2001, (32, 6), generator=g)\n"
        "for _ in range(5):\n"
        "    optimizer.zero_grad(); loss = model.loss(items, targets); loss.backward()\n"
        "    optimizer.step()\n"
        "from recmodels.models._blas import _SPLITTER\n"
        "print(cpu_backend(), repr(float(loss)), _SPLITTER._pool is not None)\n")
    words = stdout_under_each("RECMODELS_CPU_LOGITS", ("numpy", "torch"), script)
    for backend, (name, _, split) in words.items():
        assert name == backend
        assert split == str(backend == "numpy")  # 192 targets x 2001 items: row blocks
    assert np.isclose(float(words["numpy"][1]), float(words["torch"][1]), rtol=1e-4)


def test_unknown_backend_is_a_clear_error():
    assert_clear_env_error("RECMODELS_CPU_LOGITS", "mkl", "numpy")


def test_default_backend_is_numpy_unless_set():
    expected = os.environ.get("RECMODELS_CPU_LOGITS", "numpy")
    assert cpu_backend() == expected


def test_bench_logits_prints_both_paths_for_every_product():
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "bench_logits.py"), "--rows", "16,32", "--items",
         "300", "--hidden", "8", "--repeats", "2", "--threads", "1"],
        capture_output=True, text=True, check=True, timeout=120,
    )
    rows = re.findall(r"^(\S.*?)\s+([0-9.]+)\s+([0-9.]+)\s+([0-9.]+)x  (.*)$",
                      result.stdout, flags=re.M)
    names = [row[0] for row in rows]
    # three products at each row count, the square reference once
    assert len(names) == 7 and len(set(names)) == 7 and "square 1024" in names
    used = {row[0]: row[4].strip() for row in rows}
    assert used["logits 16x8 @ 8x300"] == "mm"
    assert used["table's gradient 300x32 @ 32x8"] == "torch.mm"
    assert all(float(rate) > 0 for row in rows for rate in row[1:4])

"""The CPU logit products through NumPy's BLAS: same results as torch.mm, no side effects."""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_info

from recmodels import SASRec, TrainableTable
from recmodels.models._blas import cpu_backend, mm


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
    def openblas_threads():
        return [i["num_threads"] for i in threadpool_info() if i["internal_api"] == "openblas"]

    before = openblas_threads()
    mm(torch.randn(400, 64), torch.randn(2000, 64).T)
    assert openblas_threads() == before


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


def test_backends_train_the_same_model_up_to_rounding(tmp_path):
    # The same seed through both backends: the loss after a few steps agrees to rounding.
    script = (
        "import torch; from recmodels import SASRec, TrainableTable\n"
        "from recmodels.models._blas import cpu_backend\n"
        "torch.manual_seed(0)\n"
        "model = SASRec(TrainableTable(50, 16), max_len=6, inner_size=16)\n"
        "optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)\n"
        "g = torch.Generator().manual_seed(1)\n"
        "items = torch.randint(1, 51, (32, 6), generator=g)\n"
        "targets = torch.randint(1, 51, (32, 6), generator=g)\n"
        "for _ in range(5):\n"
        "    optimizer.zero_grad(); loss = model.loss(items, targets); loss.backward()\n"
        "    optimizer.step()\n"
        "print(cpu_backend(), repr(float(loss)))\n")
    losses = {}
    for backend in ("numpy", "torch"):
        env = dict(os.environ, RECMODELS_CPU_LOGITS=backend)
        done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                              text=True, check=True)
        name, value = done.stdout.split()
        losses[name] = float(value)
    assert set(losses) == {"numpy", "torch"}
    assert np.isclose(losses["numpy"], losses["torch"], rtol=1e-4)


def test_unknown_backend_is_a_clear_error():
    env = dict(os.environ, RECMODELS_CPU_LOGITS="mkl")
    done = subprocess.run([sys.executable, "-c", "import recmodels"], env=env,
                          capture_output=True, text=True)
    assert done.returncode != 0
    assert "RECMODELS_CPU_LOGITS='mkl'" in done.stderr and "'numpy'" in done.stderr


def test_default_backend_is_numpy_unless_set():
    expected = os.environ.get("RECMODELS_CPU_LOGITS", "numpy")
    assert cpu_backend() == expected

"""The CUDA paths, run for real where a GPU is present (skipped cleanly without one).

On CUDA the trainer runs under bfloat16 autocast, so these tests compare with the CPU's
float32 at bfloat16's tolerance, and check that training there learns and that the whole
``ace-bench`` cold-start protocol runs on the device.
"""

import json

import pandas as pd
import pytest
import torch

from recmodels import BERT4Rec, GRU4Rec, SASRec, TrainableTable, Trainer, build_sequences
from recmodels.comparison.cli import main
from recmodels.evaluation import rank_targets
from recmodels_helpers import synthetic_log, toy_argv, toy_folder

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")

BACKBONES = [SASRec, GRU4Rec, BERT4Rec]
# bfloat16 keeps 8 bits of mantissa: a mean cross-entropy over a few hundred targets stays
# within 2 % of float32's and the gradients keep their direction (passed on an H100).
LOSS_RTOL = 2e-2
MIN_GRADIENT_COSINE = 0.98


@pytest.fixture(scope="module")
def data():
    return build_sequences(synthetic_log(n_users=60, n_items=20), k_core=1)


def make_model(data, backbone, dropout=0.0):
    torch.manual_seed(0)
    table = TrainableTable(data.n_items, 16)
    if backbone is GRU4Rec:
        return GRU4Rec(table, max_len=10, gru_hidden_size=16, dropout=dropout)
    return backbone(table, max_len=10, inner_size=32, hidden_dropout=dropout,
                    attn_dropout=dropout)


def loss_and_gradient(model, items, targets, device):
    model = model.to(device).train()
    model.zero_grad()
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device == "cuda"):
        loss = model.loss(items.to(device), targets.to(device))
    loss.backward()
    gradient = torch.cat([p.grad.float().ravel().cpu() for p in model.parameters()
                          if p.grad is not None])
    return loss.item(), gradient


@pytest.mark.parametrize("backbone", BACKBONES)
def test_the_loss_on_cuda_matches_the_cpu_at_bfloat16_tolerance(data, backbone):
    model = make_model(data, backbone)  # no dropout: the two devices draw differently
    windows = model.training_windows(data)
    items, targets = model.training_batch(windows[:64], torch.Generator().manual_seed(0))
    cpu_loss, cpu_grad = loss_and_gradient(model, items, targets, "cpu")
    cuda_loss, cuda_grad = loss_and_gradient(model, items, targets, "cuda")
    assert cuda_loss == pytest.approx(cpu_loss, rel=LOSS_RTOL)
    cosine = torch.nn.functional.cosine_similarity(cpu_grad, cuda_grad, dim=0).item()
    assert cosine > MIN_GRADIENT_COSINE


@pytest.mark.parametrize("backbone", BACKBONES)
def test_training_on_cuda_learns(data, backbone):
    epochs = 60 if backbone is BERT4Rec else 15
    model = make_model(data, backbone, dropout=0.0 if backbone is BERT4Rec else 0.2)
    run = Trainer(model, data, lr=5e-3, batch_size=64, max_epochs=epochs, patience=1000,
                  verbose=False, seed=3, device="cuda").fit()
    assert run.history[-1]["loss"] < run.history[0]["loss"]
    # The walks are predictable: far better than the 10/20 a random ranking gets.
    assert run.best_valid["recall@10"] > 0.8


def test_ranks_on_cuda_equal_the_cpus_for_the_same_weights(data):
    model = make_model(data, SASRec).eval()
    cpu = rank_targets(model, data, "test")
    cuda = rank_targets(model.cuda(), data, "test")
    # float32 on both sides (evaluation outside the trainer has no autocast): TF32 or
    # summation order may swap near-ties, never more than a few users.
    assert (cpu != cuda).mean() <= 0.05


def test_ace_bench_cold_start_runs_on_cuda(tmp_path):
    folder = toy_folder(tmp_path / "toy")
    out = tmp_path / "out"
    assert main(toy_argv(folder, out, "--max-epochs", "2", "--lr", "1e-3", "--methods",
                         "id,ace", "--protocol", "cold-start", "--cold-share", "0.2",
                         "--cold-choice", "random", "--device", "cuda")) == 0
    results = pd.read_csv(out / "results.csv", dtype={"fingerprint": str})
    assert set(results["split"]) == {"valid", "test", "test-new"}
    assert {json.loads(s)["device"] for s in results["settings"]} == {"cuda"}


def test_attention_on_cuda_never_runs_cudnns_backend(data):
    # cuDNN's attention builds a plan per input shape: 140 ms a Beauty step (docs/results.md).
    torch.manual_seed(0)
    model = SASRec(TrainableTable(data.n_items, 128), max_len=10).cuda().train()  # heads of 64
    windows = model.training_windows(data)[:64].cuda()
    items, targets = model.training_batch(windows, torch.Generator().manual_seed(0))
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profiler:
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = model.loss(items, targets)
        loss.backward()
    names = {event.key for event in profiler.key_averages()}
    assert any("scaled_dot_product" in name for name in names)  # attention did run
    assert not any("cudnn_attention" in name for name in names)

"""The CPU dropout and attention paths, and queries packed by sequence."""

import pytest
import torch
import torch.nn.functional as F

from recmodels import BERT4Rec, SASRec, TrainableTable
from recmodels.models.attention import attention, pack_queries, softmax_attention
from recmodels.models.dropout import Dropout, dropout


@pytest.mark.parametrize("p", [0.3, 0.5])
def test_dropout_zeroes_a_p_share_and_scales_the_rest_with_matching_gradient(p):
    torch.manual_seed(0)
    x = (torch.rand(200_000) + 0.5).requires_grad_()
    y = dropout(x, p)
    kept = y != 0
    torch.testing.assert_close(y[kept], x[kept] / (1 - p))
    # Binomial share of zeros: 5 standard deviations is about 0.0055 here.
    assert abs((~kept).float().mean().item() - p) < 0.0055
    y.sum().backward()
    torch.testing.assert_close(x.grad, kept.float() / (1 - p))


def test_dropout_is_identity_when_off_and_repeats_under_a_seed():
    x = torch.randn(64, 8)
    assert dropout(x, 0.5, training=False) is x and dropout(x, 0.0) is x
    layer = Dropout(0.5)
    torch.manual_seed(3)
    first = layer(x)
    torch.manual_seed(3)
    assert torch.equal(layer(x), first)
    assert not torch.equal(layer(x), first)  # a fresh draw
    assert torch.equal(layer.eval()(x), x)
    assert torch.equal(dropout(x, 1.0), torch.zeros_like(x))  # PyTorch's answer for p = 1


def test_cpu_attention_equals_sdpa_without_dropout_and_drops_weights_with_it():
    torch.manual_seed(0)
    q, k = torch.randn(3, 2, 4, 6), torch.randn(3, 2, 6, 6)
    mask = torch.rand(3, 1, 4, 6) > 0.3
    mask[..., 0] = True
    # The hand-written softmax against SDPA: masked, and causal with fewer queries than keys.
    for causal, allowed in ((False, mask), (True, None)):
        expected = F.scaled_dot_product_attention(q, k, k, attn_mask=allowed,
                                                  is_causal=causal)
        torch.testing.assert_close(softmax_attention(q, k, k, allowed, 0.0, causal), expected)
    # With the identity as values, the output is the attention weights themselves.
    eye = torch.eye(6).expand(3, 2, 6, 6)
    weights = F.scaled_dot_product_attention(q, k, eye, attn_mask=mask)
    torch.manual_seed(1)
    dropped = torch.stack([attention(q, k, eye, mask, 0.4) for _ in range(400)])
    kept = dropped != 0
    torch.testing.assert_close(dropped[kept], (weights / 0.6).expand_as(dropped)[kept])
    assert not kept[..., ~mask.expand(3, 2, 4, 6)].any()  # masked keys get no weight
    assert abs(1 - kept.float().sum() / (0.6 * 400 * mask.expand(3, 2, 4, 6).sum())) < 0.02


def test_a_query_with_no_key_gets_zero_output_and_no_nan_gradient():
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 1, 3, 4, requires_grad=True) for _ in range(3))
    mask = torch.ones(2, 1, 3, 3, dtype=torch.bool)
    mask[1, :, 2] = False  # the last query of sequence 1 may attend to nothing
    out = attention(q, k, v, mask, 0.3)
    assert torch.equal(out[1, :, 2], torch.zeros(1, 4))
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert torch.equal(expected[1, :, 2], out[1, :, 2])  # SDPA's answer too
    out.sum().backward()
    assert all(torch.isfinite(t.grad).all() for t in (q, k, v))


@pytest.mark.parametrize("backbone", [SASRec, BERT4Rec])
def test_packed_queries_run_under_autocast_and_with_int32_lengths(backbone):
    torch.manual_seed(0)
    model = backbone(TrainableTable(30, 16), max_len=8, inner_size=32).train()
    items = torch.randint(1, 31, (6, 8))
    targets = torch.zeros_like(items)
    targets[:, 3] = items[:, 3]  # one target a sequence: the packed path
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model.loss(items, targets)
    loss.backward()
    assert torch.isfinite(loss) and all(torch.isfinite(p.grad).all()
                                        for p in model.parameters() if p.grad is not None)
    model.eval()
    items, lengths = items[:, : model.context_len], torch.tensor([7, 3, 5, 1, 7, 2])
    torch.testing.assert_close(model.predict(items, lengths.int()), model.predict(items, lengths))


def test_pack_queries_gives_each_query_its_own_slot_in_its_sequence():
    rows = torch.tensor([4, 1, 4, 0, 4, 1])
    slots, width = pack_queries(rows, 6)
    assert width == 3
    assert slots.tolist() == [0, 0, 1, 0, 2, 1]  # in the order they come, per sequence
    assert len({(r, s) for r, s in zip(rows.tolist(), slots.tolist())}) == rows.numel()
    empty, width = pack_queries(torch.zeros(0, dtype=torch.long), 2)
    assert empty.numel() == 0 and width == 0


@pytest.mark.parametrize("backbone", [SASRec, BERT4Rec])
def test_packed_queries_train_as_the_full_encoding_does(backbone):
    """Selected positions (few per sequence, any order) in training mode without dropout:
    states and gradients equal those of the full encoding read at those positions."""
    torch.manual_seed(0)
    model = backbone(TrainableTable(30, 16), max_len=8, inner_size=32, hidden_dropout=0.0,
                     attn_dropout=0.0).train()
    items = torch.randint(1, 31, (5, 8))
    items[1, 3:] = 0
    items[3, 5:] = 0
    rows = torch.tensor([3, 0, 0, 1, 4, 0, 3])
    positions = torch.tensor([4, 7, 2, 1, 0, 5, 2])

    def run(packed: bool):
        model.zero_grad(set_to_none=True)
        weights = model.item_weights()
        states = (model.encode_at(items, weights, rows, positions) if packed
                  else model.encode(items, weights)[rows, positions])
        (states.square().sum() + states.sum()).backward()
        return states.detach(), {n: p.grad.clone() for n, p in model.named_parameters()
                                 if p.grad is not None}

    (states, grads), (plain, plain_grads) = run(True), run(False)
    torch.testing.assert_close(states, plain, rtol=1e-5, atol=1e-6)
    assert grads.keys() == plain_grads.keys()
    for name, grad in plain_grads.items():
        assert torch.isfinite(grads[name]).all(), name
        torch.testing.assert_close(grads[name], grad, rtol=1e-4, atol=1e-6)

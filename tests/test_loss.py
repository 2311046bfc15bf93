"""The fused training loss equals the plain computation; batch packing does not matter."""

import pytest
import torch
import torch.nn.functional as F

from recmodels import BERT4Rec, GRU4Rec, SASRec, TrainableTable
from recmodels.models._loss import linear_cross_entropy

N_ITEMS, HIDDEN = 40, 16


def _plain(states, weights, targets, n_classes, blocked, bias):
    logits = states @ weights[:n_classes].T
    if bias is not None:
        logits = logits + bias
    logits = logits.index_fill(1, blocked, float("-inf"))
    return F.cross_entropy(logits, targets)


@pytest.mark.parametrize("with_bias", [False, True])
@pytest.mark.parametrize("extra_rows", [0, 1])
def test_fused_loss_and_gradients_equal_cross_entropy(with_bias, extra_rows):
    generator = torch.Generator().manual_seed(0)
    n_classes = 301
    states = torch.randn(37, HIDDEN, generator=generator, requires_grad=True)
    weights = torch.randn(n_classes + extra_rows, HIDDEN, generator=generator,
                          requires_grad=True)
    bias = torch.randn(n_classes, generator=generator, requires_grad=True) if with_bias else None
    blocked = torch.tensor([0, 7, 8, 250])
    allowed = torch.ones(n_classes, dtype=torch.bool)
    allowed[blocked] = False
    targets = allowed.nonzero().ravel()[torch.randint(0, int(allowed.sum()), (37,),
                                                      generator=generator)]
    results = []
    for loss_fn in (_plain, None):
        for tensor in (states, weights, bias):
            if tensor is not None:
                tensor.grad = None
        if loss_fn is None:
            loss = linear_cross_entropy(states, weights, targets, n_classes=n_classes,
                                        blocked=blocked, bias=bias)
        else:
            loss = loss_fn(states, weights, targets, n_classes, blocked, bias)
        (3.0 * loss).backward()
        grads = [loss.detach(), states.grad.clone(), weights.grad.clone()]
        results.append(grads + ([bias.grad.clone()] if with_bias else []))
    for ours, reference in zip(results[1], results[0]):
        torch.testing.assert_close(ours, reference, rtol=1e-5, atol=1e-6)
    fused_weight_grad = results[1][2]
    assert fused_weight_grad[blocked].abs().max() == 0  # blocked items get no gradient
    assert fused_weight_grad[n_classes:].abs().sum() == 0  # nor rows past the candidates
    assert fused_weight_grad.abs().max() > 0


def test_frozen_states_or_weights_get_no_gradient():
    states = torch.randn(5, HIDDEN, requires_grad=True)
    weights = torch.randn(11, HIDDEN)  # a frozen table
    loss = linear_cross_entropy(states, weights, torch.tensor([1, 2, 3, 4, 5]), n_classes=11,
                                blocked=torch.tensor([0]))
    loss.backward()
    assert states.grad is not None and weights.grad is None


def _model(backbone):
    torch.manual_seed(0)
    table = TrainableTable(N_ITEMS, HIDDEN)
    if backbone is GRU4Rec:
        return GRU4Rec(table, max_len=8, gru_hidden_size=12, dropout=0.0)
    return backbone(table, max_len=8, inner_size=32, hidden_dropout=0.0, attn_dropout=0.0)


def _batch(backbone):
    """Left-aligned rows of different lengths with targets, as training batches hold them."""
    generator = torch.Generator().manual_seed(1)
    lengths = torch.tensor([8, 3, 5, 1, 6, 2])
    items = torch.randint(1, N_ITEMS + 1, (6, 8), generator=generator)
    items[torch.arange(8)[None, :] >= lengths[:, None]] = 0
    if backbone is BERT4Rec:  # mask some items; they are the targets
        masked = (torch.rand(items.shape, generator=generator) < 0.4) & (items > 0)
        masked[0, 0] = True
        targets = torch.where(masked, items, torch.zeros_like(items))
        items = torch.where(masked, torch.full_like(items, N_ITEMS + 1), items)
    else:
        targets = torch.roll(items, -1, dims=1) * (items > 0)
    return items, targets


def _gradients(model, items, targets):
    model.zero_grad(set_to_none=True)
    loss = model.loss(items, targets)
    loss.backward()
    return loss.detach(), {name: p.grad.clone() for name, p in model.named_parameters()
                           if p.grad is not None}


@pytest.mark.parametrize("backbone", [SASRec, GRU4Rec, BERT4Rec])
def test_training_step_does_not_depend_on_batch_packing(backbone):
    model = _model(backbone).train()
    items, targets = _batch(backbone)
    loss, grads = _gradients(model, items, targets)
    # The same rows in another order, with extra padding columns: one step, same result.
    order = torch.tensor([3, 0, 5, 2, 4, 1])
    wide = torch.zeros(6, 12, dtype=items.dtype)
    wide_targets = torch.zeros_like(wide)
    wide[:, :8], wide_targets[:, :8] = items[order], targets[order]
    if backbone is BERT4Rec:  # positions past max_len do not exist there
        wide, wide_targets = wide[:, :8], wide_targets[:, :8]
    repacked_loss, repacked = _gradients(model, wide, wide_targets)
    torch.testing.assert_close(repacked_loss, loss, rtol=1e-5, atol=1e-6)
    assert grads.keys() == repacked.keys()
    for name in grads:
        torch.testing.assert_close(repacked[name], grads[name], rtol=1e-4, atol=1e-6,
                                   msg=lambda m, name=name: f"{name}: {m}")
    # Two half batches, weighted by their targets, give the full batch's gradient.
    halves = [slice(0, 3), slice(3, 6)]
    counts = [int((targets[half] > 0).sum()) for half in halves]
    combined = {name: torch.zeros_like(g) for name, g in grads.items()}
    for half, count in zip(halves, counts):
        _, part = _gradients(model, items[half], targets[half])
        for name, g in part.items():
            combined[name] += g * count / sum(counts)
    for name in grads:
        torch.testing.assert_close(combined[name], grads[name], rtol=1e-4, atol=1e-6,
                                   msg=lambda m, name=name: f"{name}: {m}")


@pytest.mark.parametrize("backbone", [SASRec, GRU4Rec, BERT4Rec])
def test_training_loss_equals_the_plain_computation(backbone):
    """Fused loss and states computed only at the targets (encode_at) against the plain way."""
    model = _model(backbone).train()
    items, targets = _batch(backbone)
    model.exclude_from_training([N_ITEMS])
    targets[targets == N_ITEMS] = 0
    loss, grads = _gradients(model, items, targets)
    weights = model.item_weights()
    states = model.encode(items, weights)[targets > 0]
    plain = _plain(states, weights, targets[targets > 0], N_ITEMS + 1,
                   torch.tensor([0, N_ITEMS]), model.logit_bias())
    model.zero_grad(set_to_none=True)
    plain.backward()
    torch.testing.assert_close(loss, plain.detach(), rtol=1e-5, atol=1e-6)
    for name, p in model.named_parameters():
        torch.testing.assert_close(grads[name], p.grad, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("backbone", [SASRec, GRU4Rec, BERT4Rec])
def test_states_at_selected_positions_equal_the_full_encoding(backbone):
    model = _model(backbone).eval()
    items, _ = _batch(backbone)
    weights = model.item_weights()
    full = model.encode(items, weights)
    sparse = (torch.tensor([0, 0, 0, 1, 2, 4, 5, 5]), torch.tensor([7, 0, 3, 2, 4, 5, 1, 0]))
    dense = torch.ones(items.shape, dtype=torch.bool).nonzero(as_tuple=True)
    for rows, positions in (sparse, dense):  # the transformers take two paths for these
        torch.testing.assert_close(model.encode_at(items, weights, rows, positions),
                                   full[rows, positions], rtol=1e-5, atol=1e-6)


def _grads(rows, seed, fused=True):
    generator = torch.Generator().manual_seed(seed)
    states = torch.randn(rows, HIDDEN, generator=generator, requires_grad=True)
    weights = torch.randn(N_ITEMS, HIDDEN, generator=generator, requires_grad=True)
    targets = torch.randint(1, N_ITEMS, (rows,), generator=generator)
    run = linear_cross_entropy if fused else (
        lambda *a, **k: _plain(*a, k["n_classes"], k["blocked"], None))
    loss = run(states, weights, targets, n_classes=N_ITEMS, blocked=torch.tensor([0]))
    return loss, states, weights


def test_logits_array_is_reused_across_steps_and_never_shared(monkeypatch):
    from recmodels.models import _loss

    monkeypatch.setattr(_loss._SPARE, "_spare", None)  # whatever earlier tests left

    # Steps of varying size: each uses the one spare array (the largest so far), and its
    # gradients equal the plain computation's.
    pointers = []
    for step, rows in enumerate([30, 12, 30, 7, 45, 45]):
        loss, states, weights = _grads(rows, step)
        assert step == 0 or _loss._SPARE._spare is None  # lent to this step's forward
        loss.backward()
        pointers.append(_loss._SPARE._spare.data_ptr())  # given back by its backward
        plain, plain_states, plain_weights = _grads(rows, step, fused=False)
        plain.backward()
        torch.testing.assert_close(loss, plain)
        torch.testing.assert_close(states.grad, plain_states.grad, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(weights.grad, plain_weights.grad, rtol=1e-5, atol=1e-6)
    # one array while it is large enough, a larger one from the first step that needs it
    assert len(set(pointers[:4])) == 1 and len(set(pointers[4:])) == 1
    assert pointers[4] != pointers[0] and _loss._SPARE._spare.numel() == 45 * N_ITEMS
    # Two losses before either backward: the second gets its own array, both stay right.
    first, states_a, weights_a = _grads(20, 10)
    second, states_b, weights_b = _grads(20, 11)
    (first + second).backward()
    for seed, states, weights in ((10, states_a, weights_a), (11, states_b, weights_b)):
        plain, plain_states, plain_weights = _grads(20, seed, fused=False)
        plain.backward()
        torch.testing.assert_close(states.grad, plain_states.grad, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(weights.grad, plain_weights.grad, rtol=1e-5, atol=1e-6)

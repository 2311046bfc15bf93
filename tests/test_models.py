"""Backbone contract: causality, padding, item tables, frozen parts, loss."""

import numpy as np
import pytest
import torch

from recmodels import (
    AdapterTable,
    AlphaFuseTable,
    BERT4Rec,
    GRU4Rec,
    SASRec,
    TrainableTable,
)

N_ITEMS, HIDDEN = 30, 16


def small(backbone, table=None, **kw):
    torch.manual_seed(0)
    table = table or TrainableTable(N_ITEMS, HIDDEN)
    if backbone is GRU4Rec:
        return GRU4Rec(table, max_len=8, gru_hidden_size=12, **kw)
    return backbone(table, max_len=8, inner_size=32, **kw)


@pytest.mark.parametrize("backbone", [SASRec, GRU4Rec])
def test_later_items_do_not_change_earlier_states(backbone):
    model = small(backbone).eval()
    weights = model.item_weights()
    a = torch.tensor([[1, 2, 3, 4, 5, 6, 7, 8]])
    b = torch.tensor([[1, 2, 3, 4, 29, 28, 27, 26]])
    sa, sb = model.encode(a, weights), model.encode(b, weights)
    torch.testing.assert_close(sa[:, :4], sb[:, :4])
    assert not torch.allclose(sa[:, 4:], sb[:, 4:])


@pytest.mark.parametrize("backbone", [SASRec, GRU4Rec, BERT4Rec])
def test_padding_does_not_change_user_state(backbone):
    model = small(backbone).eval()
    weights = model.item_weights()
    short = torch.tensor([[4, 5, 6]])
    padded = torch.tensor([[4, 5, 6, 0, 0, 0, 0]])
    lengths = torch.tensor([3])
    torch.testing.assert_close(
        model.user_states(short, lengths, weights), model.user_states(padded, lengths, weights)
    )
    # A batch mixing lengths gives each row the state it gets alone.
    mixed = torch.tensor([[4, 5, 6, 0, 0, 0, 0], [1, 2, 3, 4, 5, 6, 7]])
    both = model.user_states(mixed, torch.tensor([3, 7]), weights)
    torch.testing.assert_close(both[:1], model.user_states(short, lengths, weights))


def test_initial_table_is_copied_exactly():
    init = np.random.default_rng(0).standard_normal((N_ITEMS, HIDDEN)).astype(np.float32)
    model = small(SASRec, TrainableTable(N_ITEMS, HIDDEN, init=init))
    weights = model.item_weights().detach().numpy()
    np.testing.assert_array_equal(weights[1:], init)
    np.testing.assert_array_equal(weights[0], 0.0)
    init[0, 0] = 123.0  # the model holds its own copy
    assert model.item_weights()[1, 0] != 123.0


def test_width_mismatch_names_the_fix():
    with pytest.raises(ValueError, match="has 24 columns but the backbone's hidden_size is 16.*ACETransformer"):
        TrainableTable(N_ITEMS, HIDDEN, init=np.zeros((N_ITEMS, 24)))
    with pytest.raises(ValueError, match="finite"):
        TrainableTable(N_ITEMS, HIDDEN, init=np.full((N_ITEMS, HIDDEN), np.nan))


def _train_steps(model, steps=3):
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=0.1)
    items = torch.randint(1, N_ITEMS + 1, (6, 8), generator=torch.Generator().manual_seed(0))
    targets = torch.roll(items, -1, dims=1)
    for _ in range(steps):
        opt.zero_grad()
        model.loss(items, targets).backward()
        opt.step()


def test_frozen_parts_stay_frozen():
    rng = np.random.default_rng(0)
    semantic = rng.standard_normal((N_ITEMS, HIDDEN)).astype(np.float32)
    alpha = small(SASRec, AlphaFuseTable(semantic, null_slots=[12, 13, 14, 15], init="normal"))
    residual_before = alpha.item_table.residual.detach().clone()
    _train_steps(alpha)
    weights = alpha.item_weights().detach().numpy()[1:]
    np.testing.assert_array_equal(weights[:, :12], semantic[:, :12])
    assert not np.allclose(weights[:, 12:], semantic[:, 12:])
    assert not torch.equal(alpha.item_table.residual, residual_before)

    views = [rng.standard_normal((N_ITEMS, 20)).astype(np.float32) for _ in range(2)]
    adapter = small(SASRec, AdapterTable(views, HIDDEN))
    mlp_before = adapter.item_table.mlp[0].weight.detach().clone()
    _train_steps(adapter)
    np.testing.assert_array_equal(adapter.item_table.views.numpy(), np.stack(views))
    assert not torch.equal(adapter.item_table.mlp[0].weight, mlp_before)

    frozen = small(GRU4Rec, TrainableTable(N_ITEMS, HIDDEN, init=semantic, frozen=True))
    _train_steps(frozen)
    np.testing.assert_array_equal(frozen.item_weights().detach().numpy()[1:], semantic)


def test_padding_item_is_never_recommended():
    model = small(SASRec).eval()
    scores = model.predict(torch.tensor([[1, 2, 3]]), torch.tensor([3]))
    assert scores.shape == (1, N_ITEMS + 1) and scores[0, 0] == float("-inf")


def test_bert4rec_masks_at_least_one_item_per_window():
    model = small(BERT4Rec, mask_ratio=0.2)
    windows = torch.tensor([[[1, 2, 3, 0, 0, 0, 0, 0]], [[4, 5, 6, 7, 8, 9, 10, 11]]])
    items, targets = model.training_batch(windows, torch.Generator().manual_seed(0))
    assert ((targets > 0).sum(dim=1) >= 1).all()
    masked = items == model.mask_index
    torch.testing.assert_close(targets[masked], windows[:, 0][masked])
    assert (items[~masked] == windows[:, 0][~masked]).all()


def test_full_softmax_cross_entropy_matches_torch():
    import torch.nn.functional as F

    from recmodels.models._loss import full_softmax_cross_entropy

    torch.manual_seed(0)
    states = torch.randn(37, 16, requires_grad=True)
    weights = torch.randn(501, 16, requires_grad=True)
    targets = torch.randint(1, 501, (37,))
    results = []
    for loss_fn in (F.cross_entropy, full_softmax_cross_entropy):
        states.grad = weights.grad = None
        logits = states @ weights.T
        logits[:, 0] = float("-inf")
        loss = loss_fn(logits, targets)
        (3.0 * loss).backward()
        results.append((loss.detach(), states.grad.clone(), weights.grad.clone()))
    for ours, reference in zip(results[1], results[0]):
        torch.testing.assert_close(ours, reference, rtol=1e-5, atol=1e-6)
    assert results[1][2][0].abs().max() == 0  # the padding item gets no gradient

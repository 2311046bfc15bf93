"""Backbone contract: causality, padding, item tables, frozen parts, loss."""

import numpy as np
import pytest
import torch

from recmodels import (
    AdapterTable,
    AlphaFuseTable,
    BERT4Rec,
    GRU4Rec,
    ItemTable,
    SASRec,
    TrainableTable,
)

N_ITEMS, HIDDEN = 30, 16


def small(backbone, table=None, seed=0, **kw):
    if seed is not None:
        torch.manual_seed(seed)
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


def tables():
    """One of each table kind, built from torch's global RNG like any table."""
    rng = np.random.default_rng(1)
    matrix = rng.standard_normal((N_ITEMS, HIDDEN)).astype(np.float32)
    views = [rng.standard_normal((N_ITEMS, 20)).astype(np.float32) for _ in range(2)]
    return {
        "random": lambda: TrainableTable(N_ITEMS, HIDDEN),
        "from_matrix": lambda: TrainableTable(N_ITEMS, HIDDEN, init=matrix),
        "alphafuse": lambda: AlphaFuseTable(matrix, null_slots=[12, 13, 14, 15]),
        "adapter": lambda: AdapterTable(views, HIDDEN),
        "adapter_xavier": lambda: AdapterTable(views, HIDDEN, activation="leaky_relu",
                                               init="xavier"),
    }


@pytest.mark.parametrize("kind", sorted(tables()))
@pytest.mark.parametrize("backbone", [SASRec, GRU4Rec, BERT4Rec])
def test_reset_parameters_repeats_construction_exactly(backbone, kind):
    torch.manual_seed(0)
    model = small(backbone, tables()[kind](), seed=None)
    built = {name: value.clone() for name, value in model.state_dict().items()}
    _train_steps(model, steps=2)
    trained = model.state_dict()
    assert any(not torch.equal(trained[name], built[name]) for name in built)
    torch.manual_seed(0)
    model.reset_parameters()
    after = model.state_dict()
    assert list(after) == list(built)
    for name in built:
        assert torch.equal(after[name], built[name]), name
    # Another seed draws other random weights (a table from a matrix returns to it).
    torch.manual_seed(1)
    model.reset_parameters()
    redrawn = model.state_dict()
    assert any(not torch.equal(redrawn[name], built[name]) for name in built)
    if kind == "from_matrix":
        torch.testing.assert_close(redrawn["item_table.weight"], built["item_table.weight"])


def test_table_reset_returns_to_its_initial_matrix_and_keeps_frozen_buffers():
    init = np.random.default_rng(0).standard_normal((N_ITEMS, HIDDEN)).astype(np.float32)
    table = TrainableTable(N_ITEMS, HIDDEN, init=init)
    assert list(table.state_dict()) == ["weight"]
    with torch.no_grad():
        table.weight.add_(1.0)
    table.reset_parameters()
    np.testing.assert_array_equal(table.weight.detach().numpy(), init)
    adapter = AdapterTable([init], 8)
    views = adapter.views.clone()
    adapter.reset_parameters()
    assert torch.equal(adapter.views, views)


def tiny_data():
    from recmodels import build_sequences
    from recmodels_helpers import synthetic_log

    return build_sequences(synthetic_log(n_users=12, n_items=15, min_len=3, max_len=20),
                           k_core=1)


def test_bert4rec_trains_on_every_prefix_as_recbole_does():
    from recmodels.batching import prefix_windows

    data, L = tiny_data(), 6
    expected = []
    for user in range(data.n_users):
        sequence = data.items[data.offsets[user]:data.offsets[user + 1]].tolist()
        train = sequence[:-2]
        for target in range(1, len(train)):  # one prefix per next-item training target
            prefix = train[max(0, target - L):target]
            expected.append(prefix + [0] * (L - len(prefix)))
    windows = prefix_windows(data, L)
    np.testing.assert_array_equal(windows, np.array(expected))
    assert len(windows) == np.clip(data.lengths - 3, 0, None).sum()
    model = small(BERT4Rec)
    stored = model.training_windows(data)
    assert stored.shape == (len(windows), 1, model.max_len)
    assert torch.equal(model.window_weights(stored), torch.ones(len(windows), dtype=torch.long))


def test_bert4rec_windows_option_uses_non_overlapping_windows():
    from recmodels.batching import cloze_windows

    data = tiny_data()
    model = small(BERT4Rec, sequences="windows")
    np.testing.assert_array_equal(model.training_windows(data)[:, 0].numpy(),
                                  cloze_windows(data, model.max_len))
    with pytest.raises(ValueError, match="sequences='all' must be one of"):
        small(BERT4Rec, sequences="all")


def _mask_batches(model, n_batches=2000, rows=8):
    gen = torch.Generator().manual_seed(0)
    lengths = torch.randint(1, model.max_len + 1, (n_batches, rows), generator=gen)
    items = torch.randint(1, N_ITEMS + 1, (n_batches, rows, model.max_len), generator=gen)
    items[torch.arange(model.max_len) >= lengths[..., None]] = 0
    for sequences in items:
        yield sequences, *model.training_batch(sequences[:, None], gen)


def test_bert4rec_masks_only_the_last_item_in_ft_ratio_of_batches():
    model = small(BERT4Rec, ft_ratio=0.3)
    last_only = 0
    for sequences, items, targets in _mask_batches(model):
        masked = items == model.mask_index
        assert torch.equal(targets > 0, masked & (targets > 0))
        torch.testing.assert_close(targets[targets > 0], sequences[targets > 0])
        assert torch.equal(items[~masked], sequences[~masked])
        length = (sequences > 0).sum(dim=1)
        last = torch.zeros_like(masked)
        last[torch.arange(len(length)), length - 1] = True
        last_only += bool(torch.equal(masked, last) and torch.equal(targets > 0, last))
    assert abs(last_only / 2000 - 0.3) < 0.04  # 4 standard errors


def test_bert4rec_cloze_masks_each_item_with_mask_ratio_and_caps_targets():
    model = BERT4Rec(TrainableTable(N_ITEMS, HIDDEN), max_len=20, inner_size=32,
                     mask_ratio=0.2, ft_ratio=0.0)
    assert model.max_targets == 4  # RecBole's int(mask_ratio * max_len)
    masked_total = valid_total = 0
    for sequences, items, targets in _mask_batches(model, n_batches=500):
        valid, masked, trained = sequences > 0, items == model.mask_index, targets > 0
        masked_total += int(masked.sum())
        valid_total += int(valid.sum())
        assert not (masked & ~valid).any()
        # The last masked items are the targets, at most max_targets of them.
        kept = masked.flip(1).cumsum(1).flip(1) <= model.max_targets
        assert torch.equal(trained, masked & kept)
    assert abs(masked_total / valid_total - 0.2) < 0.01


def test_bert4rec_output_bias_enters_scores_and_is_trained():
    model = small(BERT4Rec).eval()
    assert model.output_bias.shape == (N_ITEMS + 1,) and model.output_bias.requires_grad
    assert float(model.output_bias.detach().abs().max()) == 0.0
    inputs, lengths = torch.tensor([[1, 2, 3]]), torch.tensor([3])
    before = model.predict(inputs, lengths)
    with torch.no_grad():
        model.output_bias.copy_(torch.arange(N_ITEMS + 1, dtype=torch.float32))
    after = model.predict(inputs, lengths)
    assert after[0, 0] == float("-inf")
    torch.testing.assert_close(after[0, 1:] - before[0, 1:],
                               torch.arange(1, N_ITEMS + 1, dtype=torch.float32))
    model = small(BERT4Rec).train()
    _train_steps(model)
    assert float(model.output_bias.detach()[1:].abs().max()) > 0


@pytest.mark.parametrize("backbone", [SASRec, GRU4Rec])
def test_prefix_rows_train_the_same_targets_and_loss_as_windows(backbone):
    from recmodels.provenance import module_settings

    data = tiny_data()
    windows, prefixes = small(backbone), small(backbone, sequences="prefixes")
    prefixes.load_state_dict(windows.state_dict())
    by_window, by_prefix = windows.training_windows(data), prefixes.training_windows(data)
    assert len(by_prefix) > len(by_window)
    assert torch.equal(prefixes.window_weights(by_prefix), torch.ones(len(by_prefix),
                                                                      dtype=torch.long))
    assert int(windows.window_weights(by_window).sum()) == len(by_prefix)  # every target once
    windows.eval(), prefixes.eval()  # without dropout the two losses are one computation
    with torch.no_grad():
        full = windows.loss(by_window[:, 0], by_window[:, 1])
        rowwise = prefixes.loss(by_prefix[:, 0], by_prefix[:, 1])
    torch.testing.assert_close(rowwise, full, rtol=1e-5, atol=1e-6)
    # The default leaves no instance setting, so earlier models describe as before.
    assert "sequences" not in module_settings(windows)["model"]
    assert module_settings(prefixes)["model"]["sequences"] == "prefixes"
    with pytest.raises(ValueError, match="sequences='all' must be one of"):
        small(backbone, sequences="all")


def test_prefix_rows_are_shuffled_not_grouped_by_length():
    from recmodels.trainer import Trainer

    data = tiny_data()
    model = small(SASRec, TrainableTable(data.n_items, HIDDEN), sequences="prefixes")
    rows = model.training_windows(data)
    lengths = (rows[:, 0] > 0).sum(dim=1).float()

    def spread():  # mean spread of lengths inside a batch
        batches = Trainer(model, data, batch_size=8)._epoch_batches(
            rows, torch.Generator().manual_seed(0))
        return float(torch.stack([lengths[b].std(correction=0) for b in batches]).mean())

    assert model.sort_by_length is False and small(SASRec).sort_by_length is True
    shuffled = spread()
    model.sort_by_length = True
    assert shuffled > 2 * spread()


def test_gru4rec_groups_prefix_rows_by_length_with_equal_states_and_gradients():
    from recmodels.models.gru4rec import length_groups

    data = tiny_data()
    model = small(GRU4Rec, sequences="prefixes", dropout=0.0).train()
    rows = model.training_windows(data)
    items, targets = rows[:, 0], rows[:, 1]
    has_target = targets > 0
    assert length_groups((items > 0).sum(dim=1)) is not None  # this batch takes the groups

    def loss_and_grads(grouped: bool):
        model.zero_grad(set_to_none=True)
        weights = model.item_weights()
        at = has_target.nonzero(as_tuple=True)
        states = (model.encode_at(items, weights, *at) if grouped
                  else model.encode(items, weights)[at])
        loss = (states ** 2).sum() + states.sum()
        loss.backward()
        return states.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}

    calls = []
    model.gru.register_forward_hook(lambda module, inputs, output: calls.append(inputs[0].shape))
    (grouped, grads), (plain, plain_grads) = loss_and_grads(True), loss_and_grads(False)
    *group_shapes, padded_shape = calls
    assert len(group_shapes) > 1  # encode_at ran the groups, each trimmed to its rows
    assert sum(rows * steps for rows, steps, _ in group_shapes) < padded_shape[0] * padded_shape[1]
    torch.testing.assert_close(grouped, plain, rtol=1e-5, atol=1e-6)
    for name, grad in plain_grads.items():
        torch.testing.assert_close(grads[name], grad, rtol=1e-4, atol=1e-6)
    # Rows of one length run as one pass: no groups to make.
    assert length_groups(torch.tensor([8, 8, 7, 8])) is None
    # Length-sorted windows keep one pass, whatever their lengths.
    windows = small(GRU4Rec, dropout=0.0)
    calls.clear()
    windows.gru.register_forward_hook(lambda module, inputs, output: calls.append(1))
    windows.encode_at(items, windows.item_weights(), *has_target.nonzero(as_tuple=True))
    assert len(calls) == 1


@pytest.mark.parametrize("backbone", [SASRec, GRU4Rec, BERT4Rec])
@pytest.mark.parametrize("n_items, width, max_len, message", [
    (5, HIDDEN, 0, "max_len=0 must be a positive integer"),
    (5, HIDDEN, 2.5, "max_len=2.5 must be a positive integer"),
    (0, HIDDEN, 8, "the item table has 0 items"),
    (5, 0, 8, "the item table is 0 columns wide"),
])
def test_a_model_without_items_or_length_is_refused(backbone, n_items, width, max_len,
                                                     message):
    class FixedTable(ItemTable):  # a user's own table: TrainableTable refuses these itself
        def __init__(self):
            super().__init__()
            self.n_items, self.hidden_size = n_items, width

        def forward(self):
            return torch.zeros(n_items + 1, width)

    with pytest.raises(ValueError, match=message):
        backbone(FixedTable(), max_len=max_len)

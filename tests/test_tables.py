"""Each method's initial item table against a numpy computation of its reference formula."""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from ace_transform import WhiteningTransformer
from recmodels import AdapterTable, AlphaFuseTable, TrainableTable, build_sequences
from recmodels.comparison import build_table
from recmodels.comparison.methods import zca_view
from recmodels_helpers import synthetic_log

HIDDEN, WIDTH = 16, 48


@pytest.fixture(scope="module")
def data():
    return build_sequences(synthetic_log(n_users=200, n_items=120), k_core=1)


@pytest.fixture(scope="module")
def E(data):
    """Anisotropic unit-norm rows, like text-encoder output: a shared offset, decaying spectrum."""
    rng = np.random.default_rng(0)
    raw = rng.standard_normal((data.n_items, WIDTH)) * np.geomspace(1.0, 0.05, WIDTH) + 0.3
    return (raw / np.linalg.norm(raw, axis=1, keepdims=True)).astype(np.float32)


def build(method, E, data, **overrides):
    torch.manual_seed(0)
    return build_table(method, E, data, HIDDEN, overrides or None)


def svd(matrix):
    return np.linalg.svd(np.asarray(matrix, np.float64), full_matrices=False)


def centred(E):
    E = np.asarray(E, np.float64)
    return E - E.mean(axis=0)


def assert_equal_up_to_column_signs(actual, expected, atol):
    actual = np.asarray(actual, np.float64)
    signs = np.sign(np.sum(actual * expected, axis=0))
    assert np.all(signs != 0)
    np.testing.assert_allclose(actual * signs, expected, atol=atol)


def assert_trainable_table(table):
    assert isinstance(table, TrainableTable)
    assert table.weight.requires_grad
    assert list(table.state_dict()) == ["weight"]  # the initial copy is not state
    weights = table().detach().numpy()
    assert weights.shape == (table.n_items + 1, HIDDEN)
    np.testing.assert_array_equal(weights[0], 0.0)
    return weights[1:]


def assert_adapter(table, n_views, activation, width):
    """Frozen views as buffers, a trainable 2-layer MLP starting N(0, 0.02) with zero biases."""
    assert isinstance(table, AdapterTable)
    assert not any("views" in name for name, _ in table.named_parameters())
    assert table.views.shape == (n_views, table.n_items, width)
    linears = [m for m in table.mlp if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(width, width // 2),
                                                                   (width // 2, HIDDEN)]
    between = [type(m) for m in table.mlp if not isinstance(m, nn.Linear)]
    assert between == ([] if activation is None else [activation])
    for layer in linears:
        assert layer.weight.requires_grad and layer.bias.requires_grad
        weight = layer.weight.detach().numpy()
        assert 0.017 < weight.std() < 0.023 and abs(weight.mean()) < 0.003
        assert float(layer.bias.detach().abs().max()) == 0.0
    # The table is the MLP of each view, summed: recomputed in numpy from its weights.
    (w1, b1), (w2, b2) = [(m.weight.detach().numpy().astype(np.float64),
                           m.bias.detach().numpy().astype(np.float64)) for m in linears]
    act = {None: lambda h: h, nn.ReLU: lambda h: np.maximum(h, 0.0),
           nn.LeakyReLU: lambda h: np.where(h > 0, h, 0.01 * h)}[activation]
    views = table.views.numpy().astype(np.float64)
    expected = sum(act(v @ w1.T + b1) @ w2.T + b2 for v in views)
    weights = table().detach().numpy()
    np.testing.assert_array_equal(weights[0], 0.0)
    np.testing.assert_allclose(weights[1:], expected, rtol=1e-4, atol=1e-7)


def test_id_table_is_random_normal_002(data, E):
    rows = assert_trainable_table(build("id", E, data))
    assert rows.shape == (data.n_items, HIDDEN)
    assert 0.019 < rows.std() < 0.021 and abs(rows.mean()) < 0.002


def test_pca_table_is_the_centred_pca_scores(data, E):
    rows = assert_trainable_table(build("pca", E, data))
    U, S, _ = svd(centred(E))
    assert_equal_up_to_column_signs(rows, U[:, :HIDDEN] * S[:HIDDEN], atol=1e-5)


def test_ace_table_is_the_shrunk_uncentred_factor_rescaled(data, E):
    lam, gamma = 5.0, 0.1
    rows = assert_trainable_table(build("ace", E, data, lam=lam, gamma=gamma))
    U, S, _ = svd(E)  # not centred
    X = U[:, :HIDDEN] * np.sqrt(S[:HIDDEN] ** 2 / (S[:HIDDEN] ** 2 + lam))
    # The std over all entries depends on the columns' signs (through the global mean):
    # orient the reference like the output before rescaling.
    X = X * np.sign(np.sum(X * rows, axis=0))
    np.testing.assert_allclose(rows, X * gamma / X.std(), atol=1e-5)
    assert rows.std() == pytest.approx(gamma, rel=1e-5)


def test_recpca_table_is_the_graph_penalised_pca(data, E):
    beta, window, target_std = 0.5, 3, 0.1
    rows = assert_trainable_table(
        build("recpca", E, data, beta=beta, window=window, target_std=target_std))
    normalised = E / np.linalg.norm(E, axis=1, keepdims=True)
    Xc = centred(normalised)
    A = np.zeros((data.n_items, data.n_items))
    for sequence in data.train_sequences():
        for i in range(len(sequence)):
            for j in range(i + 1, min(i + window + 1, len(sequence))):
                if sequence[i] != sequence[j]:
                    A[sequence[i], sequence[j]] += 1
                    A[sequence[j], sequence[i]] += 1
    degree = A.sum(axis=1)
    root = np.where(degree > 0, 1 / np.sqrt(np.where(degree > 0, degree, 1)), 0)
    L = np.diag((degree > 0).astype(float)) - root[:, None] * A * root[None, :]
    values, vectors = np.linalg.eigh(Xc.T @ Xc - beta * Xc.T @ L @ Xc)
    scores = Xc @ vectors[:, ::-1][:, :HIDDEN]
    scores = scores * np.sign(np.sum(scores * rows, axis=0))
    np.testing.assert_allclose(rows, scores * target_std / scores.std(), atol=1e-5)


def test_zca_view_is_u_vt_of_the_centred_matrix(E):
    U, _, Vt = svd(centred(E))
    view = zca_view(E)
    np.testing.assert_allclose(view, U @ Vt, atol=1e-6)
    # ZCA whitening with the covariance's ddof 0 is the same matrix times sqrt(n_items).
    n = E.shape[0]
    zca = WhiteningTransformer(method="zca", eps=0.0).fit_transform(E.astype(np.float64))
    np.testing.assert_allclose(view, zca / np.sqrt(n), atol=1e-6)
    # Orthonormal columns: entries of root mean square exactly 1/sqrt(n_items).
    np.testing.assert_allclose(view.T @ view, np.eye(WIDTH), atol=1e-5)
    assert np.sqrt(np.mean(view.astype(np.float64) ** 2)) == pytest.approx(n ** -0.5, rel=1e-5)


def test_zca_group_view_concatenates_each_groups_u_vt(E):
    view = zca_view(E, n_groups=4)
    Ec = centred(E)
    for group in range(4):
        columns = slice(group * 12, (group + 1) * 12)
        U, _, Vt = svd(Ec[:, columns])
        np.testing.assert_allclose(view[:, columns], U @ Vt, atol=1e-6)
    with pytest.raises(ValueError, match="n_groups=5 does not divide the embedding width 48"):
        zca_view(E, n_groups=5)


def test_whiten_table_is_the_u_vt_view_through_an_adapter(data, E):
    table = build("whiten", E, data)
    assert_adapter(table, 1, nn.ReLU, WIDTH)
    U, _, Vt = svd(centred(E))
    np.testing.assert_allclose(table.views[0].numpy(), U @ Vt, atol=1e-6)


def test_whitenplus_table_sums_the_full_and_group_views(data, E):
    table = build("whitenplus", E, data, n_groups=4)
    assert_adapter(table, 2, nn.ReLU, WIDTH)
    full, groups = table.views.numpy()
    U, _, Vt = svd(centred(E))
    np.testing.assert_allclose(full, U @ Vt, atol=1e-6)
    np.testing.assert_allclose(groups, zca_view(E, 4), atol=0)
    for view in (full, groups):  # ~1/sqrt(n_items), far from unit variance
        assert np.sqrt(np.mean(view.astype(np.float64) ** 2)) == pytest.approx(
            data.n_items ** -0.5, rel=1e-4)


def test_alpharec_table_is_the_raw_matrix_through_a_leaky_relu_adapter(data, E):
    table = build("alpharec", E, data)
    assert_adapter(table, 1, nn.LeakyReLU, WIDTH)
    np.testing.assert_array_equal(table.views[0].numpy(), E)


def test_llmemb_table_is_centred_pca_scores_through_a_linear_adapter(data, E):
    table = build("llmemb", E, data)
    width = min(1536, *E.shape)
    assert_adapter(table, 1, None, width)
    U, S, _ = svd(centred(E))
    assert_equal_up_to_column_signs(table.views[0].numpy(), U[:, :width] * S[:width],
                                    atol=1e-5)


@pytest.mark.parametrize("activation", ["linear", "relu", "leaky_relu"])
@pytest.mark.parametrize("n_views", [1, 2])
def test_an_adapter_equals_its_two_layers_per_view_in_value_and_gradient(n_views, activation):
    # The fast paths: a linear adapter as one map, the second layer once on the views' sum.
    rng = np.random.default_rng(0)
    views = [rng.standard_normal((50, 24)).astype(np.float32) for _ in range(n_views)]
    table = AdapterTable(views, 8, activation=activation, init="torch")
    outputs, grads = [], []
    for forward in (table.forward, lambda: torch.cat([  # the plain two-layer pass
            torch.zeros(1, 8), table.mlp(table.views).sum(dim=0)])):
        table.zero_grad()
        out = forward()
        (out * torch.linspace(-1, 1, out.numel()).reshape(out.shape)).sum().backward()
        outputs.append(out.detach())
        grads.append([p.grad.clone() for p in table.parameters()])
    torch.testing.assert_close(outputs[0], outputs[1], rtol=1e-5, atol=1e-5)
    assert outputs[0][0].abs().max() == 0  # the padding row
    for fast, plain in zip(*grads):
        torch.testing.assert_close(fast, plain, rtol=1e-4, atol=1e-5)
    assert all(g.abs().max() > 0 for g in grads[0])


def test_alphafuse_table_is_standardised_principal_coordinates_plus_a_normal_residual(data, E):
    table = build("alphafuse", E, data)
    assert isinstance(table, AlphaFuseTable)
    assert set(dict(table.named_buffers())) == {"semantic", "null_slots"}
    assert [name for name, _ in table.named_parameters()] == ["residual"]
    Ec = centred(E)
    values, vectors = np.linalg.eigh(np.cov(Ec, rowvar=False, ddof=1))
    values, vectors = values[::-1][:HIDDEN], vectors[:, ::-1][:, :HIDDEN]
    assert_equal_up_to_column_signs(table.semantic.numpy(), Ec @ vectors / np.sqrt(values),
                                    atol=1e-4)
    null = HIDDEN // 2
    np.testing.assert_array_equal(table.null_slots.numpy(), np.arange(HIDDEN - null, HIDDEN))
    residual = table.residual.detach().numpy()
    assert residual.shape == (data.n_items, null) and table.residual.requires_grad
    assert 0.93 < residual.std() < 1.07 and abs(residual.mean()) < 0.07
    weights = table().detach().numpy()
    np.testing.assert_array_equal(weights[0], 0.0)
    semantic = table.semantic.numpy()
    np.testing.assert_array_equal(weights[1:, : HIDDEN - null], semantic[:, : HIDDEN - null])
    np.testing.assert_allclose(weights[1:, HIDDEN - null:],
                               semantic[:, HIDDEN - null:] + residual, rtol=1e-6)


def test_alphafuse_zero_residual_is_an_option(data, E):
    table = build("alphafuse", E, data, residual_init="zeros")
    assert float(table.residual.detach().abs().max()) == 0.0
    np.testing.assert_array_equal(table().detach().numpy()[1:], table.semantic.numpy())
    with pytest.raises(ValueError, match=r"init='uniform' must be one of \['normal', 'zeros'\]"):
        build("alphafuse", E, data, residual_init="uniform")


def test_xavier_adapter_init_is_an_option(data, E):
    table = build("whitenplus", E, data, n_groups=4, adapter_init="xavier")
    first, second = [m for m in table.mlp if isinstance(m, nn.Linear)]
    for layer in (first, second):
        std = np.sqrt(2.0 / (layer.in_features + layer.out_features))
        assert 0.85 * std < layer.weight.detach().numpy().std() < 1.15 * std
        bound = 1 / np.sqrt(layer.in_features)
        bias = layer.bias.detach().numpy()
        assert bias.any() and np.abs(bias).max() <= bound
    with pytest.raises(ValueError, match=r"init='kaiming' must be one of"):
        build("alpharec", E, data, adapter_init="kaiming")


def _xavier_std(layer_or_shape):
    rows, cols = (layer_or_shape.weight.shape if isinstance(layer_or_shape, nn.Module)
                  else layer_or_shape)
    return np.sqrt(2.0 / (rows + cols))


@pytest.mark.parametrize("method", ["whiten", "whitenplus", "alpharec"])
def test_gru4rec_cells_draw_adapters_and_output_layer_xavier_as_the_reference(data, E, method):
    from recmodels.comparison.methods import METHODS
    from recmodels.models import GRU4Rec

    torch.manual_seed(0)
    on_gru = build_table(method, E, data, HIDDEN, backbone="gru4rec")
    torch.manual_seed(0)
    on_sasrec = build_table(method, E, data, HIDDEN, backbone="sasrec")
    assert (on_gru.init, on_sasrec.init) == ("xavier", "normal")
    for layer in (m for m in on_gru.mlp if isinstance(m, nn.Linear)):
        std = _xavier_std(layer)
        assert 0.85 * std < layer.weight.detach().numpy().std() < 1.15 * std
        assert layer.bias.detach().numpy().any()
    model = GRU4Rec(on_gru, max_len=10, **METHODS[method].backbone_settings["gru4rec"])
    std = _xavier_std(model.out)
    assert 0.85 * std < model.out.weight.detach().numpy().std() < 1.15 * std
    default = GRU4Rec(on_gru, max_len=10).out.weight.detach().numpy()  # kaiming-uniform
    assert np.abs(default).max() <= 1 / np.sqrt(model.out.in_features)
    # An explicit override still wins over the backbone's default.
    assert build_table(method, E, data, HIDDEN, {"adapter_init": "normal"},
                       backbone="gru4rec").init == "normal"


def test_gru4rec_id_table_is_xavier_normal_and_llmemb_adapter_torch_default(data, E):
    torch.manual_seed(0)
    rows = build_table("id", E, data, HIDDEN, backbone="gru4rec")().detach().numpy()[1:]
    std = _xavier_std((data.n_items + 1, HIDDEN))
    assert 0.95 * std < rows.std() < 1.05 * std and abs(std - 0.02) > 0.05  # not N(0, 0.02)
    torch.manual_seed(0)
    llmemb = build_table("llmemb", E, data, HIDDEN, backbone="gru4rec")
    for layer in (m for m in llmemb.mlp if isinstance(m, nn.Linear)):
        bound = 1 / np.sqrt(layer.in_features)  # torch's nn.Linear default: U(-bound, bound)
        weight = layer.weight.detach().numpy()
        assert np.abs(weight).max() <= bound and weight.std() > 0.5 * bound / np.sqrt(3)


def test_sasrec_and_bert4rec_settings_are_the_plain_defaults():
    """Backbone defaults apply to GRU4Rec only: other cells keep their fingerprints."""
    from recmodels.comparison.methods import METHODS

    for method in METHODS.values():
        for backbone in ("sasrec", "bert4rec", None):
            assert method.settings(backbone) == method.defaults
    from recmodels.comparison.arguments import overrides

    # A GRU4Rec-only setting can still be set from the command line.
    assert overrides(["id.init=normal", "llmemb.adapter_init=xavier"]) == {
        "id": {"init": "normal"}, "llmemb": {"adapter_init": "xavier"}}


def test_bench_adapter_times_both_passes_on_beauty_and_they_agree(beauty_dir):
    bench = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_adapter.py"
    result = subprocess.run(
        [sys.executable, str(bench), "--data", str(beauty_dir), "--methods", "whitenplus,whiten",
         "--repeats", "1", "--threads", "1"], capture_output=True, text=True, check=True,
        timeout=300)
    rows = re.findall(r"^(\w+)\s+(\d) +384 -> 192 -> 128\s+([0-9.]+)\s+([0-9.]+)\s+"
                      r"([0-9.]+)x\s+(\S+)$", result.stdout, flags=re.M)
    assert [(name, views) for name, views, *_ in rows] == [("whitenplus", "2"), ("whiten", "1")]
    assert all(float(row[2]) > 0 and float(row[3]) > 0 for row in rows)
    assert float(rows[0][5]) < 1e-5  # the summed second layer, to rounding
    assert float(rows[1][5]) == 0.0  # one view runs the plain layers


@pytest.mark.parametrize("build, message", [
    (lambda E: TrainableTable(0, 8), "n_items=0 must be a positive integer"),
    (lambda E: TrainableTable(5, 0), "hidden_size=0 must be a positive integer"),
    (lambda E: TrainableTable(5, 8.0), r"hidden_size=8.0 must be a positive integer"),
    (lambda E: TrainableTable(5, 8, init_std=-1.0), "init_std=-1.0 must be a standard"),
    (lambda E: AdapterTable([E], 0), "hidden_size=0 must be a positive integer"),
    (lambda E: AdapterTable([E], 8, inner_size=0), "inner_size=0 must be a positive integer"),
])
def test_a_table_with_no_rows_or_columns_is_refused_where_it_is_built(E, build, message):
    with pytest.raises(ValueError, match=message):
        build(E)
    assert TrainableTable(np.int64(5), 8).weight.shape == (5, 8)

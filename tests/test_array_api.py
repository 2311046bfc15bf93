"""The array API path: under ``array_api_dispatch=True`` the moment-based reshapers take torch
tensors and array-api-strict arrays, keep them in their namespace and on their device, and
agree with the NumPy fit."""

import os
import subprocess
import sys
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from sklearn import config_context
from sklearn.utils.estimator_checks import check_array_api_input_and_values

from ace_transform import (
    ACETransformer,
    AlphaFuseSplitter,
    PCAInit,
    RecPCA,
    WhiteningTransformer,
)
from ace_transform._compat import get_namespace_and_device, move_to

ROOT = Path(__file__).resolve().parents[1]
RESHAPERS = {
    "ace": lambda: ACETransformer(n_components=4, lam=5.0),
    "ace-centred": lambda: ACETransformer(n_components=4, lam=0.0, center=True),
    "whiten-pca": lambda: WhiteningTransformer(n_components=5, eps=0.0),
    "whiten-zca-groups": lambda: WhiteningTransformer(method="zca", n_groups=2),
    "pca-init": lambda: PCAInit(n_components=4, target_std=0.1),
    "alphafuse": lambda: AlphaFuseSplitter(n_components=6, null_dim=2),
}


NAMESPACES = [
    pytest.param("array_api_strict", None, id="array_api_strict"),
    pytest.param("torch", "cpu", id="torch-cpu"),
    pytest.param("torch", "cuda", id="torch-cuda"),
]


@pytest.fixture
def dispatch(monkeypatch):
    # scikit-learn asks for SciPy's array API mode before it enables dispatch; the
    # reshapers solve their small eigenproblems with NumPy/SciPy on the host either way.
    monkeypatch.setenv("SCIPY_ARRAY_API", "1")
    with config_context(array_api_dispatch=True):
        yield


def namespace(name, device):
    module = pytest.importorskip(name)
    if name == "torch" and device == "cuda" and not module.cuda.is_available():
        pytest.skip("no CUDA device")
    if name == "torch":
        return lambda E: module.asarray(E, device=device)
    return module.asarray


def embeddings(n_rows=400, n_cols=12, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    E = rng.standard_normal((n_rows, n_cols)) * np.geomspace(3.0, 0.1, n_cols) + 0.3
    return E.astype(dtype)


def to_numpy(array):
    return move_to(array, xp=np, device="cpu")


def same_place(a, b) -> bool:
    xp_a, _, device_a = get_namespace_and_device(a)
    xp_b, _, device_b = get_namespace_and_device(b)
    return xp_a is xp_b and device_a == device_b


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("name", sorted(RESHAPERS))
@pytest.mark.parametrize("xp_name, device", NAMESPACES)
def test_array_api_fit_and_transform_equal_numpy(dispatch, xp_name, device, name, dtype):
    asarray = namespace(xp_name, device)
    E = embeddings(dtype=dtype)
    X = asarray(E)
    reference = RESHAPERS[name]().fit(E)
    estimator = RESHAPERS[name]().fit(X)

    # Fitted arrays live where X lives, in float64 like the NumPy fit's.
    assert same_place(estimator.projection_, X)
    assert same_place(estimator.offset_, X)
    assert to_numpy(estimator.projection_).dtype == np.float64
    assert estimator.n_features_in_ == 12 and estimator.n_samples_seen_ == 400

    Z = estimator.transform(X)
    assert same_place(Z, X)
    assert Z.dtype == X.dtype  # float32 stays float32
    tolerance = 1e-4 if dtype == np.float32 else 1e-9
    expected = reference.transform(E)
    scale = float(np.abs(expected).max())
    assert float(np.abs(to_numpy(Z) - expected).max()) <= tolerance * scale
    assert float(np.abs(to_numpy(estimator.projection_) - reference.projection_).max()) <= (
        tolerance * float(np.abs(reference.projection_).max()))
    np.testing.assert_allclose(to_numpy(RESHAPERS[name]().fit_transform(X)), to_numpy(Z),
                               rtol=1e-6, atol=1e-6 * scale)


@pytest.mark.parametrize("xp_name, device", NAMESPACES)
def test_partial_fit_on_device_chunks_equals_a_numpy_fit(dispatch, xp_name, device):
    asarray = namespace(xp_name, device)
    E = embeddings()
    estimator = ACETransformer(n_components=4).partial_fit(asarray(E[:150]))
    estimator.partial_fit(asarray(E[150:]))
    assert estimator.n_samples_seen_ == 400
    assert same_place(estimator.projection_, asarray(E[:1]))
    np.testing.assert_allclose(to_numpy(estimator.projection_),
                               ACETransformer(n_components=4).fit(E).projection_,
                               rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(
    "estimator", [RESHAPERS[name]() for name in sorted(RESHAPERS)], ids=sorted(RESHAPERS)
)
@pytest.mark.parametrize("xp_name, device", NAMESPACES)
def test_scikit_learn_array_api_check_with_values(dispatch, xp_name, device, estimator):
    pytest.importorskip(xp_name)
    check = partial(check_array_api_input_and_values, array_namespace=xp_name,
                    device_name=device)
    check(type(estimator).__name__, estimator)


def test_namespace_of_transform_must_match_fit(dispatch):
    torch = pytest.importorskip("torch")
    E = embeddings()
    estimator = PCAInit(n_components=3).fit(torch.asarray(E))
    with pytest.raises(ValueError, match=r"PCAInit.transform\(\) must use the same namespace"):
        estimator.transform(E)


def test_non_finite_rows_are_named_on_device(dispatch):
    torch = pytest.importorskip("torch")
    E = embeddings(dtype=np.float32)
    E[123, 4] = np.inf
    with pytest.raises(ValueError, match=r"contains inf \(NaN or inf\) in 1 row\(s\), "
                                         r"first at row 123"):
        ACETransformer(n_components=4).fit(torch.asarray(E))


def test_float16_tensor_gives_float32(dispatch):
    torch = pytest.importorskip("torch")
    X = torch.asarray(embeddings(), dtype=torch.float16)
    Z = ACETransformer(n_components=4).fit_transform(X)
    assert isinstance(Z, torch.Tensor) and Z.dtype == torch.float32


def test_recpca_refuses_non_numpy_arrays(dispatch):
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match="RecPCA.fit works on NumPy arrays only, got torch"):
        RecPCA(n_components=3).fit(torch.asarray(embeddings()))


def test_without_dispatch_tensors_become_numpy():
    # scikit-learn's default: without dispatch a CPU tensor is converted with np.asarray
    # (to float64, since a torch dtype is not a NumPy one).
    torch = pytest.importorskip("torch")
    E = embeddings()
    estimator = ACETransformer(n_components=4).fit(torch.asarray(E))
    assert isinstance(estimator.projection_, np.ndarray)
    Z = estimator.transform(torch.asarray(E))
    assert isinstance(Z, np.ndarray)
    np.testing.assert_allclose(Z, ACETransformer(n_components=4).fit_transform(E), rtol=1e-9)


def test_dask_input_under_dispatch_stays_lazy(dispatch):
    da = pytest.importorskip("dask.array")
    dask = pytest.importorskip("dask")
    E = embeddings()
    X = da.from_array(E, chunks=(100, -1))
    with dask.config.set(scheduler="sync"):
        estimator = ACETransformer(n_components=4).fit(X)
        Z = estimator.transform(X)
        assert isinstance(Z, da.Array)
        expected = ACETransformer(n_components=4).fit(E).transform(E)
        np.testing.assert_allclose(Z.compute(), expected, rtol=1e-9, atol=1e-12)


def test_array_api_path_does_not_import_torch():
    pytest.importorskip("array_api_strict")
    code = (
        "import sys\n"
        "import numpy as np, array_api_strict as xp, sklearn\n"
        "from ace_transform import ACETransformer\n"
        "E = xp.asarray(np.random.default_rng(0).standard_normal((50, 6)))\n"
        "with sklearn.config_context(array_api_dispatch=True):\n"
        "    Z = ACETransformer(n_components=2).fit(E).transform(E)\n"
        "print(type(Z).__module__.split('.')[0], 'torch' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, cwd=ROOT, timeout=120,
                            env={**os.environ, "SCIPY_ARRAY_API": "1"})
    assert result.stdout.split() == ["array_api_strict", "False"]

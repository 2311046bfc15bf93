"""Moment-based reshapers on dask arrays: a blockwise tree-reduced fit on a local 2-worker
``distributed`` cluster, a lazy blockwise transform, and the same result as on NumPy."""

import collections
import re
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")

from dask.utils import key_split  # noqa: E402

from ace_transform import (  # noqa: E402
    ACETransformer,
    AlphaFuseSplitter,
    PCAInit,
    RecPCA,
    WhiteningTransformer,
)
from ace_transform._base import _MomentReshaper  # noqa: E402
from ace_transform._dask import SPLIT_EVERY  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESHAPERS = {
    "ace": lambda: ACETransformer(n_components=4, lam=5.0),
    "ace-centred": lambda: ACETransformer(n_components=4, lam=0.0, center=True),
    "whiten-pca": lambda: WhiteningTransformer(n_components=5, eps=0.0),
    "whiten-zca-groups": lambda: WhiteningTransformer(method="zca", n_groups=3),
    "pca-init": lambda: PCAInit(n_components=4, target_std=0.1),
    "alphafuse": lambda: AlphaFuseSplitter(n_components=6, null_dim=2),
}


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        with distributed.Client(cluster) as client:
            yield client


def embeddings(n_rows=700, n_cols=12, dtype=np.float64, seed=0):
    """Anisotropic rows with an offset, so centred and uncentred fits differ."""
    rng = np.random.default_rng(seed)
    E = rng.standard_normal((n_rows, n_cols)) * np.geomspace(3.0, 0.1, n_cols) + 0.3
    return E.astype(dtype)


def assert_close(actual, expected, dtype):
    # float32 Gram products are summed per block, in another order than the NumPy pass.
    tolerance = 1e-4 if dtype == np.float32 else 1e-9
    scale = max(float(np.abs(expected).max()), 1e-300)
    assert float(np.abs(np.asarray(actual) - expected).max()) <= tolerance * scale


def test_every_moment_reshaper_is_covered():
    # A new moment-based reshaper must be added to RESHAPERS.
    covered = {type(make()) for make in RESHAPERS.values()}
    assert covered == {ACETransformer, WhiteningTransformer, PCAInit, AlphaFuseSplitter}
    assert all(issubclass(cls, _MomentReshaper) for cls in covered)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("name", sorted(RESHAPERS))
def test_dask_fit_and_transform_equal_numpy(client, name, dtype):
    E = embeddings(dtype=dtype)
    # Uneven row blocks and split columns (which the fit rechunks to one column block).
    X = da.from_array(E, chunks=(97, 5))
    reference = RESHAPERS[name]().fit(E)
    estimator = RESHAPERS[name]().fit(X)

    assert estimator.n_features_in_ == 12
    assert estimator.n_samples_seen_ == 700
    assert estimator._partial_statistics.gram.dtype == np.float64
    assert_close(estimator._partial_statistics.gram, reference._partial_statistics.gram, dtype)
    assert_close(estimator.projection_, reference.projection_, dtype)
    assert_close(estimator.offset_, reference.offset_, dtype)

    Z = estimator.transform(X)
    assert isinstance(Z, da.Array)  # lazy
    assert Z.dtype == dtype
    assert Z.chunks == (X.chunks[0], (reference.projection_.shape[1],))
    computed = Z.compute()
    assert computed.dtype == dtype
    assert_close(computed, reference.transform(E), dtype)


@pytest.mark.parametrize("name", sorted(RESHAPERS))
def test_dask_fit_transform_and_partial_fit_equal_numpy(client, name):
    E = embeddings()
    X = da.from_array(E, chunks=(150, -1))
    reference = RESHAPERS[name]().fit(E)
    Z = RESHAPERS[name]().fit_transform(X)
    assert isinstance(Z, da.Array)
    assert_close(Z.compute(), reference.transform(E), np.float64)

    chunked = RESHAPERS[name]().partial_fit(X[:300]).partial_fit(E[300:])
    assert chunked.n_samples_seen_ == 700
    assert_close(chunked.projection_, reference.projection_, np.float64)


def test_fit_is_a_tree_reduction_on_the_workers(client):
    E = embeddings()
    X = da.from_array(E, chunks=(20, -1))  # 35 blocks
    with distributed.get_task_stream(client) as stream:
        ACETransformer(n_components=4).fit(X)
    tasks = collections.Counter(key_split(task["key"]) for task in stream.data)
    assert tasks["summarise_block"] == 35
    # 35 summaries -> ceil(35 / 8) = 5 merges -> 1 merge.
    assert SPLIT_EVERY == 8
    assert tasks["merge_summaries"] == 6
    workers = set(client.scheduler_info()["workers"])
    assert {task["worker"] for task in stream.data} <= workers


def test_fit_reads_each_block_once_and_transform_reads_nothing_until_computed():
    E = embeddings()
    reads = collections.Counter()
    lock = threading.Lock()

    def counted(block, block_info=None):
        with lock:
            reads[block_info[0]["chunk-location"][0]] += 1
        return block

    X = da.from_array(E, chunks=(100, -1)).map_blocks(counted, dtype=E.dtype,
                                                      meta=np.empty((0, 0)))
    with dask.config.set(scheduler="threads"):
        estimator = ACETransformer(n_components=4).fit(X)
        assert reads == {block: 1 for block in range(7)}
        Z = estimator.transform(X)
        assert sum(reads.values()) == 7
        Z.compute()
        assert reads == {block: 2 for block in range(7)}


def test_output_is_written_chunk_by_chunk(client, tmp_path):
    E = embeddings(dtype=np.float32)
    X = da.from_array(E, chunks=(128, -1))
    estimator = ACETransformer(n_components=4).fit(X)
    da.to_npy_stack(tmp_path, estimator.transform(X), axis=0)
    assert len(list(tmp_path.glob("*.npy"))) == len(X.chunks[0])  # one file per block
    stored = da.from_npy_stack(tmp_path).compute()
    assert stored.dtype == np.float32
    assert_close(stored, ACETransformer(n_components=4).fit(E).transform(E), np.float32)


def test_non_finite_rows_are_named(client):
    E = embeddings()
    E[250, 3] = np.nan
    E[600, 0] = np.inf
    X = da.from_array(E, chunks=(100, -1))
    with pytest.raises(ValueError, match=r"contains NaN \(NaN or inf\) in 2 row\(s\), first at "
                                         r"row 250\. Re-encode"):
        ACETransformer(n_components=4).fit(X)
    fitted = ACETransformer(n_components=4).fit(embeddings())
    E[600, 0] = 0.0  # one bad block left, so the error does not depend on the task order
    Z = fitted.transform(da.from_array(E, chunks=(100, -1)))  # lazy: nothing checked yet
    with pytest.raises(ValueError, match=r"in 1 row\(s\) of the block of rows 200 to 299, "
                                         r"first at row 250"):
        Z.compute()


def test_unknown_chunk_sizes(client):
    E = embeddings()
    X = da.from_array(E, chunks=(100, -1))
    X = X[X[:, 0] > -np.inf]  # every row kept, but dask no longer knows the block sizes
    assert np.isnan(X.shape[0])
    reference = ACETransformer(n_components=4).fit(E)
    estimator = ACETransformer(n_components=4).fit(X)
    assert estimator.n_samples_seen_ == 700
    assert_close(estimator.projection_, reference.projection_, np.float64)
    assert_close(estimator.transform(X).compute(), reference.transform(E), np.float64)

    E[250, 3] = np.nan
    X = da.from_array(E, chunks=(100, -1))
    X = X[X[:, 0] > -np.inf]
    with pytest.raises(ValueError, match=r"in 1 row\(s\)\. Re-encode"):
        ACETransformer(n_components=4).fit(X)


def test_dtypes_follow_the_numpy_rules():
    E = embeddings()
    with dask.config.set(scheduler="sync"):
        half = da.from_array(E.astype(np.float16), chunks=(200, -1))
        Z = ACETransformer(n_components=4).fit(half).transform(half)
        assert Z.dtype == np.float32 and Z.compute().dtype == np.float32
        integers = da.from_array(np.rint(E * 10).astype(np.int64), chunks=(200, -1))
        assert PCAInit(n_components=3).fit(integers).transform(integers).dtype == np.float64


def test_shape_dtype_and_width_errors():
    E = embeddings()
    estimator = ACETransformer(n_components=4).fit(da.from_array(E, chunks=(200, -1)))
    with pytest.raises(ValueError, match="X has 7 features, but ACETransformer is expecting "
                                         "12 features as input. Transform rows that come"):
        estimator.transform(da.from_array(E[:, :7]))
    with pytest.raises(ValueError, match=r"Expected a 2-D dask array .* got ndim=1"):
        ACETransformer(n_components=4).fit(da.from_array(E[:, 0]))
    with pytest.raises(ValueError, match="Unsupported dtype complex128"):
        ACETransformer(n_components=4).fit(da.from_array(E.astype(complex)))
    with pytest.raises(ValueError, match=r"Found array with 0 sample\(s\)"):
        ACETransformer(n_components=4).fit(da.from_array(E[:0]))
    with pytest.raises(ValueError, match=r"n_components=20 must be <= min\(n_samples, "
                                         r"n_features\)=12"):
        ACETransformer(n_components=20).fit(da.from_array(E, chunks=(200, -1)))


def test_recpca_fits_on_numpy_only_but_transforms_dask():
    E = embeddings()
    X = da.from_array(E, chunks=(200, -1))
    with pytest.raises(TypeError, match="RecPCA.fit needs the whole matrix in memory"):
        RecPCA(n_components=4).fit(X)
    with pytest.raises(TypeError, match="does not accept a dask array"):
        RecPCA(n_components=4).fit_transform(X)
    fitted = RecPCA(n_components=4).fit(E)
    with dask.config.set(scheduler="sync"):
        Z = fitted.transform(X)
        assert isinstance(Z, da.Array)
        np.testing.assert_allclose(Z.compute(), fitted.transform(E), rtol=1e-12, atol=1e-12)


def test_ace_transform_imports_and_fits_without_dask():
    code = (
        "import sys; sys.modules['dask'] = None\n"
        "import numpy as np\n"
        "from ace_transform import ACETransformer\n"
        "E = np.random.default_rng(0).standard_normal((50, 6))\n"
        "print(ACETransformer(n_components=2).fit(E).transform(E).shape)\n"
        "print(any(name.startswith('dask') and sys.modules[name] is not None\n"
        "          for name in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, cwd=ROOT, timeout=120)
    assert result.stdout.split("\n")[:2] == ["(50, 2)", "False"]


def test_bench_scale_runs_and_matches_numpy(tmp_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_scale.py"), "--rows", "6000",
         "--cols", "32", "--k", "8", "--chunk-rows", "1000", "--dir", str(tmp_path)],
        capture_output=True, text=True, check=True, timeout=300,
    )
    out = result.stdout
    assert "6 blocks of 1,000 rows" in out
    assert re.search(r"dask peak RSS of the process tree: [0-9.]+ GB", out)
    assert "numpy in memory, 6,000 rows" in out
    difference = float(re.search(r"max \|dask - numpy\| / max \|numpy\| = ([0-9.e+-]+)",
                                 out).group(1))
    assert difference < 1e-5
    assert list(tmp_path.iterdir()) == []  # the temporary files are removed

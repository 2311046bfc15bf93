"""Bad input stops with a ValueError, or one ace-bench error line, naming the problem and fix."""

import re

import numpy as np
import pytest
import torch
from sklearn.utils._param_validation import InvalidParameterError

from ace_transform import (
    ACETransformer,
    AlphaFuseSplitter,
    RecPCA,
    WhiteningTransformer,
    mean_pairwise_cosine,
)

X = np.random.default_rng(0).standard_normal((20, 6))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_rows_are_named(bad):
    Xbad = X.copy()
    Xbad[7, 2] = bad
    with pytest.raises(ValueError, match=r"NaN or inf.*first at row 7.*drop their rows"):
        ACETransformer(n_components=2).fit(Xbad)
    fitted = ACETransformer(n_components=2).fit(X)
    with pytest.raises(ValueError, match="first at row 7"):
        fitted.transform(Xbad)


def test_one_dimensional_and_empty_input():
    with pytest.raises(ValueError, match="Expected 2D array"):
        ACETransformer(n_components=2).fit(X[0])
    with pytest.raises(ValueError, match="0 sample"):
        ACETransformer(n_components=2).fit(np.empty((0, 6)))


def test_too_many_components():
    with pytest.raises(ValueError, match=r"n_components=7 must be <= min\(n_samples, n_features\)=6.*lower n_components"):
        ACETransformer(n_components=7).fit(X)


@pytest.mark.parametrize(
    "params, pattern",
    [
        ({"lam": -1.0}, r"'lam' parameter of ACETransformer must be a float in the range \[0(\.0)?, inf\)"),
        ({"gamma": 0.0}, r"'gamma' parameter of ACETransformer must be a float in the range \(0(\.0)?, inf\)"),
        ({"n_components": 0}, r"'n_components' parameter of ACETransformer"),
    ],
)
def test_parameter_errors(params, pattern):
    with pytest.raises(InvalidParameterError, match=pattern):
        ACETransformer(**params).fit(X)
    assert issubclass(InvalidParameterError, ValueError)


def test_feature_count_mismatch_names_the_fix():
    fitted = ACETransformer(n_components=2).fit(X)
    with pytest.raises(ValueError, match="X has 5 features, but ACETransformer is expecting 6.*same encoder"):
        fitted.transform(X[:, :5])


def test_groups_must_divide_features():
    with pytest.raises(ValueError, match=r"n_groups=4 does not divide n_features=6; choose one of \[1, 2, 3, 6\]"):
        WhiteningTransformer(n_groups=4).fit(X)
    with pytest.raises(ValueError, match="n_components=None when n_groups=2"):
        WhiteningTransformer(n_groups=2, n_components=2).fit(X)


def test_cooccurrence_item_outside_matrix():
    with pytest.raises(ValueError, match="item index 20, but the embedding matrix has 20 rows"):
        RecPCA(n_components=2).fit(X, sequences=[[0, 1], [3, 20]])
    with pytest.raises(ValueError, match="item index -1"):
        RecPCA(n_components=2).fit(X, sequences=[[0, -1]])
    with pytest.raises(ValueError, match=r"sequences\[1\] holds float64 values, e.g. 0.5; "
                                         r"pass integer item indices"):
        RecPCA(n_components=2).fit(X, sequences=[[0, 1], [0.5, 1.0]])


def test_alphafuse_null_dim_too_large():
    with pytest.raises(ValueError, match="null_dim=5 must be <= n_components=3"):
        AlphaFuseSplitter(n_components=3, null_dim=5).fit(X)


def test_zero_rows_in_cosine():
    Xz = X.copy()
    Xz[3] = 0
    with pytest.raises(ValueError, match="all-zero row.*row 3"):
        mean_pairwise_cosine(Xz)


# ace-bench: user errors are one line on stderr, exit status 2, nothing written to --out.

import pandas as pd  # noqa: E402

from recmodels.comparison.cli import main  # noqa: E402
from recmodels.comparison.inputs import InputError, load_embeddings  # noqa: E402
from recmodels_helpers import toy_folder  # noqa: E402


@pytest.fixture
def folder(tmp_path):
    return toy_folder(tmp_path / "toy", n_users=30, n_items=12, width=8, shift=0.0,
                      dtype=np.float64)


def run_bench(folder, out, *extra, embeddings="emb.npy"):
    argv = ["--data", str(folder), "--out", str(out), "--methods", "id", "--max-epochs", "1",
            "--k-core", "1", "--hidden-size", "8", "--max-len", "6", *extra]
    if embeddings is not None:
        argv += ["--embeddings", str(folder / embeddings)]
    return main(argv)


def single_error_line(capsys):
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("ace-bench: error: ")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    # Only the filter report may come before the error; nothing after it.
    assert err.rstrip().splitlines()[-1] == lines[0]
    return lines[0][len("ace-bench: error: "):]


def save_bad(path, kind):
    if kind == "object":
        np.save(path, np.array([{"a": 1}] * 12, dtype=object), allow_pickle=True)
    elif kind == "pickle":
        import pickle

        path.write_bytes(pickle.dumps(np.ones((12, 8))))
    elif kind == "text":
        np.savetxt(path, np.ones((12, 8)))
    elif kind == "npz":
        with open(path, "wb") as stream:
            np.savez(stream, E=np.ones((12, 8)))
    elif kind == "truncated":
        np.save(path, np.ones((12, 8)))
        path.write_bytes(path.read_bytes()[:150])
    elif kind == "1-D":
        np.save(path, np.ones(12))
    elif kind == "int":
        np.save(path, np.ones((12, 8), dtype=np.int64))
    elif kind == "bool":
        np.save(path, np.ones((12, 8), dtype=bool))
    elif kind == "nan":
        matrix = np.ones((12, 8))
        matrix[4, 1] = np.nan
        np.save(path, matrix)


BAD_EMBEDDINGS = {
    "object": r"holds an object array, which would have to be unpickled.*np\.save",
    "pickle": r"is not a \.npy file.*np\.save",
    "text": r"is not a \.npy file.*np\.save",
    "npz": r"is an \.npz archive, not a \.npy file",
    "truncated": r"could not be read .*truncated",
    "1-D": r"holds a 1-D array of dtype float64, not a matrix of floats; it needs shape "
           r"\(n_items, n_features\)",
    "int": r"holds a 2-D array of dtype int64, not a matrix of floats",
    "bool": r"holds a 2-D array of dtype bool, not a matrix of floats",
    "nan": r"contains NaN or inf in 1 row\(s\), first at row 4; re-encode those items",
}


@pytest.mark.parametrize("kind", sorted(BAD_EMBEDDINGS))
def test_bad_embedding_files_are_named_with_the_fix(folder, tmp_path, capsys, kind):
    path = folder / "bad.npy"
    save_bad(path, kind)
    with pytest.raises(InputError, match=rf"^{re.escape(str(path))}: {BAD_EMBEDDINGS[kind]}"):
        load_embeddings(path, 12)
    out = tmp_path / "out"
    assert run_bench(folder, out, embeddings="bad.npy") == 2
    message = single_error_line(capsys)
    assert message.startswith(f"{path}: ")
    assert re.search(BAD_EMBEDDINGS[kind], message)
    assert "allow_pickle" not in message  # numpy's own advice to unpickle is not passed on
    assert not out.exists()


def test_missing_embedding_file(folder, tmp_path, capsys):
    assert run_bench(folder, tmp_path / "out", embeddings="nope.npy") == 2
    assert single_error_line(capsys) == (
        f"{folder / 'nope.npy'}: no such file; pass a .npy matrix saved with np.save, one row "
        f"per item of {folder / 'items.csv.gz'}.")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_float_embeddings_become_float32(tmp_path, dtype):
    matrix = np.random.default_rng(0).standard_normal((5, 3)).astype(dtype)
    np.save(tmp_path / "E.npy", matrix)
    loaded = load_embeddings(tmp_path / "E.npy", 5)
    assert loaded.dtype == np.float32 and loaded.flags.c_contiguous
    np.testing.assert_array_equal(loaded, matrix.astype(np.float32))


def test_float16_embeddings_run_end_to_end(folder, tmp_path):
    E = np.load(folder / "emb.npy").astype(np.float16)
    np.save(folder / "half.npy", E)
    out = tmp_path / "out"
    assert run_bench(folder, out, embeddings="half.npy") == 0
    assert (out / "results.csv").is_file()


def _bad_timestamps(folder):
    log = pd.read_csv(folder / "interactions.csv.gz").rename(columns={"position": "timestamp"})
    log["timestamp"] = log["timestamp"].astype(float)
    log.loc[[7, 20], "timestamp"] = np.nan
    log.to_csv(folder / "interactions.csv.gz", index=False)
    return f"{folder / 'interactions.csv.gz'}: column 'timestamp' has 2 missing or non-numeric"


@pytest.mark.parametrize(
    "case, extra, expected",
    [
        ("no folder", ["--data", "{tmp}/nowhere"], "--data {tmp}/nowhere: no such folder"),
        ("timestamps", [], None),
        ("method", ["--methods", "id,bm25"],
         r"--methods id,bm25: unknown name(s) ['bm25']; choose from ["),
        ("backbone", ["--backbones", "transformer"],
         "--backbones transformer: unknown name(s) ['transformer']; choose from ["),
        ("seeds", ["--seeds", "0,a"],
         "--seeds 0,a: not a list of integers from 0 to 2**32 - 1; write e.g."),
        ("negative seed", ["--seeds", "0,-1"],
         "--seeds 0,-1: not a list of integers from 0 to 2**32 - 1; write e.g. --seeds 0,1,2."),
        ("param format", ["--param", "ace.lam"], "--param ace.lam: write METHOD.SETTING=VALUE"),
        ("param method", ["--param", "bm25.k=1"], "--param bm25.k=1: unknown method 'bm25'"),
        ("param setting", ["--param", "ace.lamda=1"],
         "--param ace.lamda=1: method 'ace' has no setting 'lamda'; it takes ['center', "
         "'gamma', 'lam']."),
        ("param value", ["--param", "ace.lam=ten"],
         "--param ace.lam=ten: 'ten' is not a number, True, False or None; write e.g. "
         "ace.lam=50.0."),
        ("out is a file", ["--out", "{tmp}/file"], "--out {tmp}/file: is a file, not a folder"),
        ("batch size", ["--batch-size", "0"],
         "--batch-size 0: must be a positive integer; write e.g. --batch-size 256."),
        ("k-core", ["--k-core", "99"], "--data {folder}: no interactions are left after 99-core"),
        ("max history", ["--max-history", "2"],
         "--max-history 2: a user needs at least 3 interactions (training, validation, test); "
         "write e.g. --max-history 100, or leave it out to keep all."),
        # Checked by building every method's model before the first cell trains.
        ("wider than the embeddings", ["--methods", "id,ace", "--hidden-size", "16"],
         "hidden_size=16 (--hidden-size): method 'ace' reshapes the embeddings to 16 columns, "
         "but they have 8; lower the hidden size to 8 or less, or leave ace out."),
        ("setting out of range", ["--methods", "id,ace", "--param", "ace.lam=-1"],
         "ace + sasrec (--methods, --param, --hidden-size): The 'lam' parameter of "
         "ACETransformer must be"),
        ("heads", ["--hidden-size", "7"], "id + sasrec (--methods, --param, --hidden-size): "
         "hidden_size=7 must be divisible by n_heads=2."),
        pytest.param("no cuda", ["--device", "cuda"], "--device cuda: this torch (",
                     marks=pytest.mark.skipif(torch.cuda.is_available(), reason="has CUDA")),
    ],
)
def test_argument_and_input_errors(folder, tmp_path, capsys, case, extra, expected):
    (tmp_path / "file").write_text("not a folder")
    out = tmp_path / "out"
    if case == "timestamps":
        expected = _bad_timestamps(folder)
    extra = [e.format(tmp=tmp_path, folder=folder) for e in extra]
    # The last --data / --out wins in argparse.
    assert run_bench(folder, out, *extra) == 2
    message = single_error_line(capsys)
    assert message.startswith(expected.format(tmp=tmp_path, folder=folder)), message
    assert not out.exists()
    # --debug shows the traceback instead.
    with pytest.raises(InputError, match=re.escape(message[:40])):
        run_bench(folder, out, *extra, "--debug")
    assert not out.exists()


def test_diverged_training_is_a_one_line_error(folder, tmp_path, capsys, monkeypatch):
    from recmodels import TrainingDivergedError
    from recmodels.comparison import runner

    def diverge(*args, **kwargs):
        raise TrainingDivergedError("the training loss became nan in epoch 2; lower the "
                                    "learning rate (lr=10.0) or the scale of the initial item "
                                    "table.\nThe last good checkpoint is kept.")

    monkeypatch.setattr(runner.Trainer, "fit", diverge)
    assert run_bench(folder, tmp_path / "out", "--lr", "0.5") == 2
    assert single_error_line(capsys) == (
        "--lr: id + sasrec, seed 0, lr 0.5: the training loss became nan in epoch 2; lower "
        "the learning rate (lr=10.0) or the scale of the initial item table. The last good "
        "checkpoint is kept.")
    with pytest.raises(TrainingDivergedError, match="lower the learning rate"):
        run_bench(folder, tmp_path / "out", "--lr", "0.5", "--debug")


def test_bugs_keep_their_traceback(folder, tmp_path, monkeypatch):
    from recmodels.comparison import runner

    def bug(*args, **kwargs):
        raise ValueError("an internal inconsistency")

    monkeypatch.setattr(runner.Trainer, "fit", bug)
    with pytest.raises(ValueError, match="an internal inconsistency"):
        run_bench(folder, tmp_path / "out")


@pytest.mark.parametrize("error", [ImportError("encoding item text needs the encoder extra"),
                                   OSError("nope is not a valid model identifier")])
def test_encoder_that_can_not_load_is_a_one_line_error(folder, tmp_path, capsys, monkeypatch,
                                                       error):
    from recmodels.comparison import cli

    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(cli, "encode_items", fail)
    out = tmp_path / "out"
    assert run_bench(folder, out, "--encoder", "nope", embeddings=None) == 2
    assert single_error_line(capsys) == f"--encoder nope: {error}"
    assert not out.exists()


@pytest.mark.parametrize("where", ["under a file", "read-only"])
def test_an_unwritable_out_fails_before_the_text_is_encoded(folder, tmp_path, capsys,
                                                            monkeypatch, where):
    from recmodels.comparison import cli, runs

    def encode(*args, **kwargs):
        raise AssertionError("the item text was encoded before --out was checked")

    monkeypatch.setattr(cli, "encode_items", encode)
    if where == "under a file":
        (tmp_path / "a-file").write_text("")
        out, expected = tmp_path / "a-file" / "out", f"{tmp_path / 'a-file'} is a file"
    else:
        def refuse(*args, **kwargs):
            raise PermissionError(13, "Permission denied")

        monkeypatch.setattr(runs.tempfile, "TemporaryFile", refuse)
        out, expected = tmp_path / "out", "can not write there (Permission denied)"
    assert run_bench(folder, out, embeddings=None) == 2
    assert single_error_line(capsys) == f"--out {out}: {expected}" + (
        ", not a folder; choose another --out." if where == "under a file"
        else "; choose another --out.")
    assert not out.exists()


@pytest.mark.parametrize("content, problem", [
    ("user,item\n1,2\n", "no column(s) ['method', 'backbone', 'seed', 'lr', 'selected', "
                          "'split', 'fingerprint', 'settings']"),
    ("", "No columns to parse from file"),
])
def test_an_out_whose_results_csv_is_not_ours_fails_before_the_text_is_encoded(
        folder, tmp_path, capsys, monkeypatch, content, problem):
    from recmodels.comparison import cli

    def encode(*args, **kwargs):
        raise AssertionError("the item text was encoded before results.csv was read")

    monkeypatch.setattr(cli, "encode_items", encode)
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.csv").write_text(content)
    assert run_bench(folder, out, embeddings=None) == 2
    assert single_error_line(capsys) == (
        f"{out / 'results.csv'}: not a results table ace-bench wrote ({problem}); move it "
        "away or use another folder.")
    assert sorted(p.name for p in out.iterdir()) == ["results.csv"]
    assert (out / "results.csv").read_text() == content


@pytest.mark.parametrize("grid", [["--lr-grid", "1e-3,1e-4"], ["--grid-epochs", "2"]])
def test_one_rate_and_a_grid_are_not_given_together(folder, tmp_path, capsys, grid):
    with pytest.raises(SystemExit) as exit_info:
        run_bench(folder, tmp_path / "out", "--lr", "1e-3", *grid)
    assert exit_info.value.code == 2
    assert "ace-bench: error: --lr trains every method at one rate" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()

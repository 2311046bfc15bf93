"""Loading, filtering, indexing and the training windows of the prefix protocol."""

import numpy as np
import pandas as pd
import pytest

from recmodels import build_sequences, load_folder, read_recbole
from recmodels.batching import causal_windows, cloze_windows, eval_batch
from recmodels_helpers import synthetic_log


def test_kcore_is_iterative_and_reported():
    log = pd.DataFrame({
        "user_id": ["a"] * 3 + ["b"] * 3 + ["c"] * 2,
        "item_id": ["x", "y", "z", "x", "y", "z", "x", "w"],
        "position": [0, 1, 2, 0, 1, 2, 0, 1],
    })
    data = build_sequences(log, k_core=2)
    # "w" goes (1 interaction), then "c" has 1 left and goes, which keeps x, y, z at 2.
    assert data.n_users == 2 and data.n_items == 3
    assert data.report.interactions_after == 6 and data.report.iterations == 3
    assert "6/8 interactions" in str(data.report)


def test_max_history_keeps_each_users_latest_interactions_before_kcore():
    log = synthetic_log(n_users=60, n_items=40, seed=3)
    order = "timestamp" if "timestamp" in log.columns else "position"
    full = build_sequences(log, k_core=1)
    cut = build_sequences(log, k_core=1, max_history=5)
    lengths = np.diff(full.offsets)
    assert (lengths > 5).any()  # the cut has work to do
    assert cut.n_users == full.n_users
    np.testing.assert_array_equal(np.diff(cut.offsets), np.minimum(lengths, 5))
    for user in range(full.n_users):  # the same users in the same (sorted) order
        latest = full.item_ids[full.items[full.offsets[user]:full.offsets[user + 1]] - 1][-5:]
        kept = cut.item_ids[cut.items[cut.offsets[user]:cut.offsets[user + 1]] - 1]
        np.testing.assert_array_equal(kept, latest)
    assert str(cut.report).startswith("each user's latest 5 interactions, then 1-core")
    assert cut.report.interactions_before == len(log) > cut.report.interactions_after
    for bad in (2, 0, 2.5, True):
        with pytest.raises(ValueError, match="max_history=.* must be an integer of at least"):
            build_sequences(log.sort_values(order), k_core=1, max_history=bad)


def test_k_core_and_min_length_below_their_floor_are_refused():
    log = synthetic_log(n_users=20, n_items=10, seed=0)
    for setting, bad in (("k_core", 0), ("k_core", -1), ("k_core", 1.0), ("k_core", True),
                         ("min_length", 2), ("min_length", 0)):
        with pytest.raises(ValueError, match=f"{setting}={bad!r} must be an integer of at"):
            build_sequences(log, **{setting: bad})
    assert build_sequences(log, k_core=1, min_length=3).n_users > 0


def test_sequences_are_chronological_and_indexed_by_catalogue():
    log = pd.DataFrame({"user_id": ["u"] * 4, "item_id": ["c", "a", "b", "a"],
                        "timestamp": [30, 10, 20, 40]})
    catalogue = ["b", "a", "c", "unused"]
    data = build_sequences(log, catalogue=catalogue, k_core=1)
    seq = data.item_ids[data.items - 1]
    np.testing.assert_array_equal(seq, ["a", "b", "c", "a"])
    np.testing.assert_array_equal(np.asarray(catalogue)[data.embedding_rows], data.item_ids)
    matrix = np.arange(8.0).reshape(4, 2)
    np.testing.assert_array_equal(data.align(matrix), matrix[data.embedding_rows])
    matrix[3] = np.nan  # the unused catalogue item's row is never read
    np.testing.assert_array_equal(data.align(matrix), matrix[data.embedding_rows])
    matrix[2] = np.inf  # item "c"
    with pytest.raises(ValueError, match=r"1 interacted item\(s\) with NaN or infinite "
                                         r"values, e.g. embedding row 2; re-encode"):
        data.align(matrix)
    with pytest.raises(ValueError, match=r"shape \(2, 2\), but the data set refers to "
                                         r"embedding row 2"):
        data.align(matrix[:2])


def test_bad_logs_get_clear_errors():
    log = synthetic_log()
    with pytest.raises(ValueError, match=r"interactions name items with no embedding row"):
        build_sequences(log, catalogue=["i0", "i1"])
    with pytest.raises(ValueError, match="duplicate id"):
        build_sequences(log, catalogue=["i0", "i0"] + [f"i{i}" for i in range(1, 25)])
    with pytest.raises(ValueError, match="no interactions are left after 50-core"):
        build_sequences(log, k_core=50)
    with pytest.raises(ValueError, match="timestamp or position"):
        build_sequences(log.drop(columns="position"))


def test_prefix_protocol_windows_match_brute_force():
    data = build_sequences(synthetic_log(max_len=30), k_core=1)
    L = 6
    inputs, targets = causal_windows(data, L)
    produced = set()
    for row_in, row_t in zip(inputs, targets):
        for t in np.flatnonzero(row_t):
            context = tuple(row_in[: t + 1][row_in[: t + 1] > 0])
            produced.add((context, row_t[t]))
    expected = set()
    for u in range(data.n_users):
        train = data.items[data.offsets[u] : data.offsets[u + 1] - 2]
        for j in range(1, train.size):
            expected.add((tuple(train[max(0, j - L) : j]), train[j]))
    assert produced == expected
    assert int((targets > 0).sum()) == sum(
        max(n - 3, 0) for n in data.lengths
    )


def test_causal_prefixes_hold_each_target_once_with_its_prefix():
    from recmodels.batching import causal_prefixes

    data = build_sequences(synthetic_log(max_len=30), k_core=1)
    L = 6
    inputs, targets = causal_prefixes(data, L)
    assert ((targets > 0).sum(axis=1) == 1).all()  # one target per row
    last = (inputs > 0).sum(axis=1) - 1
    assert (targets[np.arange(len(targets)), last] > 0).all()  # at the prefix's end
    produced = [(tuple(row[row > 0]), int(row_t.max())) for row, row_t in zip(inputs, targets)]
    expected = []
    for u in range(data.n_users):
        train = data.items[data.offsets[u] : data.offsets[u + 1] - 2]
        expected += [(tuple(train[max(0, j - L) : j]), int(train[j]))
                     for j in range(1, train.size)]
    assert produced == expected  # users in order, each user's targets in order
    window_inputs, window_targets = causal_windows(data, L)
    assert sorted(t for _, t in produced) == sorted(window_targets[window_targets > 0].tolist())


def test_cloze_windows_cover_every_training_item():
    data = build_sequences(synthetic_log(max_len=30), k_core=1)
    windows = cloze_windows(data, 7)
    assert sorted(windows[windows > 0].tolist()) == sorted(
        np.concatenate([data.items[s : e - 2] for s, e in zip(data.offsets[:-1], data.offsets[1:])]).tolist()
    )


def test_eval_batch_holds_out_last_two():
    data = build_sequences(synthetic_log(), k_core=1)
    valid, test = eval_batch(data, "valid", 50), eval_batch(data, "test", 50)
    ends = data.offsets[1:]
    np.testing.assert_array_equal(test.targets, data.items[ends - 1])
    np.testing.assert_array_equal(valid.targets, data.items[ends - 2])
    np.testing.assert_array_equal(test.lengths, valid.lengths + 1)
    short = eval_batch(data, "test", 3)
    np.testing.assert_array_equal(short.inputs[:, 2], data.items[ends - 2])
    assert test.history is None  # gathered only when asked for (masking seen items)
    full = eval_batch(data, "test", 3, with_history=True)
    for user, (start, end) in enumerate(zip(data.offsets[:-1], ends)):
        kept = full.history[user][full.history[user] > 0]
        np.testing.assert_array_equal(kept, data.items[start : end - 1])
    np.testing.assert_array_equal(full.inputs, short.inputs)


def test_folder_and_recbole_loaders(tmp_path):
    log = synthetic_log()
    folder = tmp_path / "data"
    folder.mkdir()
    log.to_csv(folder / "interactions.csv.gz", index=False)
    with pytest.raises(FileNotFoundError, match="items.csv.gz: no such file"):
        load_folder(folder)
    pd.DataFrame({"item_id": sorted(log.item_id.unique())}).to_csv(folder / "items.csv.gz", index=False)
    interactions, items = load_folder(folder)
    assert len(interactions) == len(log) and "item_id" in items

    inter = tmp_path / "toy.inter"
    renamed = log.rename(columns={"user_id": "user_id:token", "item_id": "item_id:token",
                                  "position": "timestamp:float"})
    renamed.to_csv(inter, sep="\t", index=False)
    loaded = read_recbole(tmp_path)
    assert list(loaded.columns) == ["user_id", "item_id", "timestamp"]
    a = build_sequences(loaded, k_core=1)
    b = build_sequences(log, k_core=1)
    np.testing.assert_array_equal(a.item_ids[a.items - 1], b.item_ids[b.items - 1])


@pytest.mark.parametrize("text, message", [
    ("user_id:token\titem_id:token\n1\t2\n", r"needs the fields user_id, item_id and "
     r"timestamp .* its header has \['user_id', 'item_id'\]"),
    ("user_id item_id timestamp\n1 2 3\n", r"its header has \['user_id item_id timestamp'\]"),
    ("user_id:token\titem_id:token\ttimestamp:float\n1\t2\t3\n1\t4\tnoon\n",
     r"field timestamp holds 1 non-numeric value\(s\), e.g. 'noon' on data row 2"),
])
def test_a_malformed_inter_file_is_named_with_its_problem(tmp_path, text, message):
    (tmp_path / "bad.inter").write_text(text)
    with pytest.raises(ValueError, match=message) as error:
        read_recbole(tmp_path)
    assert str(error.value).startswith(str(tmp_path / "bad.inter"))


def test_train_sequences_leave_out_the_held_out_items():
    data = build_sequences(synthetic_log(), k_core=1)
    sequences = data.train_sequences()
    assert len(sequences) == data.n_users
    for u, seq in enumerate(sequences):
        full = data.items[data.offsets[u] : data.offsets[u + 1]] - 1
        np.testing.assert_array_equal(seq, full[:-2])


@pytest.mark.parametrize("stride", [2, 5, 6])
def test_strided_windows_train_every_target_once_with_long_context(stride):
    data = build_sequences(synthetic_log(max_len=40), k_core=1)
    L = 6
    inputs, targets = causal_windows(data, L, stride)
    exact_inputs, exact_targets = causal_windows(data, L, 1)
    # The same multiset of targets as the exact protocol, each trained once.
    assert sorted(targets[targets > 0]) == sorted(exact_targets[exact_targets > 0])
    n_first = int((data.lengths - 3 > 0).sum())
    np.testing.assert_array_equal(inputs[:n_first], exact_inputs[:n_first])
    extra_inputs, extra_targets = inputs[n_first:], targets[n_first:]
    assert extra_inputs.shape[0] < exact_inputs.shape[0] - n_first
    assert (extra_inputs > 0).all()  # extra windows are full
    trained_columns = np.nonzero(extra_targets)[1]
    # Column t sees t + 1 items: never fewer than L - stride + 1.
    assert trained_columns.min() >= L - stride


def write_folder(path, log):
    path.mkdir()
    log.to_csv(path / "interactions.csv.gz", index=False)
    pd.DataFrame({"item_id": sorted(log.item_id.dropna().unique())}).to_csv(
        path / "items.csv.gz", index=False)
    return path


@pytest.mark.parametrize("order", ["timestamp", "position"])
def test_missing_or_non_numeric_order_values_name_the_file_row_and_user(tmp_path, order):
    log = synthetic_log().rename(columns={"position": order})
    log[order] = log[order].astype(object)
    log.loc[12, order] = None
    log.loc[[30, 31], order] = "soon"
    folder = write_folder(tmp_path / "toy", log)
    user = log.loc[12, "user_id"]
    expected = (rf"{tmp_path / 'toy' / 'interactions.csv.gz'}: column '{order}' has 3 missing "
                rf"or non-numeric value\(s\), first at row 12 \(user '{user}'\); fill or drop "
                "those rows")
    with pytest.raises(ValueError, match=expected):
        load_folder(folder)
    # The same check on a DataFrame, before any filtering.
    with pytest.raises(ValueError, match=rf"^interactions: column '{order}' has 3 missing or "
                                         rf"non-numeric value\(s\), first at row 12 \(user "):
        build_sequences(log, k_core=50)


def test_two_percent_missing_timestamps_no_longer_train_silently(tmp_path):
    log = synthetic_log(n_users=60).rename(columns={"position": "timestamp"})
    log["timestamp"] = log["timestamp"].astype(float)
    rows = np.random.default_rng(0).choice(len(log), size=len(log) // 50, replace=False)
    log.loc[rows, "timestamp"] = np.nan
    with pytest.raises(ValueError, match=rf"has {rows.size} missing or non-numeric value\(s\), "
                                         rf"first at row {rows.min()} "):
        build_sequences(log, k_core=1)
    with pytest.raises(ValueError, match="interactions.csv.gz: column 'timestamp'"):
        load_folder(write_folder(tmp_path / "toy", log))


@pytest.mark.parametrize("column", ["user_id", "item_id"])
def test_missing_ids_are_named(tmp_path, column):
    log = synthetic_log()
    log.loc[[5, 9], column] = None
    with pytest.raises(ValueError, match=rf"^interactions: column '{column}' has 2 missing "
                                         r"value\(s\), first at row 5"):
        build_sequences(log, k_core=1)
    with pytest.raises(ValueError, match=rf"interactions.csv.gz: column '{column}' has 2 "
                                         r"missing value\(s\), first at row 5"):
        load_folder(write_folder(tmp_path / "toy", log))


def test_missing_catalogue_ids_are_named(tmp_path):
    folder = write_folder(tmp_path / "toy", synthetic_log())
    pd.DataFrame({"item_id": ["i0", None, "i2"]}).to_csv(folder / "items.csv.gz", index=False)
    with pytest.raises(ValueError, match=r"items.csv.gz: column 'item_id' has 1 missing "
                                         r"value\(s\), first at row 1;"):
        load_folder(folder)


def test_a_dataframe_index_is_named_and_numeric_strings_sort_as_numbers():
    log = pd.DataFrame({"user_id": ["u"] * 3, "item_id": ["a", "b", "c"],
                        "position": ["10", "9", None]}, index=[7, 8, 9])
    with pytest.raises(ValueError, match=r"first at row 2 \(index label 9, user 'u'\);"):
        build_sequences(log, k_core=1)
    log.loc[9, "position"] = "11"
    data = build_sequences(log, k_core=1)
    # "10" < "9" as text; as numbers the order is b (9), a (10), c (11).
    np.testing.assert_array_equal(data.item_ids[data.items - 1], ["b", "a", "c"])

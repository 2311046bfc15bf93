"""The benchmark scripts run end to end at a small size and print what docs/results.md quotes."""

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.stats
from recmodels_helpers import toy_argv, toy_folder

from recmodels.comparison.cli import main

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _script(name):
    """A script of benchmarks/ imported as a module."""
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("cols", [200, 1100])  # below and above the float32 eigensolver width
def test_bench_ace_prints_every_row_and_matches_the_reference(cols):
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "bench_ace.py"), "--rows", "3000", "--cols", str(cols),
         "--k", "16", "--repeats", "1"],
        capture_output=True, text=True, check=True, timeout=300,
    )
    out = result.stdout
    for row in ("floor: E.T @ E", "ACETransformer.fit_transform", "top-k eigh of the Gram",
                "projection E @ P", "reference: svd + formula", "lower bound"):
        assert row in out
    error = float(re.search(r"relative error ([0-9.e+-]+)", out).group(1))
    assert error < 1e-5


def test_bench_loss_prints_all_three_rows_against_the_floor():
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "bench_loss.py"), "--rows", "32", "--items", "500",
         "--hidden", "16", "--repeats", "2", "--threads", "1"],
        capture_output=True, text=True, check=True, timeout=120,
    )
    ratios = dict(re.findall(r"^  (\S.*?)\s+[0-9.]+ ms\s+([0-9.]+)x floor$", result.stdout,
                             flags=re.M))
    assert set(ratios) == {"plain autograd + F.cross_entropy", "fused linear_cross_entropy",
                           "floor: the three matmuls"}
    assert float(ratios["floor: the three matmuls"]) == 1.0


def _bench_train():
    if str(BENCHMARKS) not in sys.path:  # as when it runs as a script: its helpers beside it
        sys.path.insert(0, str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location("bench_train", BENCHMARKS / "bench_train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("backbone, expected", [
    # 5 tokens x (8h^2 + 4h.inner) + 4h x (1 + 2 + 1 + 2 + 3) causal pairs + 2 x 5 x 10 x h
    ("sasrec", 5 * 256 + 16 * 9 + 400),
    # ... + the head's 2h^2 per token, and every query over every real key: 4 + 9 pairs
    ("bert4rec", 5 * (256 + 32) + 16 * 13 + 400),
    # 5 tokens x (input 2h.3g + recurrent 2g.3g + output 2g.h) + the logits
    ("gru4rec", 5 * (72 + 54 + 24) + 400),
])
def test_bench_train_flop_count_matches_a_hand_count(backbone, expected):
    settings = dict(hidden=4, inner=8, layers=1, gru_hidden=3)
    flops = _bench_train().forward_flops(backbone, np.array([2, 3]), 5, 10, settings)
    assert flops == expected


def test_stride_table_reports_a_finished_run(tmp_path):
    folder = toy_folder(tmp_path / "toy")
    for stride in (1, 2):  # windows of 3 items: the two strides train different windows
        assert main(toy_argv(folder, tmp_path / f"stride_{stride}", "--methods", "id",
                             "--max-epochs", "2", "--lr", "1e-3", "--max-len", "3",
                             "--window-stride", str(stride))) == 0
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "stride_table.py"), "--report-only", "--strides",
         "1,2,5", "--out", str(tmp_path)], capture_output=True, text=True, check=True,
        timeout=300)
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines()[2:]}
    assert rows["5"][1:] == ["(not", "run", "yet)"]
    epochs, best = int(rows["1"][5]), int(rows["1"][6])
    assert epochs == 2 and 1 <= best <= 2
    # Stride 1 is the reference (no p-value); stride 2 is tested against it.
    assert len(rows["1"]) == 11 and 0.0 <= float(rows["2"][11]) <= 1.0
    assert 0 < float(rows["1"][8]) <= 1  # test NDCG@10


def test_stride_summary_takes_the_median_epoch_and_sums_the_minutes(tmp_path):
    folder = toy_folder(tmp_path / "toy")
    out = tmp_path / "stride_1"
    assert main(toy_argv(folder, out, "--methods", "id", "--max-epochs", "3", "--lr", "1e-3",
                         "--max-len", "3", "--window-stride", "1")) == 0
    run = next((out / "runs").glob("*.json"))
    record = json.loads(run.read_text())
    for epoch, seconds in zip(record["history"], (30.0, 90.0, 60.0)):
        epoch["train_seconds"] = seconds
    run.write_text(json.dumps(record))
    summary = _script("stride_table").summarise(out)
    assert summary["s/epoch"] == 60.0 and summary["minutes"] == 3.0
    assert summary["epochs"] == 3


def test_stride_timing_returns_a_median_epoch_time(tmp_path):
    from recmodels import build_sequences, load_folder

    interactions, items = load_folder(toy_folder(tmp_path / "toy"))
    data = build_sequences(interactions, catalogue=items["item_id"], k_core=1)
    seconds = _script("stride_table").timed_epochs(data, 2, 2, 1e-3, max_len=4)
    assert 0.0 < seconds < 60.0


@pytest.mark.parametrize("backbone", ["sasrec", "bert4rec"])
def test_profile_step_prints_the_operator_table_and_the_matmul_share(tmp_path, backbone):
    folder = toy_folder(tmp_path / "toy")
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "profile_step.py"), "--data", str(folder),
         "--backbone", backbone, "--hidden-size", "16", "--steps", "3", "--threads", "1"],
        capture_output=True, text=True, check=True, timeout=300)
    assert "Self CPU" in result.stdout
    share = re.search(r"matrix products (\d+) % of self CPU time, the item-logit products "
                      r"among them (\d+) %", result.stdout)
    assert share and int(share.group(2)) <= int(share.group(1)) < 100 and int(share.group(1)) > 0


def test_batch_composition_prints_every_variant():
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "batch_composition.py"), "--users", "300",
         "--epochs", "1", "--threads", "1", "--seeds", "0,1"],
        capture_output=True, text=True, check=True, timeout=300,
    )
    rows = re.findall(r"^\| ([\w-]+) \| (\d) \| (\d+) \| ([0-9.]+) \|", result.stdout,
                      flags=re.M)
    variants = ("targets", "unsorted", "windows", "prefixes", "prefixes-sorted")
    assert [(v, s) for v, s, _, _ in rows] == [(v, s) for v in variants for s in "01"]
    steps = {v: int(n) for v, _, n, _ in rows}
    # The same targets per step except "windows"; prefixes pack no two targets in a row.
    assert (steps["unsorted"] == steps["targets"] == steps["prefixes"]
            == steps["prefixes-sorted"] > steps["windows"] >= 1)
    assert "RecBole" not in result.stdout  # a slice is not bench_train's data


def test_gru_packing_shows_the_model_grouping_prefix_rows():
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "gru_packing.py"), "--users", "300", "--steps", "2",
         "--rounds", "1", "--threads", "1"],
        capture_output=True, text=True, check=True, timeout=300,
    )
    number = r"([\d,]+)"
    rows = {name: [int(v.replace(",", "")) for v in values] for name, *values in re.findall(
        rf"^\| ([\w-]+) \| [0-9.]+ \| (\d+) \| [0-9.]+ \| {number} \| {number} \| {number} \|$",
        result.stdout, flags=re.M)}
    assert list(rows) == ["windows", "prefixes-padded", "prefixes-grouped"]
    (_, padded_run, real, padded_timed), (_, grouped_run, _, grouped_timed) = (
        rows["prefixes-padded"], rows["prefixes-grouped"])
    # The model itself ran fewer GRU steps on the same batches (hook on its GRU), and the
    # epoch count agrees: grouped costs under half of padded and at least every real token.
    assert grouped_timed < 0.75 * padded_timed
    assert real <= grouped_run < 0.5 * padded_run


def test_paper_shape_reads_a_real_folder_and_compares_every_pair(capsys):
    spec = importlib.util.spec_from_file_location("paper_shape", BENCHMARKS / "paper_shape.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    folder = BENCHMARKS / "results" / "beauty_sasrec_h100_lr1e-3"  # id, pca, ace on Beauty
    assert module.main([str(folder)]) == 0
    out = capsys.readouterr().out
    results = pd.read_csv(folder / "results.csv")
    test = results[(results["split"] == "test") & results["selected"]]
    # "ours" comes from the per-user ranks; results.csv from the run: they must agree.
    for method, figure in zip(test["method"], test["ndcg@20"]):
        row = re.search(rf"^\| {re.escape(module.PAPER[method][0])} \| 1 \| ([0-9.]+) \|",
                        out, flags=re.M)
        assert row and float(row.group(1)) == pytest.approx(figure, abs=5e-5)
    verdicts = re.findall(r"\| (carries over|level|reversed) \|$", out, flags=re.M)
    assert len(verdicts) == 3  # every pair of id, pca, ace
    counts = re.search(r"(\d+) carries over, (\d+) level, (\d+) reversed of (\d+) pairs", out)
    assert sum(map(int, counts.groups()[:3])) == int(counts.group(4)) == 3


@pytest.mark.parametrize("users, split", [("all", "test"), ("new", "test-new")])
def test_pairwise_reads_the_cold_start_folder_and_tests_every_pair(capsys, users, split):
    spec = importlib.util.spec_from_file_location("pairwise", BENCHMARKS / "pairwise.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    folder = BENCHMARKS / "results" / "beauty_cold_start"  # five methods, two with +map
    assert module.main([str(folder), "--users", users]) == 0
    out = capsys.readouterr().out
    pairs = re.findall(r"^\| ([\w+]+) \(([0-9.]+)\) \| ([\w+]+) \(([0-9.]+)\) \| ([+-][0-9.]+) "
                       r"\| ([0-9.e+-]+)\*? \|$", out, flags=re.M)
    results = pd.read_csv(folder / "results.csv", dtype={"fingerprint": str})
    figures = results[(results["split"] == split) & results["selected"]].set_index("method")
    assert len(pairs) == len(figures) * (len(figures) - 1) // 2
    seeds = out.splitlines()[0].split("seeds averaged: ")[1].split(", ")
    assert sorted(seeds) == sorted(f"{method} 1" for method in figures.index)
    printed = {}
    for high, high_mean, low, low_mean, _, p in pairs:
        # Means come from the per-user ranks, results.csv from the run: they must agree.
        assert float(high_mean) == pytest.approx(figures.loc[high, "ndcg@20"], abs=5e-5)
        assert float(low_mean) == pytest.approx(figures.loc[low, "ndcg@20"], abs=5e-5)
        assert float(high_mean) >= float(low_mean)
        printed[frozenset((high, low))] = float(p)
    # One pair recomputed from the saved ranks, independently of the script: the same users
    # in the same order, a two-sided paired test.
    ranks = {}
    for method in ("ace", "pca"):
        saved = np.load(folder / "runs" / f"{figures.loc[method, 'fingerprint']}.npz")
        ranks[method] = saved[split]
    gains = {m: np.where(r < 20, 1.0 / np.log2(r + 2.0), 0.0) for m, r in ranks.items()}
    expected = scipy.stats.ttest_rel(gains["ace"], gains["pca"]).pvalue
    assert printed[frozenset(("ace", "pca"))] == pytest.approx(expected, rel=1e-2)
    if users == "new":  # ID-only never ranks a new target; ACE and WhitenRec+ are level
        assert printed[frozenset(("ace", "id"))] < 1e-20
        assert printed[frozenset(("ace", "whitenplus"))] > 0.3


def test_pairwise_keeps_apart_cells_that_trained_on_other_rows(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("pairwise", BENCHMARKS / "pairwise.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    source = BENCHMARKS / "results" / "beauty_cold_start"
    shutil.copytree(source / "runs", tmp_path / "runs")
    results = pd.read_csv(source / "results.csv", dtype={"fingerprint": str})
    # The same id cell once more, as if trained on prefix rows (another fingerprint).
    twin = results[results["method"] == "id"].copy()
    old_key = twin["fingerprint"].iloc[0]
    twin["fingerprint"] = "0" * 16
    prefixes = {"backbone_settings": {"sequences": "prefixes"}}
    twin["settings"] = [json.dumps(json.loads(s) | prefixes) for s in twin["settings"]]
    for suffix in (".npz", ".json"):
        shutil.copy(tmp_path / "runs" / f"{old_key}{suffix}",
                    tmp_path / "runs" / f"{'0' * 16}{suffix}")
    pd.concat([results, twin]).to_csv(tmp_path / "results.csv", index=False)
    with pytest.raises(SystemExit, match="several selected cells for seed 0.*--sequences"):
        module.main([str(tmp_path)])
    assert module.main([str(tmp_path), "--sequences", "windows"]) == 0
    windows = capsys.readouterr().out
    assert module.main([str(source)]) == 0
    assert windows.split("\n", 1)[1] == capsys.readouterr().out.split("\n", 1)[1]
    with pytest.raises(SystemExit, match="fewer than two methods"):  # the twin alone
        module.main([str(tmp_path), "--sequences", "prefixes"])


@pytest.mark.parametrize("script", ["pairwise", "paper_shape"])
def test_paired_tables_refuse_cells_of_another_protocol(tmp_path, script):
    module = _script(script)
    source = BENCHMARKS / "results" / "beauty_converged"
    shutil.copytree(source / "runs", tmp_path / "runs")
    results = pd.read_csv(source / "results.csv", dtype={"fingerprint": str})
    assert module.main([str(source)]) == 0
    # ace's cell as if it came from a 6-epoch command: same users, another protocol.
    ace = results["method"] == "ace"
    results.loc[ace, "settings"] = [json.dumps(json.loads(s) | {"max_epochs": 6})
                                    for s in results.loc[ace, "settings"]]
    results.to_csv(tmp_path / "results.csv", index=False)
    with pytest.raises(SystemExit, match=r"ace.*different max_epochs \(400 against 6\)|"
                                         r"different max_epochs \(6 against 400\)"):
        module.main([str(tmp_path)])


@pytest.mark.parametrize("script", ["pairwise", "paper_shape", "converged_table"])
def test_paired_tables_say_when_methods_average_different_seeds(tmp_path, capsys, script):
    module = _script(script)
    source = BENCHMARKS / "results" / "beauty_converged"
    shutil.copytree(source / "runs", tmp_path / "runs")
    results = pd.read_csv(source / "results.csv", dtype={"fingerprint": str})
    # whitenplus's chosen cell (seed 0 alone: stage 2 trains no other) once more as seed 1
    # (another fingerprint, the same ranks).
    twin = results[(results["method"] == "whitenplus") & results["selected"]].copy()
    old_key = twin["fingerprint"].iloc[0]
    twin["fingerprint"], twin["seed"] = "1" * 16, 1
    twin["settings"] = [json.dumps(json.loads(s) | {"seed": 1}) for s in twin["settings"]]
    for suffix in (".npz", ".json"):
        shutil.copy(tmp_path / "runs" / f"{old_key}{suffix}",
                    tmp_path / "runs" / f"{'1' * 16}{suffix}")
    pd.concat([results, twin]).to_csv(tmp_path / "results.csv", index=False)
    assert module.main([str(tmp_path)]) == 0
    mixed = capsys.readouterr().out
    assert re.search(r"^Methods average different seeds \(.*whitenplus: 0,1.*\); to pair like "
                     r"with like, pass --seeds 0\.$", mixed, flags=re.M), mixed
    assert module.main([str(tmp_path), "--seeds", "0"]) == 0
    only_zero = capsys.readouterr().out
    assert module.main([str(source), "--seeds", "0"]) == 0
    assert only_zero.split("\n", 1)[1] == capsys.readouterr().out.split("\n", 1)[1]
    assert "different seeds" not in only_zero
    if script == "paper_shape":  # a reversed pair shows the p-value that makes it so
        reversed_rows = re.findall(r"^\|.*\| reversed \|$", only_zero, flags=re.M)
        assert reversed_rows  # AlphaFuse > PCA init, in this folder
        for row in reversed_rows:
            assert float(row.split("|")[5]) < module.ALPHA
    with pytest.raises(SystemExit):
        module.main([str(tmp_path), "--seeds", "0,a"])
    assert "'0,a' is not a list of integers; write e.g. --seeds 0" in capsys.readouterr().err


def test_converged_table_prints_each_chosen_cell_as_results_csv_holds_it(capsys):
    module = _script("converged_table")
    folder = BENCHMARKS / "results" / "beauty_converged"
    assert module.main([str(folder), "--seeds", "0"]) == 0
    out = capsys.readouterr().out
    results = pd.read_csv(folder / "results.csv", dtype={"lr_valid": str})
    results = results[results["backbone"] == "sasrec"]  # the script's default backbone
    chosen = results[results["selected"] & (results["seed"] == 0)]
    assert len(chosen) >= 8
    for method, rows in chosen.groupby("method"):
        valid, test = (rows[rows["split"] == s].iloc[0] for s in ("valid", "test"))
        line = next(line for line in out.splitlines() if line.startswith(f"| {method} |"))
        cells = [c.strip().strip("*") for c in line.strip("|").split("|")]
        candidates = json.loads(test["lr_valid"])
        assert cells[1] == f"{test['lr']:g} (" + " / ".join(
            f"{v:.4f}".removeprefix("0") for v in candidates.values()) + ")"
        assert float(cells[1].split()[0]) == float(max(candidates, key=candidates.get))
        assert cells[3] == f"{test['epochs']} ({test['best_epoch']})"
        expected = [valid["ndcg@10"], *(test[m] for m in ("recall@10", "ndcg@10",
                                                          "recall@20", "ndcg@20"))]
        assert [float(c) for c in cells[4:]] == pytest.approx(expected, abs=5e-5)
    # Each column's best figure is bold, and only that one.
    for column in range(4, 9):
        figures = [line.strip("|").split("|")[column].strip()
                   for line in out.splitlines() if line.startswith("| ") and "---" not in line
                   and not line.startswith("| method")]
        bold = [f for f in figures if f.startswith("**")]
        assert len(bold) == 1
        assert float(bold[0].strip("*")) == max(float(f.strip("*")) for f in figures)
    assert re.search(r"^Training: sasrec: .*min of training in these cells", out, flags=re.M)
    # Every seed: a method's row holds each seed's epochs and the mean over its seeds.
    assert module.main([str(folder)]) == 0
    out = capsys.readouterr().out
    test = results[results["selected"] & (results["split"] == "test")]
    for method, rows in test.groupby("method"):
        line = next(line for line in out.splitlines() if line.startswith(f"| {method} |"))
        cells = [c.strip().strip("*") for c in line.strip("|").split("|")]
        rows = rows.sort_values("seed")
        assert int(cells[2]) == len(rows)
        assert cells[3] == ", ".join(f"{e} ({b})" for e, b in zip(rows["epochs"],
                                                                   rows["best_epoch"]))
        assert float(cells[8]) == pytest.approx(rows["ndcg@20"].mean(), abs=5e-5)


@pytest.mark.parametrize("folder", ["beauty_converged", "beauty_cold_start"])
def test_committed_cells_keep_their_fingerprints(folder):
    """A change to a cell's settings or to the fingerprint would make ace-bench train every
    committed cell of a run that spans sessions again; it has to be a deliberate one."""
    from recmodels.comparison.plan import ComparisonPlan, cell_settings
    from recmodels.provenance import fingerprint

    results = pd.read_csv(BENCHMARKS / "results" / folder / "results.csv",
                          dtype={"fingerprint": str})
    for key, text in results.drop_duplicates("fingerprint")[["fingerprint", "settings"]].values:
        saved = json.loads(text)
        assert fingerprint(saved) == key
        cold = saved.get("cold_start", {})
        protocol = ({"protocol": saved["protocol"], "cold_share": cold["share"],
                     "cold_choice": cold["choice"]} if "protocol" in saved else {})
        plan = ComparisonPlan([saved["method"]], [saved["backbone"]], [saved["seed"]],
                              patience=saved["patience"], device=saved["device"],
                              overrides={saved["method"]: saved["method_settings"]},
                              sequences=saved.get("backbone_settings", {}).get("sequences"),
                              **protocol)
        inputs = {name: saved[name] for name in ("data", "embeddings", "new_items")
                  if name in saved}
        rebuilt = cell_settings(plan, saved["method"], saved["backbone"], saved["seed"],
                                saved["lr"], inputs, saved["max_epochs"])
        assert rebuilt == saved, (folder, saved["method"], saved["lr"])


def test_bench_parallel_cells_prints_all_three_ways():
    data = Path(__file__).resolve().parents[2] / "shared" / "data" / "beauty"
    if not (data / "interactions.csv.gz").exists():
        pytest.skip("../shared/data/beauty is not here")
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "bench_parallel_cells.py"), "--users", "120",
         "--epochs", "1", "--cores", "2", "--data", str(data)],
        capture_output=True, text=True, check=True, timeout=600)
    rows = {line[:40].strip(): line[40:].split() for line in result.stdout.splitlines()[2:]}
    assert list(rows) == ["1 process x 2 threads", "1 process x 1 thread",
                          "2 processes x 1 thread, at once"]
    assert rows["1 process x 2 threads"][2] == "1.00x"
    for seconds, per_hour, _ in rows.values():
        # epochs per hour over the machine = processes x 3600 / seconds per epoch
        assert float(per_hour) > 0 and float(seconds) > 0
    seconds, per_hour, _ = map(lambda text: float(text.rstrip("x")),
                               rows["2 processes x 1 thread, at once"])
    # seconds are printed to 0.1 s: the rate lies between those of the rounding's bounds
    assert 7200 / (seconds + 0.05) - 0.1 <= per_hour <= 7200 / (seconds - 0.05) + 0.1

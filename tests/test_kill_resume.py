"""SIGKILL of ace-bench at random points, then the same command: the results of a straight run."""

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd

from recmodels_helpers import synthetic_log

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "kill_resume.py"


def test_killed_and_resumed_run_equals_a_straight_run(tmp_path, capsys):
    log = synthetic_log(n_users=120, n_items=30, max_len=30)
    data = tmp_path / "toy"
    data.mkdir()
    log.to_csv(data / "interactions.csv.gz", index=False)
    ids = sorted(log.item_id.unique())
    pd.DataFrame({"item_id": ids, "title": ids}).to_csv(data / "items.csv.gz", index=False)
    np.save(data / "emb.npy", np.random.default_rng(0).standard_normal((len(ids), 24)))
    spec = importlib.util.spec_from_file_location("kill_resume", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    status = script.main(["--max-epochs", "12", "--hidden-size", "16", "--window-stride", "3",
                          "--kills", "3", "--seed", "0", "--workdir", str(tmp_path / "runs"),
                          "--data", str(data), "--embeddings", str(data / "emb.npy"),
                          "--k-core", "1", "--max-len", "10"])
    printed = capsys.readouterr().out
    assert status == 0, printed
    assert "-> EQUAL" in printed and printed.count("SIGKILL after") >= 1
    killed = pd.read_csv(tmp_path / "runs" / "killed" / "results.csv")
    assert len(killed) == 4 and set(killed["epochs"]) == {12}

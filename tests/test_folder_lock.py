"""One writer per ace-bench folder: a second run or merge is refused before it writes."""

import os
import signal
import subprocess
import sys

import pandas as pd
import pytest

from recmodels.comparison.cli import main
from recmodels.comparison.inputs import InputError
from recmodels.comparison.merge import main as merge_main
from recmodels.comparison.runs import (FolderInUseError, ensure_free, ensure_writable,
                                       folder_lock)
from recmodels_helpers import toy_argv, toy_folder

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="no fcntl locks on Windows")

HOLD = ("import sys\n"
        "from recmodels.comparison.runs import folder_lock\n"
        "with folder_lock(sys.argv[1]):\n"
        "    print('held', flush=True)\n"
        "    sys.stdin.read()\n")


@pytest.fixture
def holder(tmp_path):
    """Another process holding ``tmp_path / "out"`` until the test lets it go."""
    out = tmp_path / "out"
    process = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "held"
    yield out, process
    if process.poll() is None:
        process.kill()
    process.wait()


def test_a_held_folder_is_refused_with_the_holder_named_until_it_exits(holder):
    out, process = holder
    with pytest.raises(FolderInUseError, match=f"process {process.pid} .*--into {out}"):
        with folder_lock(out):
            pass
    with pytest.raises(FolderInUseError, match=f"process {process.pid}"):
        ensure_free(out)
    process.stdin.close()  # the holder leaves its with block and exits
    assert process.wait(timeout=60) == 0
    ensure_free(out)
    with folder_lock(out):
        assert f"process {os.getpid()} " in (out / ".ace-bench.lock").read_text()


def test_a_killed_holder_leaves_no_stale_lock(holder):
    out, process = holder
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    with folder_lock(out):  # the system dropped the dead process's lock
        pass


def test_ace_bench_is_refused_on_a_held_folder_before_any_work(holder, tmp_path, capsys):
    out, process = holder
    folder = toy_folder(tmp_path / "toy")
    assert main(toy_argv(folder, out, "--methods", "id", "--max-epochs", "1",
                         "--lr", "1e-3")) == 2
    error = capsys.readouterr().err
    assert f"{out}: process {process.pid} " in error and "another folder" in error
    assert sorted(p.name for p in out.iterdir()) == [".ace-bench.lock"]
    # A dry run only reads: it reports on the folder while the other process holds it.
    assert main(toy_argv(folder, out, "--methods", "id", "--max-epochs", "1", "--lr", "1e-3",
                         "--dry-run")) == 0
    assert "0 of 1 cells done, 1 left" in capsys.readouterr().out


def test_a_merge_into_a_held_folder_is_refused_and_writes_nothing(holder, tmp_path, capsys):
    out, process = holder
    folder = toy_folder(tmp_path / "toy")
    source = tmp_path / "source"
    assert main(toy_argv(folder, source, "--methods", "id", "--max-epochs", "1",
                         "--lr", "1e-3")) == 0
    assert merge_main(["--into", str(out), str(source)]) == 2
    assert f"process {process.pid}" in capsys.readouterr().err
    assert not (out / "results.csv").exists()
    process.stdin.close()
    process.wait(timeout=60)
    assert merge_main(["--into", str(out), str(source)]) == 0
    assert len(pd.read_csv(out / "results.csv")) == len(pd.read_csv(source / "results.csv"))


def test_a_folder_that_can_not_be_made_is_a_clear_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(InputError, match="a-file/out: can not write there .*another folder"):
        with folder_lock(blocker / "out"):
            pass


def test_the_early_write_check_leaves_nothing_behind(tmp_path):
    (tmp_path / "run").mkdir()
    ensure_writable(tmp_path / "run")
    ensure_writable(tmp_path / "new" / "deeper")
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["run"]
    (tmp_path / "a-file").write_text("")
    with pytest.raises(InputError, match="^--out .*/a-file: is a file, not a folder; choose "
                                         "another --out.$"):
        ensure_writable(tmp_path / "a-file", "--out")

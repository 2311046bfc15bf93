"""The benchmark scripts run end to end at a small size and print what docs/results.md quotes."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


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

"""Which cells may share a paired table: one protocol, the methods' own backbone arguments."""

import importlib.util
import json
import re
from pathlib import Path

import pandas as pd
import pytest

from recmodels.comparison.methods import METHODS
from recmodels.comparison.selection import comparability_error

CONVERGED = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "beauty_converged"


def _cells(*cells):
    rows = []
    for method, backbone_settings in cells:
        settings = {"method": method, "backbone": "gru4rec", "lr": 1e-3, "seed": 0,
                    "max_epochs": 400}
        if backbone_settings is not None:
            settings["backbone_settings"] = backbone_settings
        rows.append({"method": method, "seed": 0, "fingerprint": method,
                     "settings": json.dumps(settings)})
    return pd.DataFrame(rows)


def test_the_reference_codes_backbone_arguments_for_a_method_are_part_of_it():
    # GRU4Rec: pca at dropout 0.3 and whitenplus with a Xavier output layer, as the
    # reference code runs them, beside id at the backbone's defaults.
    assert METHODS["pca"].backbone_settings["gru4rec"] == {"dropout": 0.3}
    cells = _cells(("id", None), ("pca", {"dropout": 0.3}),
                   ("whitenplus", {"output_init": "xavier"}))
    assert comparability_error(cells) is None


@pytest.mark.parametrize("changed, named", [
    ({"dropout": 0.5}, '"dropout": 0.5'),  # not the reference's value for pca
    ({"dropout": 0.3, "sequences": "prefixes"}, '"sequences": "prefixes"'),  # other rows
])
def test_other_backbone_arguments_are_another_protocol(changed, named):
    error = comparability_error(_cells(("id", None), ("pca", changed)))
    assert error is not None and "different backbone_settings" in error and named in error


def test_an_argument_the_reference_sets_for_one_method_is_another_protocol_on_another():
    error = comparability_error(_cells(("id", {"dropout": 0.3}), ("pca", {"dropout": 0.3})))
    assert error is not None and "different backbone_settings" in error


def _script(name):
    spec = importlib.util.spec_from_file_location(name, CONVERGED.parents[1] / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_gru4rec_cells_make_one_table(capsys):
    gru4rec = [str(CONVERGED), "--backbone", "gru4rec", "--sequences", "windows"]
    assert _script("converged_table").main(gru4rec) == 0
    rows = re.findall(r"^\| (\w+) \| ", capsys.readouterr().out, flags=re.M)
    assert {"id", "pca", "whitenplus"} <= set(rows)
    # Against the paper, whose table is SASRec's: the output says so on another backbone.
    assert _script("paper_shape").main(gru4rec) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.endswith("the paper's column is its SASRec Table 1, whose ordering it "
                          "reports on gru4rec too")
    assert _script("paper_shape").main([str(CONVERGED)]) == 0
    assert "SASRec Table 1" not in capsys.readouterr().out.splitlines()[0]


@pytest.mark.parametrize("script", ["converged_table", "paper_shape", "pairwise"])
def test_a_filter_that_keeps_no_cell_names_what_the_folder_has(script):
    main = _script(script).main
    with pytest.raises(SystemExit, match=r"no selected foo test cells; --backbone one of: "
                                         r"bert4rec, gru4rec, sasrec\."):
        main([str(CONVERGED), "--backbone", "foo"])
    with pytest.raises(SystemExit, match=r"no selected gru4rec test cells of seed 9; it has "
                                         r"seed 0 on prefixes rows; seed 0 on windows rows\."):
        main([str(CONVERGED), "--backbone", "gru4rec", "--seeds", "9"])

"""The documentation: API reference completeness and a warnings-as-errors Sphinx build."""

import importlib
import inspect
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PUBLIC_MODULES = ["ace_transform", "ace_transform.model_selection", "ace_transform.plotting",
                  "recmodels", "recmodels.tuning", "recmodels.datasets",
                  "recmodels.comparison", "recmodels.comparison.inputs",
                  "recmodels.comparison.merge"]


def _public_callables():
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                yield module_name, name, obj


@pytest.mark.parametrize("module_name, name, obj", list(_public_callables()),
                         ids=lambda value: value if isinstance(value, str) else "")
def test_public_name_is_documented_with_an_example(module_name, name, obj):
    doc = inspect.getdoc(obj) or ""
    assert re.search(r"^Examples\n-{8}\n", doc, re.M), f"{module_name}.{name} has no Examples"
    assert ">>> " in doc.split("Examples", 1)[1]
    listed = {line.strip() for line in (ROOT / "docs" / "api.rst").read_text().splitlines()}
    submodule = module_name.split(".", 1)[-1]
    assert name in listed or f"{submodule}.{name}" in listed, (
        f"{module_name}.{name} is missing from docs/api.rst")


def _tree_state(*folders):
    """Path, size and modification time of every file under ``folders`` (no bytecode)."""
    return {(str(path.relative_to(ROOT)), path.stat().st_size, path.stat().st_mtime_ns)
            for folder in folders for path in folder.rglob("*")
            if path.is_file() and "__pycache__" not in path.parts}


def test_sphinx_build_with_warnings_as_errors(tmp_path):
    pytest.importorskip("sphinx")
    pytest.importorskip("numpydoc")
    pytest.importorskip("sphinx_gallery")
    pytest.importorskip("myst_parser")
    pytest.importorskip("matplotlib")
    before = _tree_state(ROOT / "docs", ROOT / "examples")
    source = tmp_path / "docs"
    shutil.copytree(ROOT / "docs", source,
                    ignore=shutil.ignore_patterns("_build", "generated", "auto_examples",
                                                  "sg_execution_times.rst"))
    # conf.py finds the examples and the package relative to its own folder's parent.
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    for name in ("ace_transform", "recmodels", "CHANGELOG.md"):
        (tmp_path / name).symlink_to(ROOT / name)
    build = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         str(source), str(tmp_path / "html")],
        capture_output=True, text=True, env={**os.environ, "MPLBACKEND": "Agg"},
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    # The build writes into its copy only: nothing in the checkout changes (sphinx-gallery's
    # timing page used to be rewritten on every build), and no timing page is produced.
    assert _tree_state(ROOT / "docs", ROOT / "examples") == before
    assert not list(source.rglob("sg_execution_times.rst"))
    html = tmp_path / "html"
    assert (html / "generated" / "ace_transform.ACETransformer.html").is_file()
    for example in (ROOT / "examples").glob("plot_*.py"):
        page = html / "auto_examples" / f"{example.stem}.html"
        assert page.is_file(), f"gallery example {example.name} was not built"
        assert "sphx-glr-single-img" in page.read_text(), f"{example.name} drew no figure"
    results = (html / "results.html").read_text()
    assert "Beauty" in results

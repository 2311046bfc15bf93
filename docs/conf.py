"""Sphinx configuration: numpydoc API reference, user guide, executed example gallery."""

import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import ace_transform  # noqa: E402

project = "ace-transform"
author = "the ace-transform developers"
copyright = "2026, the ace-transform developers"
release = version = ace_transform.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "matplotlib.sphinxext.plot_directive",
    "sphinx_gallery.gen_gallery",
    "myst_parser",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
# sg_execution_times.rst is sphinx-gallery's timing page; it is not written (see
# write_computation_times below), and an old copy must not enter the build either.
exclude_patterns = ["_build", "auto_examples/*.ipynb", "auto_examples/*.py",
                    "auto_examples/*.zip", "sg_execution_times.rst",
                    "auto_examples/sg_execution_times.rst"]
templates_path = ["_templates"]
html_theme = "alabaster"
html_static_path = []

autosummary_generate = True
autodoc_default_options = {"members": True, "inherited-members": False}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_validation_checks = set()
nitpicky = False

plot_include_source = True
plot_html_show_source_link = False
plot_html_show_formats = False
plot_formats = [("png", 100)]

sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "ignore_pattern": r"quickstart\.py",
    "abort_on_example_error": True,
    "download_all_examples": False,
    "remove_config_comments": True,
    # Timings would be written into the source folder (docs/sg_execution_times.rst) on every
    # build, leaving a checkout dirty after each docs build; they are not part of the docs.
    "write_computation_times": False,
}
suppress_warnings = ["config.cache"]


def _skip_metadata_requests(app, what, name, obj, skip, options):
    # scikit-learn attaches set_*_request methods to every estimator class; their
    # docstrings point into scikit-learn's own glossary.
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return skip


def setup(app):
    app.connect("autodoc-skip-member", _skip_metadata_requests)

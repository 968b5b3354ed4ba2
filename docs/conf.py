"""Sphinx configuration of the idc_sklearn documentation.

Build with ``python -m sphinx -W --keep-going -b html docs docs/_build/html``. The
gallery runs every example in ``examples/`` in its quick mode
(``IDC_SKLEARN_EXAMPLE_QUICK=1``: small data, network and epochs, about two minutes
for all of them on 2 CPU cores) and shows the figures each makes, as scikit-learn's
gallery does.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent / "sphinxext"))
# The examples' quick mode, and one thread each, as the test suite runs them.
os.environ.setdefault("IDC_SKLEARN_EXAMPLE_QUICK", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import idc_sklearn  # noqa: E402 - after the path holds the checkout

project = "idc_sklearn"
author = "the idc_sklearn developers"
copyright = "2026, " + author
version = release = idc_sklearn.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
templates_path = ["_templates"]
exclude_patterns = ["_build"]
# The Markdown pages link to their headings by GitHub's anchors
# (``comparison.md#the-paired-difference-and-its-interval``); MyST makes them.
myst_heading_anchors = 3

# -- API reference --
autosummary_generate = True
autodoc_typehints = "none"  # numpydoc's Parameters sections already give the types
# Class pages list their own public methods (templates/autosummary/class.rst);
# numpydoc's extra member tables would repeat every method inherited from skorch.
numpydoc_show_class_members = False
numpydoc_show_inherited_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False


def skip_metadata_request_methods(app, what, name, obj, skip, options):
    """Leave out ``set_fit_request`` and its kin.

    scikit-learn generates them on every estimator that takes metadata; their
    docstrings point into scikit-learn's own glossary, and its user guide
    documents them.
    """
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", skip_metadata_request_methods)


# -- gallery: every example run in its quick mode, its figures shown --
sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    "plot_gallery": True,
    # every example runs, not only those named plot_*
    "filename_pattern": r".*\.py$",
    # The library's figures are built without pyplot; figure_scraper finds them
    # in the examples' variables.
    "image_scrapers": ("matplotlib", "figure_scraper.scrape_figures"),
    "download_all_examples": False,
    "backreferences_dir": None,
    # An example that fails fails the build.
    "abort_on_example_error": True,
}

html_theme = "alabaster"
html_title = f"idc_sklearn {release}"
html_static_path: list[str] = []

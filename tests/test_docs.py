"""The docs cannot drift: every public name is in the API reference, every page is
reachable, and every snippet of the user guide runs.

The Sphinx build itself (``python -m sphinx -W -b html docs docs/_build/html``) runs
in CI; these checks are the fast part of it.
"""

from __future__ import annotations

import doctest
import os
import re

import pytest
from conftest import REPO_ROOT
from matplotlib.figure import Figure

import idc_sklearn

DOCS = REPO_ROOT / "docs"
# Pages Sphinx does not build from docs/ itself: its output and generated pages.
GENERATED = {"_build", "_templates", "generated", "auto_examples"}


def directive_entries(rst: str, directive: str) -> list[str]:
    """The entries (not the options) of every ``directive`` block in ``rst``."""
    entries = []
    pattern = rf"^\.\. {directive}::\n((?:[ \t]+.*\n|\n)+)"
    for block in re.finditer(pattern, rst, flags=re.MULTILINE):
        for line in block.group(1).splitlines():
            entry = line.strip()
            if entry and not entry.startswith(":"):
                entries.append(entry)
    return entries


def test_api_reference_lists_every_public_name_once():
    api = (DOCS / "api.rst").read_text(encoding="utf-8")
    listed = directive_entries(api, "autosummary")
    missing = sorted(set(idc_sklearn.__all__) - set(listed))
    assert not missing, (
        f"docs/api.rst lacks {missing}: add each to the autosummary of its section"
    )
    unknown = sorted(set(listed) - set(idc_sklearn.__all__))
    assert not unknown, f"docs/api.rst lists {unknown}, not in idc_sklearn.__all__"
    repeated = sorted({name for name in listed if listed.count(name) > 1})
    assert not repeated, f"docs/api.rst lists {repeated} more than once"


def test_directive_entries_reads_entries_not_options():
    rst = (
        ".. autosummary::\n   :toctree: generated/\n\n   load_idc\n   SCORING\n"
        "\nText after the directive\n"
    )
    assert directive_entries(rst, "autosummary") == ["load_idc", "SCORING"]


def test_every_page_is_in_the_index():
    pages = {
        str(path.relative_to(DOCS).with_suffix(""))
        for path in [*DOCS.rglob("*.md"), *DOCS.rglob("*.rst")]
        if not GENERATED & set(path.relative_to(DOCS).parts)
        and path.name != "sg_execution_times.rst"
    }
    index = (DOCS / "index.rst").read_text(encoding="utf-8")
    linked = directive_entries(index, "toctree")
    missing = sorted(pages - set(linked) - {"index"})
    assert not missing, f"docs/index.rst's toctrees lack {missing}"
    repeated = sorted({page for page in linked if linked.count(page) > 1})
    assert not repeated, f"docs/index.rst's toctrees list {repeated} more than once"


def test_user_guide_snippets_run():
    result = doctest.testfile(
        str(DOCS / "user_guide.rst"),
        module_relative=False,
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
        raise_on_error=False,
        verbose=False,
    )
    assert result.attempted > 10
    assert result.failed == 0, "a snippet of docs/user_guide.rst failed; see above"


def test_gallery_runs_every_example_in_quick_mode(monkeypatch):
    monkeypatch.setattr(os, "environ", dict(os.environ))
    namespace: dict = {"__file__": str(DOCS / "conf.py")}
    exec((DOCS / "conf.py").read_text(encoding="utf-8"), namespace)
    conf = namespace["sphinx_gallery_conf"]
    assert conf["plot_gallery"] is True
    assert conf["examples_dirs"] == str(REPO_ROOT / "examples")
    # sphinx-gallery runs the files this pattern matches, by default only plot_*.py
    pattern = re.compile(conf["filename_pattern"])
    examples = sorted((REPO_ROOT / "examples").glob("*.py"))
    assert examples and all(pattern.search(str(path)) for path in examples)
    assert "figure_scraper.scrape_figures" in conf["image_scrapers"]
    assert os.environ["IDC_SKLEARN_EXAMPLE_QUICK"] == "1"


def test_scraper_saves_each_returned_figure_once(tmp_path, monkeypatch):
    pytest.importorskip(
        "sphinx_gallery", reason="sphinx-gallery is absent (the dev or docs extra)"
    )
    monkeypatch.syspath_prepend(str(DOCS / "sphinxext"))
    from figure_scraper import scrape_figures

    figure = Figure()
    figure.add_subplot().plot([0, 1], [1, 0])
    other = Figure()
    other.add_subplot()
    paths = iter(tmp_path / f"image_{i}.png" for i in range(5))
    block_vars = {
        "example_globals": {"fig": figure, "result": (other, None, {}), "n": 3},
        "image_path_iterator": paths,
    }
    conf = {"src_dir": str(tmp_path)}
    rst = scrape_figures(None, block_vars, conf)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["image_0.png", "image_1.png"]
    assert "image_0.png" in rst and "image_1.png" in rst
    # The next block finds the same figures in the variables: nothing new to show.
    assert scrape_figures(None, block_vars, conf) == ""
    assert len(list(tmp_path.iterdir())) == 2

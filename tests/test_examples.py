"""Every script in ``examples/`` runs, with the sizes its quick mode sets.

Each example reads ``IDC_SKLEARN_EXAMPLE_QUICK=1`` and shrinks its data, network and
epochs, so the whole gallery runs here in about a minute; the docs build runs them the
same way and shows their figures (tests/test_browser.py checks the built gallery). A
new example is picked up by the glob, so none can be forgotten.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import subprocess
import sys

import pytest
from conftest import REPO_ROOT

EXAMPLES = sorted((REPO_ROOT / "examples").glob("*.py"))
QUICK = "IDC_SKLEARN_EXAMPLE_QUICK"
# Examples that need an optional extra: one of these modules, or they skip.
NEEDS = {
    "train_accelerate.py": ("accelerate",),
    "whole_slide.py": ("openslide", "tiffslide"),  # a slide reader
}


def test_examples_are_found():
    names = {path.name for path in EXAMPLES}
    assert {"quick_start.py", "grid_search_by_patient.py"} <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.stem)
def test_example_is_in_gallery_format(path):
    """A docstring that opens with an rst title, and a quick mode the tests use."""
    source = path.read_text(encoding="utf-8")
    docstring = ast.get_docstring(ast.parse(source), clean=False) or ""
    lines = docstring.strip("\n").splitlines()
    assert len(lines) >= 2, f"{path.name}: the docstring must open with a title"
    title, underline = lines[0], lines[1]
    assert set(underline) == {"="} and len(underline) >= len(title), (
        f"{path.name}: the title {title!r} must be underlined with '=' "
        "(sphinx-gallery's format)"
    )
    assert QUICK in source, f"{path.name} does not read {QUICK}"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.stem)
def test_example_runs(path, tmp_path):
    needs = NEEDS.get(path.name, ())
    if needs and not any(importlib.util.find_spec(m) for m in needs):
        pytest.skip(
            f"needs {' or '.join(needs)} (an optional extra); none is installed"
        )
    env = {
        **os.environ,
        QUICK: "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "MPLBACKEND": "Agg",
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])
        ),
    }
    # From a scratch folder, so an example that writes files leaves none behind.
    result = subprocess.run(
        [sys.executable, str(path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, (
        f"{path.name} exited with {result.returncode}:\n{result.stderr[-4000:]}"
    )

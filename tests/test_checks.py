"""The shared checks of ``idc_sklearn._checks``, and the callers' messages they keep."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

import idc_sklearn
from idc_sklearn import ColorMoments, ReinhardNormalizer
from idc_sklearn._checks import (
    FLOAT64_CHUNK_ROWS,
    check_fraction,
    check_output_path,
    check_path,
    check_rgb_patches,
    final_step,
    float64_chunks,
)
from idc_sklearn._files import atomic_write
from idc_sklearn.cli._common import CommandError, check_output
from idc_sklearn.plotting._base import check_path as check_figure_path

# --- check_fraction -----------------------------------------------------------------


@pytest.mark.parametrize(
    "value", [0, 1, 0.25, np.float32(0.5), np.int64(1), np.float64(0.0)]
)
def test_check_fraction_returns_a_float(value):
    checked = check_fraction(value, "alpha")
    assert type(checked) is float
    assert checked == float(value)


@pytest.mark.parametrize(
    "value", [-0.1, 1.5, True, False, "0.5", None, float("nan"), [0.5], 1 + 0j]
)
def test_check_fraction_names_the_argument_the_value_and_the_range(value):
    expected = f"alpha must be a number in [0, 1]; got {value!r}."
    with pytest.raises(ValueError, match=re.escape(expected)):
        check_fraction(value, "alpha")


def test_check_fraction_says_the_other_forms_an_argument_takes():
    with pytest.raises(
        ValueError, match=re.escape("tissue must be 'auto' or a number in [0, 1]")
    ):
        check_fraction(2, "tissue", also="'auto' or ")


# --- check_path and check_output_path ------------------------------------------------


def test_check_path_expands_the_home_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert check_path("~/model.safetensors") == tmp_path / "model.safetensors"
    assert check_path(tmp_path / "x") == tmp_path / "x"


@pytest.mark.parametrize("path", [3, None, b"model.bin", ["a"]])
def test_check_path_names_the_argument_and_the_type(path):
    expected = f"model must be a str or path-like; got {type(path).__name__}."
    with pytest.raises(TypeError, match=re.escape(expected)):
        check_path(path, "model")


def test_check_path_says_what_the_caller_expects():
    with pytest.raises(TypeError, match="out must be a folder; got int"):
        check_path(1, "out", expected="a folder")


def test_check_output_path_returns_the_path_whether_or_not_the_file_exists(tmp_path):
    (tmp_path / "old.csv").write_text("x")
    for name in ("old.csv", "new.CSV"):
        path = check_output_path(str(tmp_path / name), "table", (".csv",))
        assert path == tmp_path / name
    assert check_output_path(tmp_path / "any.thing") == tmp_path / "any.thing"


def test_check_output_path_takes_none_only_where_optional(tmp_path):
    assert check_output_path(None, "table", optional=True) is None
    with pytest.raises(TypeError, match="table must be a path; got NoneType."):
        check_output_path(None, "table")


def test_check_output_path_names_a_wrong_suffix(tmp_path):
    path = tmp_path / "map.png"
    expected = f"map={str(path)!r}: expected a file name ending in .npy or .tif."
    with pytest.raises(ValueError, match=re.escape(expected)):
        check_output_path(path, "map", (".npy", ".tif"))


def test_check_output_path_names_a_missing_folder(tmp_path):
    path = tmp_path / "absent" / "map.npy"
    expected = f"map={str(path)!r}: its folder {str(path.parent)!r} does not exist."
    with pytest.raises(FileNotFoundError, match=re.escape(expected)):
        check_output_path(path, "map", (".npy",))


def test_check_output_path_checks_the_suffix_before_the_folder(tmp_path):
    with pytest.raises(ValueError, match="expected a file name ending in .npy"):
        check_output_path(tmp_path / "absent" / "map.png", "map", (".npy",))


def test_check_output_path_words_each_fault_as_its_caller_asks(tmp_path):
    templates = {
        "wrong_suffix": "[{name}|{path}|{suffixes}]",
        "no_folder": "[{name}|{path}|{folder}]",
    }
    bad_suffix = tmp_path / "x.txt"
    with pytest.raises(ValueError) as error:
        check_output_path(bad_suffix, "out", ("", ".png"), **templates)
    assert str(error.value) == f"[out|{bad_suffix}| or .png]"
    no_folder = tmp_path / "absent" / "x"
    with pytest.raises(FileNotFoundError) as error:
        check_output_path(no_folder, "out", ("", ".png"), **templates)
    assert str(error.value) == f"[out|{no_folder}|{no_folder.parent}]"
    # Braces in the path are the path's, not the template's.
    odd = tmp_path / "{name}.png"
    assert check_output_path(odd, "out", (".png",), **templates) == odd


# --- the callers' messages, unchanged -------------------------------------------------


def test_the_figures_path_keeps_its_messages(tmp_path):
    assert check_figure_path(None) is None
    assert check_figure_path(tmp_path / "f") == tmp_path / "f"
    with pytest.raises(
        TypeError, match="path must be None or the path of a PNG file; got int."
    ):
        check_figure_path(1)
    svg = tmp_path / "f.svg"
    with pytest.raises(ValueError) as error:
        check_figure_path(svg)
    assert str(error.value) == (
        f"path={str(svg)!r} does not end in .png; figures are saved as PNG "
        "(call the returned figure's savefig for other formats)."
    )
    png = tmp_path / "absent" / "f.png"
    with pytest.raises(FileNotFoundError) as error:
        check_figure_path(png)
    assert str(error.value) == (
        f"path={str(png)!r}: its folder {str(png.parent)!r} does not exist; "
        "create it first."
    )


def test_atomic_write_keeps_its_messages(tmp_path):
    with pytest.raises(TypeError, match=r"^path must be a str or path-like; got int\."):
        with atomic_write(3):
            pass
    path = tmp_path / "absent" / "f.bin"
    with pytest.raises(FileNotFoundError) as error:
        with atomic_write(path):
            pass
    assert str(error.value) == (
        f"cannot write {str(path)!r}: the folder {str(path.parent)!r} does not exist."
    )


def test_the_command_line_keeps_its_messages(tmp_path):
    file = tmp_path / "out.csv"
    file.write_text("")
    assert check_output("--output", str(file)) == file
    assert check_output("--output", str(tmp_path / "new"), folder=True) == (
        tmp_path / "new"
    )
    missing = f"{tmp_path}/absent/out.csv"
    faults = [
        (
            (str(tmp_path),),
            {},
            f"--output {tmp_path} is a folder; expected a file name",
        ),
        (
            (str(file),),
            {"folder": True},
            f"--output {file} is a file; expected a folder",
        ),
        (
            (missing,),
            {},
            f"--output {missing}: the folder {str(tmp_path / 'absent')!r} does not "
            "exist",
        ),
    ]
    for args, kwargs, message in faults:
        with pytest.raises(CommandError) as error:
            check_output("--output", *args, **kwargs)
        assert str(error.value) == message


# --- final_step -----------------------------------------------------------------------


class _Steps:
    def __init__(self, steps):
        self.steps = steps


def test_final_step_is_a_pipelines_last_step_or_the_estimator():
    clf = LogisticRegression()
    assert final_step(clf) is clf
    assert final_step(make_pipeline(StandardScaler(), clf)) is clf
    assert final_step(Pipeline([("only", clf)])) is clf


@pytest.mark.parametrize("steps", [[], None, "steps", ()])
def test_final_step_reads_only_a_non_empty_list_of_steps(steps):
    odd = _Steps(steps)
    assert final_step(odd) is odd


def test_final_step_of_an_imbalanced_learn_pipeline():
    imblearn = pytest.importorskip("imblearn.pipeline", reason="imbalanced-learn")
    clf = LogisticRegression()
    assert final_step(imblearn.make_pipeline(StandardScaler(), clf)) is clf


# --- check_rgb_patches ----------------------------------------------------------------


def test_check_rgb_patches_returns_a_4d_view():
    X = np.zeros((3, 4, 5, 3), dtype=np.uint8)
    for data in (X, X.reshape(3, -1)):
        patches = check_rgb_patches(data, (4, 5, 3), ColorMoments())
        assert patches.shape == (3, 4, 5, 3)
        assert patches.dtype == np.uint8
        assert np.shares_memory(patches, X)


def test_check_rgb_patches_names_the_owner_of_a_non_rgb_patch_shape():
    expected = (
        "The 'patch_shape' parameter of ReinhardNormalizer must be (height, width, "
        "3): RGB patches; got (4, 4, 1)."
    )
    with pytest.raises(ValueError, match=re.escape(expected)):
        check_rgb_patches(np.zeros((2, 4, 4, 1)), (4, 4, 1), ReinhardNormalizer())


@pytest.mark.parametrize(
    "X, message",
    [
        (np.zeros((2, 4, 4, 3)), r"X has patches of shape \(4, 4, 3\); expected"),
        (np.zeros((2, 7)), "X is 2-D with 7 features per row"),
        (np.full((2, 5, 5, 3), 256.0), r"X holds values in \[256.0, 256.0\]"),
        (np.full((2, 5, 5, 3), -1.0), r"0-255 scale"),
    ],
)
def test_check_rgb_patches_names_bad_patches(X, message):
    with pytest.raises(ValueError, match=message):
        check_rgb_patches(X, (5, 5, 3), ColorMoments())


# --- float64_chunks -------------------------------------------------------------------


@pytest.mark.parametrize("n, rows", [(0, 4), (3, 4), (8, 4), (9, 4), (1030, None)])
def test_float64_chunks_cover_the_patches_in_order(n, rows):
    patches = np.arange(n * 12, dtype=np.uint8).reshape(n, 2, 2, 3)
    chunks = list(
        float64_chunks(patches) if rows is None else float64_chunks(patches, rows)
    )
    limit = FLOAT64_CHUNK_ROWS if rows is None else rows
    assert all(0 < len(chunk) <= limit for _, chunk in chunks)
    assert [r.start for r, _ in chunks] == list(range(0, n, limit))
    for r, chunk in chunks:
        assert chunk.dtype == np.float64
        assert chunk.shape[1:] == patches.shape[1:]
        np.testing.assert_array_equal(chunk, patches[r])
    assert sum(len(chunk) for _, chunk in chunks) == n


def test_float64_chunks_are_copies_even_of_float64_patches():
    patches = np.ones((5, 2, 2, 3))
    for _, chunk in float64_chunks(patches, 2):
        chunk *= 0
    assert (patches == 1).all()


# --- one home: no copy of a shared check elsewhere in the package ---------------------

# Functions of _checks that no other module defines again, with or without a
# leading underscore.
_SHARED = {"check_fraction", "check_output_path", "final_step", "float64_chunks"}


def _copies(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name.lstrip("_") in _SHARED:
            found.append(f"def {node.name} (line {node.lineno})")
        # path.parent.is_dir(): whether an output path's folder exists.
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "is_dir"
            and isinstance(node.func.value, ast.Attribute)
            and node.func.value.attr == "parent"
        ):
            found.append(f"a check of an output path's folder (line {node.lineno})")
    return found


def test_the_copy_scan_finds_a_copy(tmp_path):
    source = tmp_path / "module.py"
    source.write_text(
        "def _check_fraction(value, name):\n    return value\n"
        "def save(path):\n    if not path.parent.is_dir():\n        raise OSError\n"
    )
    assert _copies(source) == [
        "def _check_fraction (line 1)",
        "a check of an output path's folder (line 4)",
    ]


def test_no_module_writes_a_shared_check_again():
    package = Path(idc_sklearn.__file__).parent
    copies = {
        str(path.relative_to(package)): found
        for path in sorted(package.rglob("*.py"))
        if path.name != "_checks.py" and (found := _copies(path))
    }
    assert not copies, f"use idc_sklearn._checks instead: {copies}"

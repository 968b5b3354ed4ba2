"""The archive scanner: layout checks, root checks and the listing of patch files.

Through ``check_archive_layout`` and ``load_idc``, which report what the scanner
finds, and through ``list_files``, whose records are ``PatchFile``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from idc_archive import CORNER, copy_subset, load
from PIL import Image

from idc_sklearn import check_archive_layout
from idc_sklearn.datasets import _scanner
from idc_sklearn.datasets._scanner import PatchFile, list_files


@pytest.fixture
def subset(idc_sample_root, tmp_path):
    return copy_subset(idc_sample_root, tmp_path)


# --- the listing ---------------------------------------------------------------


def test_list_files_gives_named_records_in_the_loaders_order(subset):
    files, skipped, selected = list_files([subset], subset, None)
    assert skipped == [] and selected is None
    assert len(files) == len(list(subset.rglob("*.png")))
    assert all(isinstance(f, PatchFile) for f in files)
    assert files == sorted(files, key=lambda f: (f.patient, f.label, f.name))
    corner = next(f for f in files if f.rel_path == CORNER.replace("/", os.sep))
    stat = (subset / CORNER).stat()
    assert corner == PatchFile(
        patient="8864",
        label=0,
        name=Path(CORNER).name,
        rel_path=CORNER.replace("/", os.sep),
        x=3751,
        y=2901,
        size=stat.st_size,
        mtime_ns=stat.st_mtime_ns,
    )
    only, _, selected = list_files([subset], subset.parent, [8957])
    assert selected == ["8957"] and {f.patient for f in only} == {"8957"}
    assert all(f.rel_path.startswith(f"subset{os.sep}8957{os.sep}1") for f in only)


def test_unknown_patients_are_named(idc_sample_root):
    with pytest.raises(ValueError, match=r"patients \['123', '99999'\] are not in"):
        load(idc_sample_root, patients=["8863", 99999, "123"])


def test_nested_duplicate_archive_is_counted_once(subset, tmp_path):
    plain = load(subset)
    top = tmp_path / "archive"
    shutil.copytree(subset, top)
    shutil.copytree(subset, top / "IDC_regular_ps50_idx5")
    nested = load(top)
    assert len(nested.target) == len(plain.target)
    np.testing.assert_array_equal(nested.data, plain.data)
    assert not nested.frame["path"].str.contains("IDC_regular_ps50_idx5").any()
    # The archive's top folder holding only the nested copy, and a partial top level.
    only = tmp_path / "only"
    shutil.copytree(subset, only / "IDC_regular_ps50_idx5")
    assert len(load(only).target) == len(plain.target)
    shutil.rmtree(top / "8957")
    for path in list((top / "8864" / "0").glob("*.png"))[:3]:
        path.unlink()
    partial = load(top)
    np.testing.assert_array_equal(partial.data, plain.data)
    assert partial.frame["path"].str.contains("IDC_regular_ps50_idx5").sum() == 15


# --- bad roots ------------------------------------------------------------------


def test_empty_root_names_the_path_and_the_layout(tmp_path):
    with pytest.raises(ValueError, match="holds no patient folders") as info:
        load(tmp_path)
    message = str(info.value)
    assert str(tmp_path) in message and "<patient>/<0|1>/" in message
    assert "It is empty" in message


def test_wrong_layout_names_the_path_and_the_layout(tmp_path):
    (tmp_path / "0").mkdir()
    Image.new("RGB", (50, 50)).save(tmp_path / "0" / "8863_idx5_x1_y1_class0.png")
    Image.new("RGB", (50, 50)).save(tmp_path / "a.png")
    with pytest.raises(ValueError, match="expected <root>/<patient>/<0|1>/") as info:
        load(tmp_path)
    assert str(tmp_path) in str(info.value) and "'0'" in str(info.value)


def test_patient_folders_without_patches_are_an_error(tmp_path):
    (tmp_path / "8863" / "0").mkdir(parents=True)
    (tmp_path / "8863" / "0" / "readme.txt").write_text("x")
    with pytest.raises(ValueError, match="holds no patch files"):
        load(tmp_path)


def test_missing_root_and_file_root(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load(tmp_path / "nowhere")
    (tmp_path / "file.zip").write_bytes(b"")
    with pytest.raises(NotADirectoryError, match="is a file, not a folder"):
        load(tmp_path / "file.zip")


def test_root_must_be_a_path():
    with pytest.raises(TypeError, match="root must be the path"):
        load(42)


# --- check_archive_layout --------------------------------------------------------


def test_check_archive_layout_returns_the_patients(idc_sample_root, tmp_path):
    files, _, _ = list_files([idc_sample_root], idc_sample_root, None)
    assert check_archive_layout(idc_sample_root) == sorted({f.patient for f in files})
    nested = tmp_path / _scanner.NESTED_ARCHIVE_DIR
    for folder in ("9/0", f"{_scanner.NESTED_ARCHIVE_DIR}/10/1", "11/1"):
        (tmp_path / folder).mkdir(parents=True)
    assert check_archive_layout(str(tmp_path)) == ["10", "11", "9"]
    assert check_archive_layout(nested) == ["10"]


def test_check_archive_layout_names_root_and_what_it_holds(tmp_path):
    Image.new("RGB", (50, 50)).save(tmp_path / "a.png")
    (tmp_path / "8863").mkdir()
    with pytest.raises(ValueError, match="holds no patient folders") as info:
        check_archive_layout(tmp_path)
    message = str(info.value)
    assert f"root={str(tmp_path)!r}" in message and "<patient>/<0|1>/" in message
    assert "It holds '8863', 'a.png'." in message
    with pytest.raises(NotADirectoryError, match=r"root='.*a\.png' is a file"):
        check_archive_layout(tmp_path / "a.png")
    with pytest.raises(FileNotFoundError, match="root='.*nowhere' does not exist"):
        check_archive_layout(tmp_path / "nowhere")
    with pytest.raises(TypeError, match="root must be the path .*; got list"):
        check_archive_layout([tmp_path])

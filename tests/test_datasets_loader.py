"""load_idc end to end on the real sample, damaged copies and several roots.

The parts it joins have their own tests: ``test_datasets_scanner.py`` (layout and
listing), ``test_datasets_decode.py`` (PNG decoding, ``read_patch``) and
``test_datasets_cache.py`` (the disk cache).
"""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from idc_archive import copy_patients, copy_subset, load, rgb_pixels
from PIL import Image

COLUMNS = ["patient", "x", "y", "target", "path", "height", "width"]


@pytest.fixture
def subset(idc_sample_root, tmp_path):
    return copy_subset(idc_sample_root, tmp_path)


@pytest.fixture(scope="module")
def sample(idc_sample_root):
    return load(idc_sample_root)


def test_sample_counts_match_its_provenance(sample):
    assert sample.data.shape == (2695, 50, 50, 3)
    assert sample.data.dtype == np.uint8
    assert sample.target.shape == (2695,)
    assert np.issubdtype(sample.target.dtype, np.integer)
    assert int(sample.target.sum()) == 1245
    assert len(set(sample.groups)) == 19
    assert all(isinstance(g, str) for g in sample.groups)
    assert sample.skipped == []
    frame = sample.frame
    assert list(frame.columns) == COLUMNS
    edge = (frame["height"] < 50) | (frame["width"] < 50)
    assert int(edge.sum()) == 31
    counts = frame.groupby(["patient", "target"]).size()
    assert counts[("8865", 1)] == 55 and counts[("8913", 0)] == 290
    assert "Janowczyk" in sample.DESCR and "Cruz-Roa" in sample.DESCR
    assert "2695 patches of 19 patients" in sample.DESCR


def test_frame_agrees_with_the_file_names_and_rows_are_sorted(sample):
    frame = sample.frame
    np.testing.assert_array_equal(frame["target"], sample.target)
    np.testing.assert_array_equal(frame["patient"], sample.groups)
    row = frame.iloc[0]
    name = Path(row["path"]).name
    assert name == f"{row.patient}_idx5_x{row.x}_y{row.y}_class{row.target}.png"
    assert Path(row["path"]).is_file()
    order = sorted(zip(frame["patient"], frame["path"], strict=True))
    assert order == list(zip(frame["patient"], frame["path"], strict=True))
    assert (frame[["x", "y"]] % 50 == 1).all().all()


def test_pad_drop_leaves_edge_patches_out_and_says_how_many(idc_sample_root, sample):
    with pytest.warns(UserWarning, match="left out 31 edge patches"):
        dropped = load(idc_sample_root, pad="drop")
    assert dropped.data.shape == (2664, 50, 50, 3)
    assert len(dropped.skipped) == 31
    assert all("pad='drop'" in reason for _, reason in dropped.skipped)
    assert "31 edge patches smaller than 50x50 were left out" in dropped.DESCR
    full = ((sample.frame["height"] == 50) & (sample.frame["width"] == 50)).to_numpy()
    np.testing.assert_array_equal(dropped.data, sample.data[full])
    np.testing.assert_array_equal(dropped.target, sample.target[full])


def test_return_X_y_and_patient_subset(idc_sample_root, sample):
    X, y = load(idc_sample_root, patients=[8957, "8864"], return_X_y=True)
    rows = sample.frame["patient"].isin(["8864", "8957"]).to_numpy()
    np.testing.assert_array_equal(X, sample.data[rows])
    np.testing.assert_array_equal(y, sample.target[rows])


def test_home_relative_paths_are_expanded(subset, monkeypatch):
    monkeypatch.setenv("HOME", str(subset.parent))
    loaded = load("~/subset", cache="~/cache")
    assert loaded.frame["path"][0].startswith(str(subset))
    assert (subset.parent / "cache" / "data.npy").is_file()


def test_progress_bar_is_shown_on_request(subset, capsys):
    load(subset, progress=True)
    assert "load_idc" in capsys.readouterr().err
    load(subset, progress=False)
    assert capsys.readouterr().err == ""


# --- damaged files and several roots ------------------------------------------


def test_damaged_files_are_skipped_with_reasons_and_one_warning(subset):
    good = load(subset)
    folder = subset / "8957" / "1"
    source = sorted(folder.glob("*.png"))[0]
    data = source.read_bytes()
    (folder / "8957_idx5_x1_y1_class1.png").write_bytes(data[: len(data) // 2])
    (folder / "8957_idx5_x1_y51_class1.png").write_bytes(b"")
    (folder / "8957_idx5_x1_y101_class1.png").write_bytes(b"this is not a PNG")
    shutil.copy(source, subset / "8864" / "0" / "8864_idx5_x1_y1_class1.png")
    shutil.copy(source, folder / "notes.png")
    (folder / ".DS_Store").write_bytes(b"\0\1")
    rgb = rgb_pixels(source)
    Image.fromarray(rgb).convert("RGBA").save(folder / "8957_idx5_x51_y1_class1.png")
    Image.fromarray(rgb).convert("L").save(folder / "8957_idx5_x101_y1_class1.png")
    Image.fromarray(rgb).convert("P").save(folder / "8957_idx5_x151_y1_class1.png")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        damaged = load(subset)
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1
    assert "skipped 5 of" in messages[0] and "'skipped'" in messages[0]

    reasons = {Path(path).name: reason for path, reason in damaged.skipped}
    assert set(reasons) == {
        "8957_idx5_x1_y1_class1.png",
        "8957_idx5_x1_y51_class1.png",
        "8957_idx5_x1_y101_class1.png",
        "8864_idx5_x1_y1_class1.png",
        "notes.png",
    }
    assert "cannot be read" in reasons["8957_idx5_x1_y1_class1.png"]
    assert "empty" in reasons["8957_idx5_x1_y51_class1.png"]
    assert "cannot be read" in reasons["8957_idx5_x1_y101_class1.png"]
    assert "disagrees" in reasons["8864_idx5_x1_y1_class1.png"]
    assert "file name" in reasons["notes.png"]
    assert all(os.path.isabs(path) for path, _ in damaged.skipped)

    assert len(damaged.target) == len(good.target) + 3
    frame = damaged.frame.set_index(damaged.frame["path"].map(lambda p: Path(p).name))
    row = frame.index.get_loc
    np.testing.assert_array_equal(damaged.data[row("8957_idx5_x51_y1_class1.png")], rgb)
    gray = np.asarray(Image.fromarray(rgb).convert("L"))
    np.testing.assert_array_equal(
        damaged.data[row("8957_idx5_x101_y1_class1.png")],
        np.repeat(gray[:, :, None], 3, axis=2),
    )
    palette = np.asarray(Image.fromarray(rgb).convert("P").convert("RGB"))
    np.testing.assert_array_equal(
        damaged.data[row("8957_idx5_x151_y1_class1.png")], palette
    )


def test_several_roots_load_as_one_dataset(subset, tmp_path):
    """A patient spread over two folders is one patient; a shared file loads once."""
    whole = load(subset)
    first, second = tmp_path / "first", tmp_path / "second"
    shutil.copytree(subset, first)
    shutil.copytree(subset, second)
    # 8957 only in the second folder; 8864's class 0 split between both, with one
    # file in both (loaded from the first).
    shutil.rmtree(first / "8957")
    names = sorted(p.name for p in (subset / "8864" / "0").glob("*.png"))
    for name in names[:5]:
        (second / "8864" / "0" / name).unlink()
    for name in names[6:]:
        (first / "8864" / "0" / name).unlink()
    both = load([first, second])
    np.testing.assert_array_equal(both.data, whole.data)
    np.testing.assert_array_equal(both.target, whole.target)
    np.testing.assert_array_equal(both.groups, whole.groups)
    assert sorted(set(both.groups)) == ["8864", "8957"]
    from_first = both.frame["path"].str.startswith(str(first) + os.sep)
    assert from_first.sum() == len(list(first.rglob("*.png")))
    assert both.frame["path"].map(os.path.isfile).all()
    assert str(first) in both.DESCR and str(second) in both.DESCR
    # A patient list applies to all folders; the same folder twice adds nothing.
    only = load([first, second, first], patients=["8957"])
    assert set(only.groups) == {"8957"}
    assert len(only.target) == (whole.groups == "8957").sum()


def test_several_roots_are_cached_and_each_is_checked(subset, tmp_path):
    other = tmp_path / "other"
    copy_patients(subset, other, ["8957"])
    shutil.rmtree(subset / "8957")
    cache = tmp_path / "cache"
    first = load([subset, other], cache=cache)
    again = load([subset, other], cache=cache)
    assert isinstance(again.data, np.memmap)
    pd.testing.assert_frame_equal(again.frame, first.frame)
    # Another list of folders is another dataset: the cache is rebuilt.
    assert set(load([subset], cache=cache).groups) == {"8864"}
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="empty.*holds no patient folders"):
        load([subset, tmp_path / "empty"])
    with pytest.raises(FileNotFoundError, match="missing.*does not exist"):
        load([subset, tmp_path / "missing"])
    with pytest.raises(ValueError, match=r"patients \['1'\] are not in the archive"):
        load([subset, other], patients=["8957", "1"])
    with pytest.raises(TypeError, match="non-empty list"):
        load([])
    with pytest.raises(TypeError, match="root must hold paths.*got 3 of type int"):
        load([subset, 3])


# --- arguments -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (
            {"pad": "x"},
            ValueError,
            "pad must be one of 'zero', 'reflect', 'drop'; got 'x'",
        ),
        ({"n_jobs": 0}, ValueError, "n_jobs must be .*; got 0"),
        ({"n_jobs": 1.5}, ValueError, "n_jobs must be .*; got 1.5"),
        ({"progress": "yes"}, TypeError, "progress must be True or False; got 'yes'"),
        ({"return_X_y": 1}, TypeError, "return_X_y must be True or False; got 1"),
        ({"cache": 3}, TypeError, "cache must be None or the path"),
        ({"patients": []}, ValueError, "patients is empty"),
        ({"patients": [1.5]}, TypeError, "patient ids as str or int; got 1.5"),
        ({"patients": 8.0}, TypeError, "patients must be None or a list"),
    ],
)
def test_bad_arguments_name_argument_value_and_expectation(
    tmp_path, kwargs, error, match
):
    (tmp_path / "7" / "0").mkdir(parents=True)
    Image.new("RGB", (50, 50)).save(tmp_path / "7" / "0" / "7_idx5_x1_y1_class0.png")
    with pytest.raises(error, match=match):
        load(tmp_path, **kwargs)

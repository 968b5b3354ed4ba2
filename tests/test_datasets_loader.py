"""load_idc and read_patient_split on the real sample, damaged copies and bad roots."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from idc_sklearn import check_archive_layout, load_idc, read_patch, read_patient_split
from idc_sklearn.datasets import _decode, _loader, _scanner

REPO_ROOT = Path(__file__).resolve().parents[1]
SPLIT = REPO_ROOT / ".." / "shared" / "data" / "cruz_roa_split"
CORNER = "8864/0/8864_idx5_x3751_y2901_class0.png"  # 32x42 (width x height)
COLUMNS = ["patient", "x", "y", "target", "path", "height", "width"]


def _load(root, **kwargs):
    kwargs.setdefault("progress", False)
    return load_idc(root, **kwargs)


def _rgb(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


@pytest.fixture(scope="module")
def sample(idc_sample_root):
    return _load(idc_sample_root)


@pytest.fixture(scope="module")
def sample_reflect(idc_sample_root):
    return _load(idc_sample_root, pad="reflect")


def _copy_patients(src: Path, dst: Path, patients, per_class=None) -> Path:
    for patient in patients:
        for label in ("0", "1"):
            names = sorted(p.name for p in (src / patient / label).glob("*.png"))
            if per_class is not None:
                names = names[:per_class]
            if names:
                (dst / patient / label).mkdir(parents=True, exist_ok=True)
            for name in names:
                shutil.copy2(src / patient / label / name, dst / patient / label / name)
    return dst


@pytest.fixture
def subset(idc_sample_root, tmp_path) -> Path:
    """Patients 8864 (28 edge patches, both classes) and 8957 (class 1), copied."""
    root = _copy_patients(idc_sample_root, tmp_path / "subset", ["8864", "8957"], 12)
    shutil.copy2(idc_sample_root / CORNER, root / CORNER)
    return root


# --- the real sample ---------------------------------------------------------


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


def test_pixels_are_the_files_pixels(sample):
    for i in (0, 1000, 2694):
        np.testing.assert_array_equal(sample.data[i], _rgb(sample.frame["path"][i]))


def _corner_row(bunch) -> int:
    return int(np.flatnonzero(bunch.frame["path"].str.endswith(CORNER))[0])


def test_pad_zero_pastes_edge_patches_top_left_into_zeros(sample):
    i = _corner_row(sample)
    assert (sample.frame["width"][i], sample.frame["height"][i]) == (32, 42)
    original = _rgb(sample.frame["path"][i])
    np.testing.assert_array_equal(sample.data[i, :42, :32], original)
    assert not sample.data[i, 42:].any() and not sample.data[i, :, 32:].any()


def test_pad_reflect_reflects_edge_patches(sample, sample_reflect):
    i = _corner_row(sample_reflect)
    original = _rgb(sample_reflect.frame["path"][i])
    expected = np.pad(original, ((0, 8), (0, 18), (0, 0)), mode="reflect")
    np.testing.assert_array_equal(sample_reflect.data[i], expected)
    full = (sample.frame["height"] == 50) & (sample.frame["width"] == 50)
    np.testing.assert_array_equal(sample.data[full], sample_reflect.data[full])


def test_pad_drop_leaves_edge_patches_out_and_says_how_many(idc_sample_root, sample):
    with pytest.warns(UserWarning, match="left out 31 edge patches"):
        dropped = _load(idc_sample_root, pad="drop")
    assert dropped.data.shape == (2664, 50, 50, 3)
    assert len(dropped.skipped) == 31
    assert all("pad='drop'" in reason for _, reason in dropped.skipped)
    assert "31 edge patches smaller than 50x50 were left out" in dropped.DESCR
    full = ((sample.frame["height"] == 50) & (sample.frame["width"] == 50)).to_numpy()
    np.testing.assert_array_equal(dropped.data, sample.data[full])
    np.testing.assert_array_equal(dropped.target, sample.target[full])


def test_return_X_y_and_patient_subset(idc_sample_root, sample):
    X, y = _load(idc_sample_root, patients=[8957, "8864"], return_X_y=True)
    rows = sample.frame["patient"].isin(["8864", "8957"]).to_numpy()
    np.testing.assert_array_equal(X, sample.data[rows])
    np.testing.assert_array_equal(y, sample.target[rows])


def test_unknown_patients_are_named(idc_sample_root):
    with pytest.raises(ValueError, match=r"patients \['123', '99999'\] are not in"):
        _load(idc_sample_root, patients=["8863", 99999, "123"])


def test_two_workers_give_the_same_result(subset, monkeypatch):
    serial = _load(subset)
    # Small chunks, so that both workers get several and they finish out of order.
    monkeypatch.setattr(_decode, "_CHUNK", 4)
    parallel = _load(subset, n_jobs=2)
    np.testing.assert_array_equal(parallel.data, serial.data)
    pd.testing.assert_frame_equal(parallel.frame, serial.frame)


def test_home_relative_paths_are_expanded(subset, monkeypatch):
    monkeypatch.setenv("HOME", str(subset.parent))
    loaded = _load("~/subset", cache="~/cache")
    assert loaded.frame["path"][0].startswith(str(subset))
    assert (subset.parent / "cache" / "data.npy").is_file()


def test_progress_bar_is_shown_on_request(subset, capsys):
    _load(subset, progress=True)
    assert "load_idc" in capsys.readouterr().err
    _load(subset, progress=False)
    assert capsys.readouterr().err == ""


# --- damaged and unusual files -----------------------------------------------


def test_damaged_files_are_skipped_with_reasons_and_one_warning(subset):
    good = _load(subset)
    folder = subset / "8957" / "1"
    source = sorted(folder.glob("*.png"))[0]
    data = source.read_bytes()
    (folder / "8957_idx5_x1_y1_class1.png").write_bytes(data[: len(data) // 2])
    (folder / "8957_idx5_x1_y51_class1.png").write_bytes(b"")
    (folder / "8957_idx5_x1_y101_class1.png").write_bytes(b"this is not a PNG")
    shutil.copy(source, subset / "8864" / "0" / "8864_idx5_x1_y1_class1.png")
    shutil.copy(source, folder / "notes.png")
    (folder / ".DS_Store").write_bytes(b"\0\1")
    rgb = _rgb(source)
    Image.fromarray(rgb).convert("RGBA").save(folder / "8957_idx5_x51_y1_class1.png")
    Image.fromarray(rgb).convert("L").save(folder / "8957_idx5_x101_y1_class1.png")
    Image.fromarray(rgb).convert("P").save(folder / "8957_idx5_x151_y1_class1.png")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        damaged = _load(subset)
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


def test_sixteen_bit_grayscale_is_scaled_to_eight_bits(tmp_path):
    folder = tmp_path / "7" / "0"
    folder.mkdir(parents=True)
    values = np.arange(2500, dtype=np.uint16).reshape(50, 50) * 26
    Image.fromarray(values).save(folder / "7_idx5_x1_y1_class0.png")
    patch = _load(tmp_path).data[0]
    expected = np.rint(values / 257).astype(np.uint8)
    np.testing.assert_array_equal(patch[:, :, 0], expected)
    np.testing.assert_array_equal(patch[:, :, 2], expected)


def test_a_patch_larger_than_50x50_is_skipped(tmp_path):
    folder = tmp_path / "7" / "1"
    folder.mkdir(parents=True)
    Image.new("RGB", (50, 50), "pink").save(folder / "7_idx5_x1_y1_class1.png")
    Image.new("RGB", (64, 50), "pink").save(folder / "7_idx5_x51_y1_class1.png")
    with pytest.warns(UserWarning, match="skipped 1 of 2"):
        loaded = _load(tmp_path)
    assert loaded.data.shape == (1, 50, 50, 3)
    assert "larger than 50x50" in loaded.skipped[0][1]


def test_nested_duplicate_archive_is_counted_once(subset, tmp_path):
    plain = _load(subset)
    top = tmp_path / "archive"
    shutil.copytree(subset, top)
    shutil.copytree(subset, top / "IDC_regular_ps50_idx5")
    nested = _load(top)
    assert len(nested.target) == len(plain.target)
    np.testing.assert_array_equal(nested.data, plain.data)
    assert not nested.frame["path"].str.contains("IDC_regular_ps50_idx5").any()
    # The archive's top folder holding only the nested copy, and a partial top level.
    only = tmp_path / "only"
    shutil.copytree(subset, only / "IDC_regular_ps50_idx5")
    assert len(_load(only).target) == len(plain.target)
    shutil.rmtree(top / "8957")
    for path in list((top / "8864" / "0").glob("*.png"))[:3]:
        path.unlink()
    partial = _load(top)
    np.testing.assert_array_equal(partial.data, plain.data)
    assert partial.frame["path"].str.contains("IDC_regular_ps50_idx5").sum() == 15


def test_several_roots_load_as_one_dataset(subset, tmp_path):
    """A patient spread over two folders is one patient; a shared file loads once."""
    whole = _load(subset)
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
    both = _load([first, second])
    np.testing.assert_array_equal(both.data, whole.data)
    np.testing.assert_array_equal(both.target, whole.target)
    np.testing.assert_array_equal(both.groups, whole.groups)
    assert sorted(set(both.groups)) == ["8864", "8957"]
    from_first = both.frame["path"].str.startswith(str(first) + os.sep)
    assert from_first.sum() == len(list(first.rglob("*.png")))
    assert both.frame["path"].map(os.path.isfile).all()
    assert str(first) in both.DESCR and str(second) in both.DESCR
    # A patient list applies to all folders; the same folder twice adds nothing.
    only = _load([first, second, first], patients=["8957"])
    assert set(only.groups) == {"8957"}
    assert len(only.target) == (whole.groups == "8957").sum()


def test_several_roots_are_cached_and_each_is_checked(subset, tmp_path):
    other = tmp_path / "other"
    _copy_patients(subset, other, ["8957"])
    shutil.rmtree(subset / "8957")
    cache = tmp_path / "cache"
    first = _load([subset, other], cache=cache)
    again = _load([subset, other], cache=cache)
    assert isinstance(again.data, np.memmap)
    pd.testing.assert_frame_equal(again.frame, first.frame)
    # Another list of folders is another dataset: the cache is rebuilt.
    assert set(_load([subset], cache=cache).groups) == {"8864"}
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="empty.*holds no patient folders"):
        _load([subset, tmp_path / "empty"])
    with pytest.raises(FileNotFoundError, match="missing.*does not exist"):
        _load([subset, tmp_path / "missing"])
    with pytest.raises(ValueError, match=r"patients \['1'\] are not in the archive"):
        _load([subset, other], patients=["8957", "1"])
    with pytest.raises(TypeError, match="non-empty list"):
        _load([])
    with pytest.raises(TypeError, match="root must hold paths.*got 3 of type int"):
        _load([subset, 3])


# --- the cache ---------------------------------------------------------------


def test_cache_is_hit_memory_mapped_and_identical(subset, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    first = _load(subset, cache=cache)
    assert (cache / "data.npy").is_file() and (cache / "manifest.json").is_file()

    def no_decoding(*args, **kwargs):
        raise AssertionError("the cache should have been hit")

    monkeypatch.setattr(_loader, "decode_all", no_decoding)
    second = _load(subset, cache=cache)
    assert isinstance(second.data, np.memmap) and not second.data.flags.writeable
    np.testing.assert_array_equal(second.data, first.data)
    np.testing.assert_array_equal(second.target, first.target)
    np.testing.assert_array_equal(second.groups, first.groups)
    pd.testing.assert_frame_equal(second.frame, first.frame)
    assert second.skipped == first.skipped


def test_cached_reload_equals_an_uncached_load(subset, tmp_path):
    plain = _load(subset, pad="reflect")
    _load(subset, pad="reflect", cache=tmp_path / "c")
    cached = _load(subset, pad="reflect", cache=tmp_path / "c")
    np.testing.assert_array_equal(cached.data, plain.data)
    pd.testing.assert_frame_equal(cached.frame, plain.frame)
    assert cached.DESCR == plain.DESCR


def test_cache_is_rebuilt_when_files_or_options_change(subset, tmp_path):
    cache = tmp_path / "cache"
    before = _load(subset, cache=cache)
    source = next((subset / "8957" / "1").glob("*.png"))
    shutil.copy(source, subset / "8957" / "1" / "8957_idx5_x1_y1_class1.png")
    added = _load(subset, cache=cache)
    assert len(added.target) == len(before.target) + 1
    frame = added.frame
    n_edge = int(((frame["height"] < 50) | (frame["width"] < 50)).sum())
    assert n_edge > 0
    with pytest.warns(UserWarning, match=f"left out {n_edge} edge patches"):
        dropped = _load(subset, cache=cache, pad="drop")
    assert len(dropped.target) == len(added.target) - n_edge
    one = _load(subset, cache=cache, patients=["8957"])
    assert set(one.groups) == {"8957"}
    (cache / "manifest.json").write_text("{not json")
    with pytest.warns(UserWarning, match="is damaged"):
        again = _load(subset, cache=cache)
    np.testing.assert_array_equal(again.data, added.data)


def test_cache_keeps_skipped_files_and_warns_again(subset, tmp_path):
    (subset / "8957" / "1" / "8957_idx5_x1_y1_class1.png").write_bytes(b"")
    with pytest.warns(UserWarning, match="skipped 1 of"):
        first = _load(subset, cache=tmp_path / "c")
    with pytest.warns(UserWarning, match="skipped 1 of"):
        second = _load(subset, cache=tmp_path / "c")
    assert second.skipped == first.skipped and len(first.skipped) == 1


# --- bad roots and arguments -------------------------------------------------


def test_empty_root_names_the_path_and_the_layout(tmp_path):
    with pytest.raises(ValueError, match="holds no patient folders") as info:
        _load(tmp_path)
    message = str(info.value)
    assert str(tmp_path) in message and "<patient>/<0|1>/" in message
    assert "It is empty" in message


def test_wrong_layout_names_the_path_and_the_layout(tmp_path):
    (tmp_path / "0").mkdir()
    Image.new("RGB", (50, 50)).save(tmp_path / "0" / "8863_idx5_x1_y1_class0.png")
    Image.new("RGB", (50, 50)).save(tmp_path / "a.png")
    with pytest.raises(ValueError, match="expected <root>/<patient>/<0|1>/") as info:
        _load(tmp_path)
    assert str(tmp_path) in str(info.value) and "'0'" in str(info.value)


def test_patient_folders_without_patches_are_an_error(tmp_path):
    (tmp_path / "8863" / "0").mkdir(parents=True)
    (tmp_path / "8863" / "0" / "readme.txt").write_text("x")
    with pytest.raises(ValueError, match="holds no patch files"):
        _load(tmp_path)


def test_missing_root_and_file_root(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        _load(tmp_path / "nowhere")
    (tmp_path / "file.zip").write_bytes(b"")
    with pytest.raises(NotADirectoryError, match="is a file, not a folder"):
        _load(tmp_path / "file.zip")


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
        _load(tmp_path, **kwargs)


def test_root_must_be_a_path():
    with pytest.raises(TypeError, match="root must be the path"):
        _load(42)


# --- read_patch ----------------------------------------------------------------


def test_read_patch_reads_each_patch_as_load_idc(
    idc_sample_root, sample, sample_reflect
):
    rows = [0, 500, *np.flatnonzero(sample.frame["path"] == CORNER)]
    for row in rows:
        path = idc_sample_root / sample.frame["path"][row]
        np.testing.assert_array_equal(read_patch(path), sample.data[row])
        reflected = read_patch(str(path), pad="reflect")
        np.testing.assert_array_equal(reflected, sample_reflect.data[row])


def test_read_patch_converts_to_rgb_as_load_idc(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (50, 50, 3), dtype=np.uint8)
    Image.fromarray(rgb).convert("RGBA").save(tmp_path / "rgba.png")
    np.testing.assert_array_equal(read_patch(tmp_path / "rgba.png"), rgb)
    values = np.arange(2500, dtype=np.uint16).reshape(50, 50) * 26
    Image.fromarray(values).save(tmp_path / "gray16.png")
    patch = read_patch(tmp_path / "gray16.png")
    assert patch.dtype == np.uint8 and patch.shape == (50, 50, 3)
    np.testing.assert_array_equal(patch[:, :, 1], np.rint(values / 257))


def test_read_patch_fills_a_smaller_patch_to_patch_size(tmp_path):
    Image.new("RGB", (12, 10), (9, 8, 7)).save(tmp_path / "edge.png")
    patch = read_patch(tmp_path / "edge.png", patch_size=(16, 20))
    assert patch.shape == (16, 20, 3)
    assert (patch[:10, :12] == (9, 8, 7)).all() and not patch[10:].any()
    assert not patch[:, 12:].any()
    square = read_patch(tmp_path / "edge.png", patch_size=np.int64(12))
    assert square.shape == (12, 12, 3)


def test_read_patch_expands_the_home_folder(tmp_path, monkeypatch):
    Image.new("RGB", (50, 50), "pink").save(tmp_path / "patch.png")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert (read_patch("~/patch.png") == (255, 192, 203)).all()


def test_read_patch_refuses_files_that_are_not_patches(tmp_path):
    Image.new("RGB", (64, 50)).save(tmp_path / "big.png")
    with pytest.raises(ValueError, match=r"path='.*big\.png' is 64x50 .*than 50x50"):
        read_patch(tmp_path / "big.png")
    Image.new("RGB", (30, 40)).save(tmp_path / "edge.png")
    with pytest.raises(ValueError, match=r"edge\.png' is an edge patch .*'drop'"):
        read_patch(tmp_path / "edge.png", pad="drop")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(
        ValueError, match="empty.png' cannot be read: the file is empty"
    ):
        read_patch(tmp_path / "empty.png")
    (tmp_path / "text.png").write_text("not a PNG")
    with pytest.raises(ValueError, match="cannot be read as a PNG image"):
        read_patch(tmp_path / "text.png")
    with pytest.raises(FileNotFoundError, match="path='.*nowhere.png' does not exist"):
        read_patch(tmp_path / "nowhere.png")


@pytest.mark.parametrize(
    ("argument", "error", "match"),
    [
        ({"path": 7}, TypeError, "path must be a str or path-like; got int 7"),
        ({"pad": "edge"}, ValueError, "pad must be one of .*; got 'edge'"),
        ({"patch_size": 0}, ValueError, r"patch_size must be .*; got 0\."),
        ({"patch_size": (50,)}, ValueError, r"patch_size must be .*; got \(50,\)"),
        ({"patch_size": True}, ValueError, "patch_size must be .*; got True"),
        ({"patch_size": 50.0}, ValueError, r"patch_size must be .*; got 50\.0"),
    ],
)
def test_read_patch_bad_arguments_are_named(tmp_path, argument, error, match):
    Image.new("RGB", (50, 50)).save(tmp_path / "patch.png")
    kwargs = {"path": tmp_path / "patch.png", **argument}
    with pytest.raises(error, match=match):
        read_patch(kwargs.pop("path"), **kwargs)


# --- check_archive_layout --------------------------------------------------------


def test_check_archive_layout_returns_the_patients(idc_sample_root, sample, tmp_path):
    assert check_archive_layout(idc_sample_root) == sorted(
        sample.frame["patient"].unique()
    )
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


# --- read_patient_split ------------------------------------------------------


def test_read_patient_split_reads_the_papers_split():
    if not SPLIT.is_dir():
        pytest.skip(f"the Cruz-Roa split is absent: {SPLIT} does not exist")
    split = read_patient_split(SPLIT)
    assert list(split) == ["train", "val", "test"]
    assert {k: len(v) for k, v in split.items()} == {"train": 84, "val": 29, "test": 49}
    assert all(isinstance(p, str) for ids in split.values() for p in ids)
    everyone = set().union(*split.values())
    assert len(everyone) == 162
    assert {"8865", "8867", "8864"} <= everyone
    # Patients of the archive outside the paper's 162 slides exist (8863, 8950).
    assert not {"8863", "8950"} & everyone


def _write_split(folder: Path, train="1\n2\n", val="3\n", test="4\n\n") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in (("train", train), ("val", val), ("test", test)):
        (folder / f"cases_{name}.txt").write_text(text)
    return folder


def test_read_patient_split_strips_blank_lines(tmp_path):
    split = read_patient_split(_write_split(tmp_path, train=" 10 \n\n11\n"))
    assert split == {"train": ["10", "11"], "val": ["3"], "test": ["4"]}


def test_read_patient_split_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        read_patient_split(tmp_path / "none")
    folder = _write_split(tmp_path / "a")
    (folder / "cases_val.txt").unlink()
    with pytest.raises(FileNotFoundError, match="cases_val.txt"):
        read_patient_split(folder)
    with pytest.raises(ValueError, match="patient '1' is in both"):
        read_patient_split(_write_split(tmp_path / "b", test="1\n"))
    with pytest.raises(ValueError, match="lists no patient ids"):
        read_patient_split(_write_split(tmp_path / "c", val="\n"))
    with pytest.raises(TypeError, match="folder must be the path"):
        read_patient_split(None)


def test_importing_the_datasets_never_imports_torch():
    code = "import sys, idc_sklearn.datasets; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO_ROOT)

"""load_idc_sample: the 2,695 real patches shipped in the package, and their builder."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from idc_sklearn import load_idc, load_idc_sample
from idc_sklearn.datasets import _sample

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE_FILE = REPO_ROOT / "idc_sklearn" / "datasets" / "data" / "idc_sample.npz"
COLUMNS = ["patient", "x", "y", "target", "path", "height", "width"]
KEYS = ["data", "target", "groups", "frame", "skipped", "DESCR"]
CORNER = "8864_idx5_x3751_y2901_class0.png"  # 32x42 (width x height)
# Patches of class 0 and class 1 per patient, from shared/data/idc_sample/PROVENANCE.md.
PER_PATIENT = {
    "8863": (290, 70),
    "8864": (290, 70),
    "8865": (290, 55),
    "8867": (290, 70),
    "8913": (290, 0),
    **{
        p: (0, 70)
        for p in (
            "8917 8918 8950 8951 8955 8956 8957 8959 8974 8975 8980 8984 9022 9023"
        ).split()
    },
}


@pytest.fixture(scope="module")
def sample():
    return load_idc_sample()


def _build_script():
    path = REPO_ROOT / "scripts" / "build_idc_sample.py"
    spec = importlib.util.spec_from_file_location("build_idc_sample", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_shapes_types_and_class_counts(sample):
    assert list(sample) == KEYS
    assert sample.data.shape == (2695, 50, 50, 3)
    assert sample.data.dtype == np.uint8
    assert sample.target.dtype == np.int64 and sample.target.shape == (2695,)
    assert np.bincount(sample.target).tolist() == [1450, 1245]
    assert sample.groups.dtype == object and len(set(sample.groups)) == 19
    assert all(isinstance(g, str) for g in sample.groups)
    assert sample.skipped == []


def test_patients_and_classes_match_the_provenance_table(sample):
    counts = pd.crosstab(sample.frame["patient"], sample.frame["target"])
    table = {p: (int(row[0]), int(row[1])) for p, row in counts.iterrows()}
    assert table == PER_PATIENT
    both = [p for p, (n0, n1) in table.items() if n0 and n1]
    assert both == ["8863", "8864", "8865", "8867"]


def test_frame_columns_paths_and_coordinates(sample):
    frame = sample.frame
    assert list(frame.columns) == COLUMNS
    assert all(frame[c].dtype == np.int64 for c in ("x", "y", "target"))
    np.testing.assert_array_equal(frame["target"], sample.target)
    np.testing.assert_array_equal(frame["patient"], sample.groups)
    assert ((frame[["x", "y"]] - 1) % 50 == 0).all().all()
    assert frame["x"].max() > 1000 and frame["y"].max() > 1000
    for row in frame.iloc[[0, 1500, 2694]].itertuples():
        name = f"{row.patient}_idx5_x{row.x}_y{row.y}_class{row.target}.png"
        assert row.path == os.path.join(row.patient, str(row.target), name)
    order = list(zip(frame["patient"], frame["path"], strict=True))
    assert order == sorted(order)


def test_edge_patches_are_zero_padded_with_their_size_kept(sample):
    frame = sample.frame
    edge = ((frame["height"] < 50) | (frame["width"] < 50)).to_numpy()
    assert int(edge.sum()) == 31
    # PROVENANCE.md lists 28 of 8864 (27 of 50x42) but 31 edge patches in all.
    sizes = frame[edge].groupby(["patient", "width", "height"]).size().to_dict()
    assert sizes == {
        ("8864", 50, 42): 28,
        ("8864", 32, 42): 1,
        ("8867", 50, 49): 1,
        ("8957", 31, 50): 1,
    }
    i = int(np.flatnonzero(frame["path"].str.endswith(CORNER))[0])
    assert (frame["width"][i], frame["height"][i]) == (32, 42)
    assert sample.data[i, :42, :32].any()
    assert not sample.data[i, 42:].any() and not sample.data[i, :, 32:].any()


def test_descr_holds_provenance_bias_licence_and_citations(sample):
    descr = sample.DESCR
    for text in (
        "2,695 real 50x50 RGB patches of 19 patients",
        "random.Random(20240601)",
        "only 4 patients (8863, 8864, 8865, 8867) show",
        "31 patches are slide-edge crops",
        "CC0-1.0",
        "Janowczyk A, Madabhushi A.",
        "doi:10.4103/2153-3539.186902",
        "Cruz-Roa A, Basavanhally A, González F",
        "doi:10.1117/12.2043872",
    ):
        assert text in descr


def test_return_X_y_gives_fresh_writable_arrays(sample):
    X, y = load_idc_sample(return_X_y=True)
    np.testing.assert_array_equal(X, sample.data)
    np.testing.assert_array_equal(y, sample.target)
    assert X.flags.writeable and not np.shares_memory(X, sample.data)
    X[:] = 0
    y[:] = 7
    again, _ = load_idc_sample(return_X_y=True)
    np.testing.assert_array_equal(again, sample.data)


@pytest.mark.parametrize("value", [1, "yes", None])
def test_bad_return_X_y_names_argument_value_and_expectation(value):
    with pytest.raises(
        TypeError, match=f"return_X_y must be True or False; got {value!r}"
    ):
        load_idc_sample(return_X_y=value)


def test_a_missing_sample_file_says_where_it_was_expected(monkeypatch):
    monkeypatch.setattr(_sample, "SAMPLE_FILE", "absent.npz")
    with pytest.raises(FileNotFoundError, match="absent.npz is missing .* reinstall"):
        load_idc_sample()


def test_the_shipped_file_is_small_and_numpy_readable():
    assert SAMPLE_FILE.stat().st_size <= 16_000_000
    with np.load(SAMPLE_FILE) as archive:
        assert archive.files == list(_sample.SAMPLE_ARRAYS)
        assert archive["patient"].dtype.kind == "U"


def test_loading_the_sample_never_imports_torch():
    code = (
        "import sys; from idc_sklearn import load_idc_sample; "
        "assert load_idc_sample().data.shape == (2695, 50, 50, 3); "
        "assert 'torch' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO_ROOT)


# --- against the PNG files -----------------------------------------------------


def test_equals_load_idc_on_the_sample_folder(sample, idc_sample_root):
    loaded = load_idc(idc_sample_root, progress=False)
    assert list(loaded) == list(sample)
    np.testing.assert_array_equal(sample.data, loaded.data)
    np.testing.assert_array_equal(sample.target, loaded.target)
    assert sample.target.dtype == loaded.target.dtype
    np.testing.assert_array_equal(sample.groups, loaded.groups)
    assert sample.groups.dtype == loaded.groups.dtype
    prefix = os.path.abspath(idc_sample_root) + os.sep
    expected = loaded.frame.assign(path=loaded.frame["path"].str.removeprefix(prefix))
    pd.testing.assert_frame_equal(sample.frame, expected)
    assert sample.skipped == loaded.skipped


def test_build_script_is_deterministic_and_round_trips(idc_sample_root, tmp_path):
    build = _build_script()
    source = tmp_path / "idc"
    # Three folders of patients 8864 and 8957, with the edge patch CORNER.
    files = [idc_sample_root / "8864" / "0" / CORNER]
    for folder in ("8864/0", "8864/1", "8957/1"):
        files += sorted((idc_sample_root / folder).glob("*.png"))[:3]
    for path in files:
        copy = source / path.relative_to(idc_sample_root)
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, copy)
    build.main([str(source), str(tmp_path / "a.npz")])
    build.main([str(source), str(tmp_path / "b.npz")])
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    loaded = load_idc(source, progress=False)
    with np.load(tmp_path / "a.npz") as archive:
        np.testing.assert_array_equal(archive["data"], loaded.data)
        np.testing.assert_array_equal(archive["target"], loaded.target)
        np.testing.assert_array_equal(archive["patient"], loaded.groups.astype(str))
        for column in ("x", "y", "height", "width"):
            np.testing.assert_array_equal(archive[column], loaded.frame[column])


def test_build_script_refuses_a_file_whose_path_it_cannot_rebuild(tmp_path):
    build = _build_script()
    folder = tmp_path / "idc" / "7" / "0"
    folder.mkdir(parents=True)
    Image.new("RGB", (50, 50)).save(folder / "7_IDX5_x1_y1_class0.png")
    with pytest.raises(SystemExit, match="cannot store it"):
        build.main([str(tmp_path / "idc"), str(tmp_path / "out.npz")])
    assert not (tmp_path / "out.npz").exists()

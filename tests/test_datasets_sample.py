"""load_idc_sample: the 2,800 real patches shipped in the package, and their builder."""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import CRUZ_ROA_SPLIT
from PIL import Image

from idc_sklearn import load_idc, load_idc_sample, read_patient_split
from idc_sklearn.datasets import _sample

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE_FILE = REPO_ROOT / "idc_sklearn" / "datasets" / "data" / "idc_sample.npz"
COLUMNS = ["patient", "x", "y", "target", "path", "height", "width"]
KEYS = ["data", "target", "groups", "frame", "skipped", "DESCR"]
FOLDERS = ("idc_sample", "idc_more", "idc_trainval")
CORNER = "8975_idx5_x3601_y1701_class0.png"  # 32x50 (width x height)
# Patients with one class only in the shared folders, hence in the sample.
CLASS_0_ONLY = ["8913", "9259"]
CLASS_1_ONLY = "8917 8950 8951 8955 8956 8957 8959 8974 8980 8984 9022 9023".split()
# The quota of each (patient, class) of the sample's draw, and one more for some.
QUOTA = 13


@pytest.fixture(scope="module")
def sample():
    return load_idc_sample()


@pytest.fixture(scope="module")
def shared_roots(idc_sample_root):
    roots = [idc_sample_root.parent / name for name in FOLDERS]
    if not all(root.is_dir() for root in roots):
        pytest.skip(f"the shared folders {', '.join(map(str, roots))} are not all here")
    return roots


def _build_script():
    path = REPO_ROOT / "scripts" / "build" / "build_idc_sample.py"
    spec = importlib.util.spec_from_file_location("build_idc_sample", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_shapes_types_and_class_counts(sample):
    assert list(sample) == KEYS
    assert sample.data.shape == (2800, 50, 50, 3)
    assert sample.data.dtype == np.uint8
    assert sample.target.dtype == np.int64 and sample.target.shape == (2800,)
    assert np.bincount(sample.target).tolist() == [1394, 1406]
    assert sample.groups.dtype == object and len(set(sample.groups)) == 114
    assert all(isinstance(g, str) for g in sample.groups)
    assert sample.skipped == []


def test_patients_and_classes_are_drawn_by_patient_and_class(sample):
    counts = pd.crosstab(sample.frame["patient"], sample.frame["target"])
    assert counts.to_numpy().max() == QUOTA + 1
    both = (counts > 0).all(axis=1)
    assert int(both.sum()) == 100
    assert list(counts.index[counts[1] == 0]) == CLASS_0_ONLY
    assert list(counts.index[counts[0] == 0]) == CLASS_1_ONLY
    # The paper's test patients found in the shared folders are left out.
    assert not {"8864", "8918"} & set(counts.index)


def test_no_patient_of_the_papers_test_split_is_in_the_sample(sample):
    if not CRUZ_ROA_SPLIT.is_dir():
        pytest.skip(f"the paper's split is absent: {CRUZ_ROA_SPLIT} does not exist")
    split = read_patient_split(CRUZ_ROA_SPLIT)
    patients = set(sample.groups)
    assert not patients & set(split["test"])
    assert len(patients & set(split["train"])) == 82
    assert len(patients & set(split["val"])) == 29
    assert sorted(patients - {p for ids in split.values() for p in ids}) == [
        "8863",
        "8950",
        "8984",
    ]


def test_frame_columns_paths_and_coordinates(sample):
    frame = sample.frame
    assert list(frame.columns) == COLUMNS
    assert all(frame[c].dtype == np.int64 for c in ("x", "y", "target"))
    np.testing.assert_array_equal(frame["target"], sample.target)
    np.testing.assert_array_equal(frame["patient"], sample.groups)
    assert ((frame[["x", "y"]] - 1) % 50 == 0).all().all()
    assert frame["x"].max() > 1000 and frame["y"].max() > 1000
    for row in frame.iloc[[0, 1500, 2799]].itertuples():
        name = f"{row.patient}_idx5_x{row.x}_y{row.y}_class{row.target}.png"
        assert row.path == os.path.join(row.patient, str(row.target), name)
    order = list(zip(frame["patient"], frame["path"], strict=True))
    assert order == sorted(order)


def test_edge_patches_are_zero_padded_with_their_size_kept(sample):
    frame = sample.frame
    edge = ((frame["height"] < 50) | (frame["width"] < 50)).to_numpy()
    assert int(edge.sum()) == 19
    assert frame[edge]["patient"].nunique() == 14
    sizes = frame[edge].groupby(["width", "height"]).size().to_dict()
    assert sizes[(50, 1)] == 4 and sizes[(32, 50)] == sizes[(42, 50)] == 1
    i = int(np.flatnonzero(frame["path"].str.endswith(CORNER))[0])
    assert (frame["width"][i], frame["height"][i]) == (32, 50)
    assert sample.data[i, :, :32].any()
    assert not sample.data[i, :, 32:].any()


def test_descr_holds_provenance_bias_licence_and_citations(sample):
    descr = sample.DESCR
    for text in (
        "2,800 real 50x50 RGB patches of 114 patients",
        "idc_sample (2,695 patches, 19 patients) and idc_more",
        "idc_trainval (18,551 patches, 96 patients",
        "(8864, 8918; cruz_roa_split/cases_test.txt) are left out",
        "numpy.random.default_rng(2019)",
        "100 of the 114 patients show both classes",
        "19 patches of 14 patients are slide-edge crops",
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


# --- against the PNG files -----------------------------------------------------


def _relative_to_its_folder(path: str, roots) -> str:
    return next(
        str(Path(path).relative_to(r)) for r in roots if Path(path).is_relative_to(r)
    )


def test_equals_load_idc_on_the_shared_folders(sample, shared_roots):
    # A patient spread over idc_sample and idc_more (8975), one with an edge patch
    # (9076), one of each single-class kind (8913, 8957), one of idc_trainval only.
    patients = ["10254", "8913", "8957", "8975", "9076"]
    loaded = load_idc(shared_roots, patients=patients, progress=False)
    frame = loaded.frame.assign(
        path=[_relative_to_its_folder(p, shared_roots) for p in loaded.frame["path"]]
    )
    rows = np.flatnonzero(sample.frame["patient"].isin(patients))
    kept = np.flatnonzero(frame["path"].isin(set(sample.frame["path"].iloc[rows])))
    assert len(kept) == len(rows) == 107
    np.testing.assert_array_equal(sample.data[rows], loaded.data[kept])
    np.testing.assert_array_equal(sample.target[rows], loaded.target[kept])
    np.testing.assert_array_equal(sample.groups[rows], loaded.groups[kept])
    pd.testing.assert_frame_equal(
        sample.frame.iloc[rows].reset_index(drop=True),
        frame.iloc[kept].reset_index(drop=True),
    )


def test_draw_takes_each_patient_and_class_up_to_its_quota(sample, shared_roots):
    available = {}
    for root in shared_roots:
        for patient in os.listdir(root):
            for label in ("0", "1"):
                folder = root / patient / label
                if folder.is_dir():
                    key = (patient, int(label))
                    available[key] = available.get(key, 0) + len(os.listdir(folder))
    drawn = sample.frame.groupby(["patient", "target"]).size().to_dict()
    assert set(drawn) == {key for key in available if key[0] not in {"8864", "8918"}}
    for key, n in drawn.items():
        assert (
            n in (QUOTA, QUOTA + 1) if available[key] > QUOTA else n == available[key]
        )


def test_draw_shares_n_equally_by_patient_and_class_and_is_seeded():
    build = _build_script()
    groups = np.array(["a"] * 12 + ["b"] * 5, dtype=object)
    target = np.array([0] * 10 + [1] * 2 + [1] * 5)
    keep = build.draw(groups, target, 9, seed=0)
    assert len(keep) == 9 and (np.diff(keep) > 0).all()
    counts = pd.crosstab(groups[keep], target[keep])
    # Quota 3 for each group; the one left over to a group of more than 3.
    assert counts.loc["a", 1] == 2
    assert sorted([counts.loc["a", 0], counts.loc["b", 1]]) == [3, 4]
    np.testing.assert_array_equal(keep, build.draw(groups, target, 9, seed=0))
    assert len(build.draw(groups, target, 100, seed=0)) == 17


def _split_folder(folder: Path, test: list[str]) -> Path:
    folder.mkdir()
    for name, ids in (("train", ["1"]), ("val", ["2"]), ("test", test)):
        (folder / f"cases_{name}.txt").write_text("\n".join(ids) + "\n")
    return folder


def test_build_script_is_deterministic_and_round_trips(idc_sample_root, tmp_path):
    build = _build_script()
    first, second = tmp_path / "first", tmp_path / "second"
    # 8863 spread over both folders, 8957 with its 31x50 edge patch, and 8864, a
    # test patient of the split, left out.
    edge = idc_sample_root / "8957" / "1" / "8957_idx5_x2251_y701_class1.png"
    files = [(second, edge)]
    for i, folder in enumerate(("8863/0", "8863/1", "8864/0", "8957/1")):
        for j, path in enumerate(sorted((idc_sample_root / folder).glob("*.png"))[:4]):
            files.append((first if (i + j) % 2 else second, path))
    for root, path in files:
        copy = root / path.relative_to(idc_sample_root)
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, copy)
    split = _split_folder(tmp_path / "split", ["8864"])
    options = ["--source", str(first), "--source", str(second), "--split", str(split)]
    build.main([*options, "--output", str(tmp_path / "a.npz")])
    build.main([*options, "--output", str(tmp_path / "b.npz")])
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    loaded = load_idc([first, second], patients=["8863", "8957"], progress=False)
    assert len(loaded.target) == 13
    with np.load(tmp_path / "a.npz") as archive:
        np.testing.assert_array_equal(archive["data"], loaded.data)
        np.testing.assert_array_equal(archive["target"], loaded.target)
        np.testing.assert_array_equal(archive["patient"], loaded.groups.astype(str))
        for column in ("x", "y", "height", "width"):
            np.testing.assert_array_equal(archive[column], loaded.frame[column])
    build.main([*options, "--output", str(tmp_path / "c.npz"), "--n-patches", "6"])
    with np.load(tmp_path / "c.npz") as archive:
        drawn = pd.crosstab(archive["patient"], archive["target"])
    assert drawn.to_numpy().tolist() == [[2, 2], [0, 2]]


def _one_patch_build(tmp_path, name):
    """The build script, and its arguments for a source of one patch file ``name``."""
    folder = tmp_path / "idc" / "7" / "0"
    folder.mkdir(parents=True)
    Image.new("RGB", (50, 50)).save(folder / name)
    split = _split_folder(tmp_path / "split", ["8"])
    out = tmp_path / "out.npz"
    args = ["--source", str(tmp_path / "idc"), "--split", str(split)]
    return _build_script(), [*args, "--output", str(out)], out


def test_build_script_refuses_a_file_whose_path_it_cannot_rebuild(tmp_path):
    build, args, out = _one_patch_build(tmp_path, "7_IDX5_x1_y1_class0.png")
    with pytest.raises(SystemExit, match="cannot store it"):
        build.main(args)
    assert not out.exists()


def test_build_script_refuses_a_file_over_the_size_limit(tmp_path, monkeypatch):
    build, args, out = _one_patch_build(tmp_path, "7_idx5_x1_y1_class0.png")
    monkeypatch.setattr(build, "MAX_BYTES", 100)
    with pytest.raises(SystemExit, match="over the 100 allowed"):
        build.main(args)
    assert not out.exists() and not list(tmp_path.glob("*.tmp"))

"""The GPU width screen's data file (scripts/experiments/gpu_data.py) and the table's
comparison on its rows (cv_select.py), on synthetic patches: no training."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.model_selection import GroupKFold

from idc_sklearn import make_idc_patches

EXPERIMENTS = Path(__file__).resolve().parents[1] / "scripts" / "experiments"


@pytest.fixture(scope="module")
def scripts():
    """The experiment scripts, importable by the names they import each other by."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(EXPERIMENTS))
        yield (
            importlib.import_module("gpu_data"),
            importlib.import_module("cv_select"),
        )


@pytest.fixture(scope="module")
def patches():
    data = make_idc_patches(n_patients=10, patches_per_patient=24, random_state=0)
    return data.data, data.target, np.asarray(data.groups).astype(str)


def test_rows_pair_with_the_full_folds(scripts, patches, tmp_path):
    gpu_data, _ = scripts
    X, y, groups = patches
    meta = gpu_data.pack(X, y, groups, tmp_path / "p.npz", cap=10, seed=3)
    packed = gpu_data.load(tmp_path / "p.npz")
    rows = packed["rows"]
    assert meta["patches"] == len(rows) == 100
    assert np.array_equal(packed["X"], X[rows])  # lossless
    assert np.array_equal(packed["y"], y[rows])
    for k, (train, test) in enumerate(GroupKFold(5).split(X, y, groups)):
        assert np.array_equal(np.flatnonzero(packed["split_fold"] == k), test)
        held_out = packed["fold"] == k
        # The index into a full fold's predictions, saved in GroupKFold's order.
        assert np.array_equal(test[packed["position"][held_out]], rows[held_out])
        # Training: cv_select's per-patient class counts (another draw).
        drawn = train[gpu_data.cap_per_patient(y[train], groups[train], 10, 3)]
        assert sorted(zip(groups[drawn], y[drawn], strict=True)) == sorted(
            zip(groups[rows[~held_out]], y[rows[~held_out]], strict=True)
        )
    sha = (tmp_path / "p.npz.sha256").read_text().split()
    assert sha == [gpu_data.file_sha256(tmp_path / "p.npz"), "p.npz"]


def test_size_guard_leaves_no_file(scripts, patches, tmp_path):
    gpu_data, _ = scripts
    with pytest.raises(ValueError, match="over the 0.1 MiB allowed"):
        gpu_data.pack(*patches, tmp_path / "p.npz", cap=4, max_bytes=2**20 // 10)
    assert list(tmp_path.iterdir()) == []


def test_table_compares_on_the_packed_rows(scripts, patches, tmp_path):
    gpu_data, cv_select = scripts
    X, y, groups = patches
    packed = gpu_data.select(y, groups, cap=10)
    reuse, out = tmp_path / "split_cv", tmp_path / "cv_select"
    rng = np.random.default_rng(0)
    for folder in (reuse, out):
        (folder / "predictions").mkdir(parents=True)
    sha = "ab" * 32
    for k, (_, test) in enumerate(GroupKFold(5).split(X, y, groups)):
        full = rng.random(len(test))
        np.savez(
            reuse / "predictions" / f"features-hgb-s0-f{k}-c60.npz",
            proba=full,
            y=y[test],
            groups=groups[test],
        )
        mine = packed["fold_of"][packed["rows"]] == k
        position = packed["position"][mine]
        np.savez(
            out / "predictions" / f"gpu-tiny-s0-f{k}.npz",
            proba=full[position],  # the same scores: differences of zero
            proba_tta=full[position],
            y=y[test][position],
            groups=groups[test][position],
            rows=packed["rows"][mine],
            position=position,
        )
        with open(reuse / "folds.jsonl", "a") as f:
            f.write(json.dumps({"model": "features-hgb", "seed": 0, "fold": k}) + "\n")
        with open(out / "folds.jsonl", "a") as f:
            record = {"model": "gpu-tiny", "seed": 0, "fold": k, "subset": {}}
            record["subset"]["sha256"] = sha
            f.write(json.dumps(record) + "\n")
    assert list(cv_select.pooled_predictions(out, reuse)) == [("features-hgb", 0)]
    pooled = cv_select.subset_predictions(out, reuse)[sha]
    _, y_gpu, p_gpu, g_gpu = pooled["gpu-tiny", 0]
    _, y_ref, p_ref, g_ref = pooled["features-hgb", 0]
    assert len(y_gpu) == 100
    assert np.array_equal(g_gpu, g_ref) and np.array_equal(y_gpu, y_ref)
    assert np.array_equal(p_gpu, p_ref)

"""cv_select.py's same-data reference: features-hgb trained on every patch, beside
the every-patch network, pooled and averaged on synthetic scores (no training)."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.model_selection import GroupKFold
from sklearn.pipeline import Pipeline

from idc_sklearn import MLBNInceptionClassifier, make_idc_patches

EXPERIMENTS = Path(__file__).resolve().parents[1] / "scripts" / "experiments"
SAME = "features-hgb-every-patch"


@pytest.fixture(scope="module")
def cv_select():
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(EXPERIMENTS))
        yield importlib.import_module("cv_select")


@pytest.mark.parametrize("net", ["cap-150", "every-patch"])
def test_baseline_lever_builds_the_baseline(cv_select, tmp_path, net):
    lever = cv_select.LEVERS[cv_select.SAME_DATA[net]]
    data = {k: v for k, v in lever.items() if k != "baseline"}
    assert data == cv_select.LEVERS[net]  # the network's training patches
    model = cv_select.build(lever, 3, tmp_path)
    assert isinstance(model, Pipeline)
    assert model.get_params()["clf__random_state"] == 3
    network = cv_select.build(cv_select.LEVERS[net], 3, tmp_path)
    assert isinstance(network, MLBNInceptionClassifier)
    assert not cv_select._is_network(cv_select.SAME_DATA[net])
    assert cv_select._is_network(net)


def test_same_data_mean_is_pooled(cv_select, tmp_path):
    data = make_idc_patches(n_patients=10, patches_per_patient=12, random_state=0)
    y, groups = data.target, np.asarray(data.groups).astype(str)
    reuse, out = tmp_path / "split_cv", tmp_path / "cv_select"
    for folder in (reuse, out):
        (folder / "predictions").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for k, (_, test) in enumerate(GroupKFold(5).split(y, y, groups)):
        common = {"y": y[test], "groups": groups[test]}
        np.savez(
            reuse / "predictions" / f"features-hgb-s0-f{k}-c60.npz",
            proba=rng.random(len(test)),
            **common,
        )
        np.savez(
            out / "predictions" / f"every-patch-s0-f{k}.npz",
            proba=rng.random(len(test)),
            proba_tta=rng.random(len(test)),
            **common,
        )
        np.savez(  # a baseline saves no test-time augmentation
            out / "predictions" / f"{SAME}-s0-f{k}.npz",
            proba=rng.random(len(test)),
            **common,
        )
        with open(reuse / "folds.jsonl", "a") as f:
            f.write(json.dumps({"model": "features-hgb", "seed": 0, "fold": k}) + "\n")
        with open(out / "folds.jsonl", "a") as f:
            for model in ("every-patch", SAME):
                f.write(json.dumps({"model": model, "seed": 0, "fold": k}) + "\n")
    pooled = cv_select.pooled_predictions(out, reuse)
    assert set(pooled) == {
        ("features-hgb", 0),
        ("every-patch", 0),
        ("every-patch+tta", 0),
        (SAME, 0),
    }
    made = cv_select.ensembles(pooled)
    for net in ("every-patch", "every-patch+tta"):
        _, y_mean, mean, g_mean = made[f"{net} & {SAME} (mean)", 0]
        assert np.array_equal(g_mean, pooled[SAME, 0][3])
        expected = (pooled[net, 0][2] + pooled[SAME, 0][2]) / 2
        np.testing.assert_allclose(mean, expected)
    assert (f"{SAME} & hgb (mean)", 0) not in made  # not a network
    text = cv_select._table(pooled)
    assert f"every-patch & {SAME} (mean)" in text


def test_neighbour_rows_choose_their_weight_on_the_other_folds(cv_select):
    rng = np.random.default_rng(0)
    n_patients, side = 10, 6
    groups = np.repeat([f"p{i}" for i in range(n_patients)], side * side)
    cells = np.arange(side * side)
    xy = np.tile(np.column_stack([50 * (cells % side), 50 * (cells // side)]), (10, 1))
    # IDC in a block of each slide; a noisy score that its neighbours clean up.
    y = ((xy[:, 0] < 150) & (xy[:, 1] < 150)).astype(int)
    proba = np.clip(0.5 + 0.3 * (y - 0.5) + rng.normal(0, 0.25, len(y)), 0, 1)
    fold = np.repeat(np.arange(5), len(y) // 5)
    smoothed, chosen = cv_select.with_neighbours(fold, y, proba, groups, xy, False)
    assert set(chosen) == set(range(5))
    for k, choice in chosen.items():
        weight = float(choice.split()[1])
        assert weight > 0  # the neighbours help here, and the folds see it
        rows = fold == k
        expected = cv_select.smooth_neighbours(proba, xy, groups, weight=weight)
        np.testing.assert_allclose(smoothed[rows], expected[rows])
    pooled = {
        ("features-hgb", 0): (fold, y, proba, groups),
        ("base", 0): (fold, y, np.clip(proba + 0.05, 0, 1), groups),
    }
    text = cv_select._table(pooled, coords=(xy, groups))
    for row in ("base & neighbours", "base per patient & neighbours"):
        assert f"| {row} " in text
    assert "features-hgb, same context" in text
    with pytest.raises(AssertionError):  # positions of other patients
        cv_select._table(pooled, coords=(xy, groups[::-1]))


def test_pooled_coords_follow_the_folds_held_out_order(cv_select, monkeypatch):
    data = make_idc_patches(n_patients=12, patches_per_patient=8, random_state=0)
    patients = sorted(set(data.groups.astype(str)))
    # Two patients outside the split's training and validation lists: left out.
    split = {"train": patients[:7], "val": patients[7:10], "test": patients[10:]}
    monkeypatch.setattr(cv_select, "load_shared", lambda cache: data)
    monkeypatch.setattr(cv_select, "read_patient_split", lambda path: split)
    xy, groups = cv_select.pooled_coords(Path("unused"))
    keep = np.isin(data.groups.astype(str), split["train"] + split["val"])
    y, g = data.target[keep], data.groups[keep].astype(str)
    frame = data.frame[keep].reset_index(drop=True)
    held_out = [test for _, test in GroupKFold(5).split(y, y, g)]
    order = np.concatenate(held_out)
    np.testing.assert_array_equal(groups, g[order])
    np.testing.assert_array_equal(xy, frame.loc[order, ["x", "y"]].to_numpy(float))
    assert len(xy) == keep.sum() < len(data.target)

"""make_idc_patches: shapes, dtypes, determinism, group structure, class balance."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import GroupKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from idc_sklearn import make_idc_patches
from idc_sklearn.datasets import _frame

FRAME_DTYPES = {
    "patient": "str",
    "x": "int64",
    "y": "int64",
    "target": "int64",
    "path": "str",
    "height": "int64",
    "width": "int64",
}


@pytest.fixture(scope="module")
def small():
    return make_idc_patches(
        n_patients=6, patches_per_patient=60, patch_size=16, random_state=0
    )


@pytest.fixture(scope="module")
def default():
    """The default dataset (20 patients x 200 patches of 50x50), made once."""
    return make_idc_patches(random_state=0)


def test_shapes_and_dtypes(small):
    assert small.data.shape == (360, 16, 16, 3)
    assert small.data.dtype == np.uint8
    assert small.target.shape == (360,) and small.target.dtype == np.int64
    assert set(np.unique(small.target)) == {0, 1}
    assert small.groups.shape == (360,) and small.groups.dtype == object
    assert small.skipped == []
    assert "Synthetic" in small.DESCR and "Janowczyk" in small.DESCR


def test_same_bunch_as_load_idc(small):
    assert set(small) == {"data", "target", "groups", "frame", "skipped", "DESCR"}
    assert list(small.frame.columns) == list(_frame.FRAME_COLUMNS)
    assert {c: str(t) for c, t in small.frame.dtypes.items()} == FRAME_DTYPES
    np.testing.assert_array_equal(small.frame["target"], small.target)
    np.testing.assert_array_equal(small.frame["patient"], small.groups)
    assert (small.frame["path"] == "").all()
    assert (small.frame[["height", "width"]] == 16).all().all()


def test_deterministic_for_a_random_state(small):
    again = make_idc_patches(
        n_patients=6, patches_per_patient=60, patch_size=16, random_state=0
    )
    np.testing.assert_array_equal(again.data, small.data)
    np.testing.assert_array_equal(again.target, small.target)
    pd.testing.assert_frame_equal(again.frame, small.frame)
    other = make_idc_patches(
        n_patients=6, patches_per_patient=60, patch_size=16, random_state=1
    )
    assert not np.array_equal(other.data, small.data)
    state = np.random.RandomState(0)
    from_state = make_idc_patches(
        n_patients=6, patches_per_patient=60, patch_size=16, random_state=state
    )
    np.testing.assert_array_equal(from_state.data, small.data)


def test_patients_and_their_slide_grids(small):
    ids = [f"synth{i:02d}" for i in range(6)]
    assert sorted(set(small.groups)) == ids
    assert all(isinstance(g, str) for g in small.groups)
    assert (pd.Series(small.groups).value_counts() == 60).all()
    frame = small.frame
    # Top-left corners on the archive's 50-pixel grid (1, 51, 101, ...), one patch
    # per grid cell, so a patient's slide can be rebuilt from its patches.
    assert ((frame[["x", "y"]] - 1) % 50 == 0).all().all()
    assert not frame.duplicated(["patient", "x", "y"]).any()
    many = make_idc_patches(
        n_patients=101, patches_per_patient=1, patch_size=8, random_state=0
    )
    assert many.groups[0] == "synth000" and many.groups[-1] == "synth100"


def _neighbour_agreement(frame: pd.DataFrame) -> float:
    """Fraction of an IDC patch's grid neighbours that are IDC too."""
    cells = {
        (p, x, y): t
        for p, x, y, t in frame[["patient", "x", "y", "target"]].itertuples(index=False)
    }
    agree = total = 0
    for (p, x, y), t in cells.items():
        if t != 1:
            continue
        for dx, dy in ((50, 0), (-50, 0), (0, 50), (0, -50)):
            if (p, x + dx, y + dy) in cells:
                agree += cells[(p, x + dx, y + dy)]
                total += 1
    return agree / total


def test_tumour_forms_coherent_blobs_and_patients_differ(default):
    frame = default.frame
    rate = default.target.mean()
    assert 0.22 < rate < 0.36
    # IDC neighbours IDC far more often than its overall rate: blobs, not noise.
    assert _neighbour_agreement(frame) > 2 * rate
    per_patient = frame.groupby("patient")["target"].mean()
    assert len(per_patient) == 20
    assert per_patient.std() > 0.05
    # Stain colour differs between patients.
    colour = pd.DataFrame(default.data.reshape(len(frame), -1, 3).mean(axis=1))
    spread = colour.groupby(frame["patient"].to_numpy()).mean().std()
    assert (spread > 4).all()


def test_positive_fraction_sets_the_class_balance():
    rates = [
        make_idc_patches(
            n_patients=10,
            patches_per_patient=100,
            positive_fraction=fraction,
            patch_size=8,
            random_state=0,
        ).target.mean()
        for fraction in (0.1, 0.5, 0.9)
    ]
    assert rates[0] < 0.2 and 0.4 < rates[1] < 0.6 and rates[2] > 0.8
    none = make_idc_patches(
        n_patients=4, patches_per_patient=50, positive_fraction=0, random_state=0
    )
    # Only the flipped labels (3%) are IDC.
    assert none.target.mean() < 0.08


def test_idc_patches_look_like_idc(default):
    # Crowded haematoxylin-dark nuclei: IDC patches are darker and bluer.
    pixels = default.data.reshape(len(default.target), -1, 3).astype(float)
    idc, other = default.target == 1, default.target == 0
    assert pixels[idc].mean() < pixels[other].mean() - 10
    blue_minus_red = pixels[..., 2].mean(1) - pixels[..., 0].mean(1)
    assert blue_minus_red[idc].mean() > blue_minus_red[other].mean()


def _colour_histogram(data: np.ndarray, bins: int = 16) -> np.ndarray:
    """16-bin histograms of R, G and B, and their means and standard deviations."""
    n = len(data)
    flat = data.reshape(n, -1, 3).astype(np.int64)
    parts = []
    for c in range(3):
        index = flat[:, :, c] * bins // 256 + bins * np.arange(n)[:, None]
        counts = np.bincount(index.ravel(), minlength=bins * n)
        parts.append(counts.reshape(n, bins) / flat.shape[1])
    return np.hstack([*parts, flat.mean(1) / 255, flat.std(1) / 255])


def test_colour_histograms_learn_something_but_stay_imperfect(default):
    # Per-patient stain variation and overlapping tissue keep colour alone well
    # short of perfect under patient-grouped cross-validation.
    model = make_pipeline(
        StandardScaler(), LogisticRegression(class_weight="balanced", max_iter=2000)
    )
    predicted = cross_val_predict(
        model,
        _colour_histogram(default.data),
        default.target,
        groups=default.groups,
        cv=GroupKFold(5),
    )
    score = balanced_accuracy_score(default.target, predicted)
    assert 0.65 < score < 0.85


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"n_patients": 0}, ValueError, r"'n_patients' .* range \[1, inf\)\. Got 0"),
        ({"n_patients": 2.0}, TypeError, r"'n_patients' .* an int .* Got 2.0"),
        ({"patches_per_patient": "9"}, TypeError, "'patches_per_patient' parameter"),
        ({"patch_size": 4}, ValueError, r"'patch_size' .* range \[8, inf\)\. Got 4"),
        ({"positive_fraction": 1.5}, ValueError, r"\[0.0, 1.0\]\. Got 1.5"),
        ({"positive_fraction": None}, ValueError, "'positive_fraction' parameter"),
    ],
)
def test_bad_arguments_name_argument_value_and_expectation(kwargs, error, match):
    with pytest.raises(error, match=match):
        make_idc_patches(**kwargs)

"""smooth_neighbours, and PatientPriorClassifier given the patches' positions: each
patch's probability mixed with its neighbours' on the same slide."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import FixedThresholdClassifier

from idc_sklearn import PatientPriorClassifier, adapt_to_patients, smooth_neighbours


def _brute_force(proba, coords, groups, weight, stride=50.0, radius=2):
    """The definition, one patch at a time."""
    grid = np.floor(np.asarray(coords, float) / stride + 0.5).astype(int)
    out = np.array(proba, dtype=float)
    for i in range(len(proba)):
        total = mass = 0.0
        for j in range(len(proba)):
            if j == i or groups[j] != groups[i]:
                continue
            dx, dy = grid[j] - grid[i]
            if abs(dx) <= radius and abs(dy) <= radius:
                w = np.exp(-(dx * dx + dy * dy) / 2)
                total += w * proba[j]
                mass += w
        if mass > 0:
            out[i] = (1 - weight) * proba[i] + weight * total / mass
    return out


def _patches(n=120, seed=0):
    """Archive-like positions (x = 1 + 50 k, as in ..._x1001_y1401_...) of three
    patients on overlapping grids, some positions given twice."""
    rng = np.random.default_rng(seed)
    coords = 1 + 50 * rng.integers(0, 8, size=(n, 2))
    groups = rng.choice(["8863", "10253", "9041"], size=n)
    return rng.random(n), coords, groups


@pytest.mark.parametrize("weight", [0.25, 0.75, 1.0])
@pytest.mark.parametrize("radius", [1, 2])
def test_matches_the_definition(weight, radius):
    proba, coords, groups = _patches()
    expected = _brute_force(proba, coords, groups, weight, radius=radius)
    got = smooth_neighbours(proba, coords, groups, weight=weight, radius=radius)
    np.testing.assert_allclose(got, expected)
    assert not np.allclose(got, proba)


def test_only_patches_of_the_same_group_are_neighbours():
    proba = np.array([0.9, 0.1])
    coords = np.array([[0, 0], [50, 0]])
    np.testing.assert_allclose(
        smooth_neighbours(proba, coords, ["a", "b"], weight=1.0), proba
    )
    np.testing.assert_allclose(smooth_neighbours(proba, coords, weight=1.0), [0.1, 0.9])


def test_lone_patches_and_weight_zero_keep_their_probability():
    proba, coords, groups = _patches()
    kept = smooth_neighbours(proba, coords, groups, weight=0.0)
    np.testing.assert_array_equal(kept, proba)
    assert kept is not proba
    far = np.array([[0, 0], [500, 0], [0, 500]])  # more than two steps apart
    # No patch with a neighbour at all: coords in other units than stride, most
    # likely (a slide's level-0 pixels with the archive's 50), and it says so.
    with pytest.warns(UserWarning, match="none of the 3 patches has a neighbour"):
        alone = smooth_neighbours([0.2, 0.6, 0.9], far, weight=1.0)
    np.testing.assert_array_equal(alone, [0.2, 0.6, 0.9])
    # One lone patch among neighbours is no reason to warn.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        some = smooth_neighbours([0.2, 0.6, 0.9], [[0, 0], [50, 0], [900, 0]])
    assert some[2] == 0.9 and some[0] != 0.2
    assert smooth_neighbours([], np.empty((0, 2))).shape == (0,)


def test_stride_sets_the_step():
    proba = np.array([0.9, 0.1])
    near = smooth_neighbours(proba, [[0, 0], [1, 0]], weight=1.0, stride=1)
    np.testing.assert_allclose(near, [0.1, 0.9])
    # One pixel apart at stride 50: the same position, neighbours at weight 1.
    same = smooth_neighbours(proba, [[0, 0], [1, 0]], weight=0.5)
    np.testing.assert_allclose(same, [0.5, 0.5])


@pytest.mark.parametrize(
    ("seed", "shift"), [(0, (0, 0)), (1, (3, -7)), (2, (-40, 40)), (3, (1000, 1))]
)
def test_a_shift_of_the_grid_or_an_order_of_the_patches_changes_nothing(seed, shift):
    proba, coords, groups = _patches(n=60, seed=seed)
    base = smooth_neighbours(proba, coords, groups)
    moved = smooth_neighbours(proba, coords + 50 * np.asarray(shift), groups)
    np.testing.assert_allclose(moved, base)
    order = np.random.default_rng(seed).permutation(len(proba))
    shuffled = smooth_neighbours(proba[order], coords[order], groups[order])
    np.testing.assert_allclose(shuffled, base[order])


def test_positions_on_a_half_stride_lattice_are_not_merged():
    # Patch centres (25, 75, 125, ...) lie halfway between steps: each must stay
    # its own step, as its corner would (np.rint's ties-to-even merged 25 and 75).
    proba = np.array([0.9, 0.1, 0.1, 0.1])
    corners = np.array([[0, 0], [50, 0], [100, 0], [150, 0]], dtype=float)
    expected = smooth_neighbours(proba, corners, weight=0.5)
    for offset in (25.0, 1025.0, -25.0, 24.99):
        got = smooth_neighbours(proba, corners + offset, weight=0.5)
        np.testing.assert_allclose(got, expected, err_msg=str(offset))


def test_missing_positions_are_named_as_missing():
    import pandas as pd

    frame = pd.DataFrame({"x": pd.array([0, 50, None], dtype="Int64"), "y": [0, 0, 0]})
    with pytest.raises(
        ValueError, match="coords must be finite positions; got missing values"
    ):
        smooth_neighbours([0.2, 0.4, 0.6], frame)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"proba": [[0.2, 0.8]]}, r"proba must be one probability .* shape \(1, 2\)"),
        ({"proba": [0.2, 1.5]}, r"values outside \[0, 1\] or NaN"),
        ({"coords": [[0, 0]]}, r"coords must be .* shape \(2, 2\); got shape \(1, 2\)"),
        ({"coords": [[0, 0], [0, np.nan]]}, r"coords must be finite .* got 1 NaN"),
        ({"coords": [["a", "b"], ["c", "d"]]}, r"coords must be .* not numeric"),
        ({"groups": ["a"]}, r"groups must hold one patient id .* shape \(2,\)"),
        ({"weight": 1.5}, r"neighbour_weight must be .* in \[0, 1\]; got 1.5"),
        ({"weight": True}, r"neighbour_weight must be .* got True"),
        ({"stride": 0}, r"stride must be .* > 0; got 0"),
        ({"radius": 0}, r"radius must be .* in \[1, 10\]; got 0"),
        ({"radius": 2.0}, r"radius must be .* got 2.0"),
        (
            {"coords": [[0, 0], [1e15, 1e15]], "stride": 1},
            r"coords span .* too wide a grid; is stride in the units of coords\?",
        ),
    ],
)
def test_bad_input_names_the_argument(kwargs, match):
    arguments = {"proba": [0.2, 0.8], "coords": [[0, 0], [50, 0]], **kwargs}
    proba, coords = arguments.pop("proba"), arguments.pop("coords")
    with pytest.raises(ValueError, match=match):
        smooth_neighbours(proba, coords, **arguments)


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = (X[:, 0] + rng.normal(scale=0.5, size=200) > 0.8).astype(int)
    groups = np.repeat(["a", "b"], 100)
    coords = np.column_stack([50 * (np.arange(200) % 10), 50 * (np.arange(200) // 10)])
    inner = FixedThresholdClassifier(
        LogisticRegression(class_weight="balanced"), threshold=0.6
    ).fit(X, y)
    return X, y, groups, coords, inner


def test_the_classifier_mixes_neighbours_then_adapts_each_patient(fitted):
    X, y, groups, coords, inner = fitted
    model = PatientPriorClassifier(
        FrozenEstimator(inner), strength=30, neighbour_weight=0.5
    ).fit(X, y)
    proba = inner.predict_proba(X)[:, 1]
    smoothed = smooth_neighbours(proba, coords, groups, weight=0.5)
    expected = adapt_to_patients(smoothed, groups, strength=30)
    got = model.predict_proba(X, groups=groups, coords=coords)
    np.testing.assert_allclose(got[:, 1], expected)
    np.testing.assert_allclose(got.sum(axis=1), 1)
    np.testing.assert_allclose(
        model.adapt_proba(proba, groups, coords=coords), expected
    )
    np.testing.assert_array_equal(
        model.predict(X, groups=groups, coords=coords), (expected > 0.5).astype(int)
    )
    # Positions alone: one slide's neighbours, no share; at 0.5, not 0.6.
    alone = smooth_neighbours(proba, coords, weight=0.5)
    np.testing.assert_allclose(model.predict_proba(X, coords=coords)[:, 1], alone)
    np.testing.assert_array_equal(
        model.predict(X, coords=coords), (alone > 0.5).astype(int)
    )


def test_without_a_neighbours_weight_the_positions_are_ignored(fitted):
    X, y, groups, coords, inner = fitted
    model = PatientPriorClassifier(FrozenEstimator(inner), strength=30).fit(X, y)
    np.testing.assert_array_equal(
        model.predict_proba(X, groups=groups, coords=coords),
        model.predict_proba(X, groups=groups),
    )
    # Its threshold too: nothing is adapted, so it is the wrapped model's (0.6).
    np.testing.assert_array_equal(model.predict(X, coords=coords), inner.predict(X))


def test_the_classifier_refuses_bad_positions_and_weights(fitted):
    X, y, groups, coords, inner = fitted
    model = PatientPriorClassifier(FrozenEstimator(inner), neighbour_weight=0.5)
    model.fit(X, y)
    with pytest.raises(ValueError, match=r"coords must be .* shape \(200, 2\)"):
        model.predict_proba(X, groups=groups, coords=coords[:5])
    with pytest.raises(ValueError, match="neighbour_weight must be .* got -0.1"):
        PatientPriorClassifier(LogisticRegression(), neighbour_weight=-0.1).fit(X, y)
    with pytest.raises(ValueError, match="stride must be .* got 0"):
        PatientPriorClassifier(LogisticRegression(), stride=0).fit(X, y)


def test_patient_shares_are_those_predict_adapts_to(fitted):
    X, y, groups, coords, inner = fitted
    model = PatientPriorClassifier(
        FrozenEstimator(inner), strength=30, neighbour_weight=0.5
    ).fit(X, y)
    proba = inner.predict_proba(X)[:, 1]
    _, shares = model.adapt_proba(proba, groups, coords=coords, return_shares=True)
    assert model.patient_shares(X, groups, coords=coords) == shares
    # Without the positions, the shares of the unsmoothed probabilities.
    assert model.patient_shares(X, groups) != shares


@pytest.mark.parametrize("missing", [None, np.nan])
def test_a_missing_patient_is_refused(fitted, missing):
    X, y, groups, coords, inner = fitted
    model = PatientPriorClassifier(FrozenEstimator(inner), neighbour_weight=0.5)
    model.fit(X, y)
    holed = groups.astype(object) if missing is None else np.arange(200.0)
    holed[7] = missing
    with pytest.raises(
        ValueError, match="groups holds 1 missing patient id .* the first at patch 7"
    ):
        model.predict_proba(X, groups=holed, coords=coords)

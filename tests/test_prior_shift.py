"""adapt_to_patients and PatientPriorClassifier: each patient's own IDC share,
estimated from its patches by EM, in the probabilities (label shift per patient)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit, logit
from sklearn.base import clone
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import FixedThresholdClassifier
from sklearn.svm import LinearSVC
from sklearn.utils.estimator_checks import parametrize_with_checks

from idc_sklearn import PatientPriorClassifier, adapt_to_patients


def _label_shift(shares, n=4000, seed=0):
    """Patients of the given IDC shares; each patch's score is the calibrated
    probability of IDC at a 50/50 prior (Gaussian classes one unit apart)."""
    rng = np.random.default_rng(seed)
    proba, y, groups = [], [], []
    for i, share in enumerate(shares):
        labels = (rng.random(n) < share).astype(int)
        x = rng.normal(labels - 0.5, 1.0)
        proba.append(expit(x))  # log-likelihood ratio of N(0.5, 1) to N(-0.5, 1)
        y.append(labels)
        groups.append(np.full(n, f"p{i}"))
    return np.concatenate(proba), np.concatenate(y), np.concatenate(groups)


def test_em_recovers_each_patients_share():
    shares = [0.02, 0.3, 0.5, 0.9]
    proba, y, groups = _label_shift(shares)
    adapted, found = adapt_to_patients(proba, groups, strength=0, return_priors=True)
    for i, share in enumerate(shares):
        actual = y[groups == f"p{i}"].mean()
        assert found[f"p{i}"] == pytest.approx(actual, abs=0.04), (share, actual)
    # The fixed point: each share is its patient's mean adapted probability.
    for patient, share in found.items():
        assert adapted[groups == patient].mean() == pytest.approx(share, abs=1e-4)


def test_the_adapted_calls_beat_the_unadapted_ones_under_label_shift():
    proba, y, groups = _label_shift([0.01, 0.05, 0.6, 0.95])
    adapted = adapt_to_patients(proba, groups, strength=100)
    # A pooled error count: fewer calls go wrong once each patient's share is in.
    assert np.mean((adapted > 0.5) != y) < np.mean((proba > 0.5) != y) - 0.05


def test_each_patient_is_shifted_alone_and_in_order():
    proba, _, groups = _label_shift([0.1, 0.7], n=300)
    adapted = adapt_to_patients(proba, groups)
    for patient in ("p0", "p1"):
        rows = groups == patient
        alone = adapt_to_patients(proba[rows], groups[rows])
        # EM stops when every patient's share moves by under tol (1e-6).
        np.testing.assert_allclose(adapted[rows], alone, atol=1e-5)
        # One shift of the log-odds per patient: the ranking inside it is kept.
        shift = logit(adapted[rows]) - logit(proba[rows])
        np.testing.assert_allclose(shift, shift[0], atol=1e-6)
    assert np.all(logit(adapted[groups == "p0"]) < logit(proba[groups == "p0"]))
    assert np.all(logit(adapted[groups == "p1"]) > logit(proba[groups == "p1"]))
    order = np.random.default_rng(1).permutation(len(proba))
    np.testing.assert_allclose(
        adapt_to_patients(proba[order], groups[order]), adapted[order], atol=1e-9
    )


def test_strength_pulls_towards_the_training_share():
    proba, _, groups = _label_shift([0.05], n=200)
    found = [
        adapt_to_patients(proba, groups, strength=s, return_priors=True)[1]["p0"]
        for s in (0, 30, 300, 3000)
    ]
    assert found == sorted(found) and found[-1] < 0.5
    unchanged = adapt_to_patients(proba, groups, strength=np.inf)
    np.testing.assert_array_equal(unchanged, proba)
    assert unchanged is not proba  # the caller's array is never changed


def test_the_training_share_is_the_neutral_point():
    # Probabilities trained at a 30% share: a patient whose share is 30% moves
    # little; the same scores read at 50% move more.
    proba, _, groups = _label_shift([0.3], n=4000)
    at_30 = expit(logit(proba) + logit(0.3))
    _, found = adapt_to_patients(at_30, groups, train_prior=0.3, return_priors=True)
    assert found["p0"] == pytest.approx(0.3, abs=0.04)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"proba": [[0.2, 0.8]]}, "proba must be one probability .* shape \\(1, 2\\)"),
        ({"proba": [0.2, 1.5]}, "values outside \\[0, 1\\] or NaN"),
        ({"proba": [0.2, np.nan]}, "values outside \\[0, 1\\] or NaN"),
        (
            {"groups": ["a"]},
            "groups must hold one patient id .* shape \\(2,\\)",
        ),
        ({"groups": None}, "groups must hold .* got None"),
        (
            {"train_prior": 1.0},
            "train_prior must be .* between 0 and 1; got 1.0",
        ),
        ({"train_prior": True}, "train_prior must be .* got True"),
        ({"strength": -1}, "strength must be .* >= 0 .* got -1"),
        ({"strength": np.nan}, "strength must be .* got nan"),
        ({"max_iter": 0}, "max_iter must be an int >= 1; got 0"),
        ({"tol": -1e-3}, "tol must be a float >= 0; got -0.001"),
    ],
)
def test_bad_input_names_the_argument(kwargs, match):
    arguments = {"proba": [0.2, 0.8], "groups": ["a", "a"], **kwargs}
    proba, groups = arguments.pop("proba"), arguments.pop("groups")
    with pytest.raises(ValueError, match=match):
        adapt_to_patients(proba, groups, **arguments)


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 3))
    y = (X[:, 0] + rng.normal(scale=0.5, size=400) > 0.8).astype(int)
    groups = np.repeat(["a", "b", "c", "d"], 100)
    inner = FixedThresholdClassifier(
        LogisticRegression(class_weight="balanced"), threshold=0.6
    ).fit(X, y)
    return X, y, groups, inner


def test_without_groups_it_is_the_wrapped_model(fitted):
    X, y, _, inner = fitted
    model = PatientPriorClassifier(FrozenEstimator(inner)).fit(X, y)
    np.testing.assert_array_equal(model.predict(X), inner.predict(X))
    np.testing.assert_array_equal(model.predict_proba(X), inner.predict_proba(X))
    assert model.classes_.tolist() == [0, 1]


def test_with_groups_it_adapts_per_patient(fitted):
    X, y, groups, inner = fitted
    model = PatientPriorClassifier(FrozenEstimator(inner), strength=30).fit(X, y)
    proba = model.predict_proba(X, groups=groups)
    expected = adapt_to_patients(inner.predict_proba(X)[:, 1], groups, strength=30)
    np.testing.assert_allclose(proba[:, 1], expected)
    np.testing.assert_allclose(proba.sum(axis=1), 1)
    # Probabilities computed elsewhere (in batches, over a slide), adapted alike.
    np.testing.assert_allclose(
        model.adapt_proba(inner.predict_proba(X)[:, 1], groups), expected
    )
    np.testing.assert_array_equal(
        model.predict(X, groups=groups), (expected > 0.5).astype(int)
    )
    shares = model.patient_shares(X, groups)
    _, expected_shares = adapt_to_patients(
        inner.predict_proba(X)[:, 1], groups, strength=30, return_priors=True
    )
    assert shares == expected_shares and sorted(shares) == ["a", "b", "c", "d"]
    assert not hasattr(model, "priors_")  # predicting leaves the model as it was
    with pytest.raises(ValueError, match="groups must hold .* got None"):
        model.patient_shares(X, None)
    with pytest.raises(ValueError, match="groups must hold one patient id per patch"):
        model.predict(X, groups=groups[:5])


def test_fit_fits_a_clone(fitted):
    X, y, _, _ = fitted
    estimator = LogisticRegression()
    model = PatientPriorClassifier(estimator, strength=10).fit(X, y)
    assert model.estimator_ is not estimator and not hasattr(estimator, "coef_")
    assert clone(model).get_params()["strength"] == 10


def test_refuses_what_it_cannot_adapt(fitted):
    X, y, _, _ = fitted
    with pytest.raises(TypeError, match="estimator must have predict_proba.*LinearSVC"):
        PatientPriorClassifier(LinearSVC()).fit(X, y)
    three = np.arange(len(y)) % 3
    with pytest.raises(ValueError, match="Only binary classification .* multiclass"):
        PatientPriorClassifier(LogisticRegression()).fit(X, three)
    # A fitted estimator of three classes, frozen, under binary labels.
    frozen = FrozenEstimator(LogisticRegression().fit(X, three))
    with pytest.raises(ValueError, match="estimator has classes \\[0, 1, 2\\]"):
        PatientPriorClassifier(frozen).fit(X, y)
    with pytest.raises(ValueError, match="strength must be"):
        PatientPriorClassifier(LogisticRegression(), strength=-2).fit(X, y)


@parametrize_with_checks([PatientPriorClassifier(LogisticRegression())])
def test_sklearn_checks(estimator, check):
    """scikit-learn's own checks, with a LogisticRegression inside (binary only:
    its tags say so, and multiclass targets are refused with sklearn's message)."""
    check(estimator)


def test_fit_hands_the_patients_to_a_fit_that_takes_them():
    # The library's CNNs split their validation patches by patient with groups;
    # a model whose fit takes none is fitted without them.
    seen = {}

    class TakesGroups(LogisticRegression):
        def fit(self, X, y, groups=None):
            seen["groups"] = groups
            return super().fit(X, y)

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 3)), np.arange(40) % 2
    groups = np.repeat(["a", "b", "c", "d"], 10)
    PatientPriorClassifier(TakesGroups()).fit(X, y, groups=groups)
    np.testing.assert_array_equal(seen["groups"], groups)
    # LogisticRegression.fit takes no groups: they are not passed, not an error.
    model = PatientPriorClassifier(LogisticRegression()).fit(X, y, groups=groups)
    assert model.predict_proba(X, groups=groups).shape == (40, 2)

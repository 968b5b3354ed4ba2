"""Tests of idc_sklearn.metrics: the scorers, patient_scores and paired_bootstrap."""

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    average_precision_score,
    balanced_accuracy_score,
    f1_score,
    roc_auc_score,
)
from sklearn.model_selection import GridSearchCV, cross_validate
from sklearn.svm import SVC

from idc_sklearn.metrics import (
    SCORING,
    paired_bootstrap,
    patient_predictions,
    patient_scores,
)


class _FixedProba(ClassifierMixin, BaseEstimator):
    """Classifier whose IDC probability for sample i is ``scores[X[i, 0]]``."""

    def __init__(self, scores=None):
        self.scores = scores

    def fit(self, X, y):
        self.classes_ = np.array([0, 1])
        return self

    def _score(self, X):
        return np.asarray(self.scores)[np.asarray(X)[:, 0].astype(int)]

    def predict(self, X):
        return (self._score(X) > 0.5).astype(int)

    def predict_proba(self, X):
        p = self._score(X)
        return np.column_stack([1 - p, p])


class _FixedMargin(_FixedProba):
    """Adds a margin, and inverts the probabilities to show the margin is used."""

    def decision_function(self, X):
        return self._score(X) - 0.5

    def predict_proba(self, X):
        return super().predict_proba(X)[:, ::-1]


# Six patches, two of them IDC. With threshold 0.5 the predictions are
# [0, 1, 0, 0, 1, 0]: TP = 1 (#4), FN = 1 (#5), FP = 1 (#1), TN = 3.
Y6 = np.array([0, 0, 0, 0, 1, 1])
S6 = np.array([0.1, 0.7, 0.2, 0.3, 0.8, 0.4])
X6 = np.arange(6).reshape(-1, 1)
EXPECTED6 = {
    # recall of IDC 1/2, recall of non-IDC 3/4
    "balanced_accuracy": (1 / 2 + 3 / 4) / 2,
    # precision 1/2, recall 1/2
    "f1_idc": 1 / 2,
    # F1 of class 0: precision 3/4, recall 3/4 -> 3/4; weights 4 and 2
    "f1_weighted": (4 * 3 / 4 + 2 * 1 / 2) / 6,
    # IDC 0.8 beats all 4 negatives, 0.4 beats 3 of them (not 0.7)
    "roc_auc": 7 / 8,
    # ranked 0.8 (IDC), 0.7, 0.4 (IDC): recall steps of 1/2 at precision 1 and 2/3
    "average_precision": 1 / 2 * 1 + 1 / 2 * 2 / 3,
}


@pytest.mark.parametrize("model_class", [_FixedProba, _FixedMargin])
@pytest.mark.parametrize("metric", sorted(EXPECTED6))
def test_scorers_match_hand_computed_values(metric, model_class):
    model = model_class(scores=S6).fit(X6, Y6)
    assert SCORING[metric](model, X6, Y6) == pytest.approx(EXPECTED6[metric])


def test_scoring_keys():
    assert set(SCORING) == {
        "balanced_accuracy",
        "f1_idc",
        "f1_weighted",
        "roc_auc",
        "average_precision",
    }


def test_grid_search_with_scoring_refits_on_balanced_accuracy():
    X, y = make_classification(
        n_samples=120, n_features=6, weights=[0.7], random_state=0
    )
    search = GridSearchCV(
        LogisticRegression(class_weight="balanced"),
        {"C": [0.01, 1.0]},
        scoring=SCORING,
        refit="balanced_accuracy",
        cv=3,
    ).fit(X, y)
    for name in SCORING:
        scores = search.cv_results_[f"mean_test_{name}"]
        assert np.isfinite(scores).all() and (scores > 0.5).all()
    best = np.argmax(search.cv_results_["mean_test_balanced_accuracy"])
    assert search.best_index_ == best
    assert search.predict(X).shape == (120,)


def test_ranking_scorers_use_decision_function_of_svc():
    X, y = make_classification(n_samples=90, n_features=4, random_state=1)
    results = cross_validate(SVC(), X, y, scoring=SCORING, cv=3)
    assert np.isfinite(results["test_roc_auc"]).all()
    assert np.isfinite(results["test_average_precision"]).all()


# Nine patches of four patients.
#   a: two classes;   y [0 1 1 0], score [.2 .9 .4 .6] -> pred [0 1 0 1]
#   b: no IDC;        y [0 0],     score [.1 .7]       -> pred [0 1] (a false positive)
#   c: only IDC;      y [1 1],     score [.8 .3]       -> pred [1 0]
#   d: no IDC;        y [0],       score [.2]          -> pred [0] (F1 of IDC is 0/0)
Y9 = [0, 1, 1, 0, 0, 0, 1, 1, 0]
S9 = [0.2, 0.9, 0.4, 0.6, 0.1, 0.7, 0.8, 0.3, 0.2]
G9 = ["a", "a", "a", "a", "b", "b", "c", "c", "d"]
NAN = np.nan
EXPECTED9 = pd.DataFrame(
    {
        # n_patches, n_idc, balanced_accuracy, f1_idc, f1_weighted, roc_auc, AP
        "a": [4, 2, 0.5, 0.5, 0.5, 3 / 4, 1 / 2 + 1 / 2 * 2 / 3],
        # one class: balanced accuracy is the recall of class 0; F1 of class 0 is
        # 2 * 1 / (2 * 1 + 0 + 1)
        "b": [2, 0, 0.5, 0.0, 2 / 3, NAN, NAN],
        "c": [2, 2, 0.5, 2 / 3, 2 / 3, NAN, 1.0],
        "d": [1, 0, 1.0, NAN, 1.0, NAN, NAN],
        "mean": [
            9 / 4,
            1.0,
            (0.5 + 0.5 + 0.5 + 1.0) / 4,
            (0.5 + 0.0 + 2 / 3) / 3,
            (0.5 + 2 / 3 + 2 / 3 + 1.0) / 4,
            3 / 4,
            (5 / 6 + 1.0) / 2,
        ],
        # pooled: TP 2, FN 2, FP 2, TN 3; IDC scores .9 .8 beat all 5 negatives,
        # .4 and .3 beat 3 each; ranked P P N N P P N N N
        "pooled": [
            9,
            4,
            (2 / 4 + 3 / 5) / 2,
            2 * 2 / (2 * 2 + 2 + 2),
            (5 * (2 * 3 / (2 * 3 + 2 + 2)) + 4 * 0.5) / 9,
            16 / 20,
            1 / 4 + 1 / 4 + 1 / 4 * 3 / 5 + 1 / 4 * 4 / 6,
        ],
    },
    index=[
        "n_patches",
        "n_idc",
        "balanced_accuracy",
        "f1_idc",
        "f1_weighted",
        "roc_auc",
        "average_precision",
    ],
).T


def test_patient_scores_hand_example_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = patient_scores(Y9, S9, G9)
    assert table.index.tolist() == ["a", "b", "c", "d", "mean", "pooled"]
    assert table.index.name == "patient"
    assert table.columns.tolist() == EXPECTED9.columns.tolist()
    pd.testing.assert_frame_equal(
        table, EXPECTED9, check_names=False, check_dtype=False
    )


def test_patient_scores_predict_proba_input_and_threshold():
    proba = np.column_stack([1 - np.array(S9), S9])
    pd.testing.assert_frame_equal(
        patient_scores(Y9, proba, G9), patient_scores(Y9, S9, G9)
    )
    margins = np.array(S9) - 0.5
    pd.testing.assert_frame_equal(
        patient_scores(Y9, margins, G9, threshold=0.0), patient_scores(Y9, S9, G9)
    )
    everything_idc = patient_scores(Y9, S9, G9, threshold=0.0)
    assert everything_idc.loc["pooled", "balanced_accuracy"] == 0.5


def test_patient_ids_become_strings_in_their_own_order():
    table = patient_scores([0, 1, 0, 1], [0.1, 0.9, 0.2, 0.8], [10, 10, 2, 2])
    assert table.index.tolist() == ["2", "10", "mean", "pooled"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"y_score": S9[:-1]}, "y_score has 8 entries but y_true has 9"),
        ({"groups": G9[:-1]}, "groups has 8 entries but y_true has 9"),
        ({"y_true": [2] * 9}, "y_true must hold the labels 0"),
        ({"y_true": ["no"] * 9}, "y_true must hold the labels 0"),
        ({"y_score": np.ones((9, 3))}, r"y_score must be .* shape \(9, 3\)"),
        ({"y_score": [NAN] * 9}, "y_score contains NaN"),
        ({"groups": ["mean"] * 9}, "groups must hold patient ids"),
        ({"groups": [None] * 9}, "groups contains a missing patient id"),
        ({"threshold": "high"}, "threshold must be a finite number"),
    ],
)
def test_patient_scores_errors_name_the_argument(kwargs, match):
    arguments = {"y_true": Y9, "y_score": S9, "groups": G9, **kwargs}
    with pytest.raises(ValueError, match=match):
        patient_scores(**arguments)


# paired_bootstrap

SKLEARN_METRICS = {
    "balanced_accuracy": balanced_accuracy_score,
    "f1_idc": f1_score,
    "f1_weighted": lambda y, pred: f1_score(y, pred, average="weighted"),
    "roc_auc": roc_auc_score,
    "average_precision": average_precision_score,
}
TRUE_GAIN = 0.1


def clustered(seed, n_patients=30, per_class=10):
    """Two models whose accuracy gap varies by patient, 0.1 in the population.

    Each patient has 10 patches of each class. Model b errs on a patch with the
    patient's error rate in [0.35, 0.5]; model a errs ``gain`` less, with ``gain``
    uniform in [-0.15, 0.35] per patient, so the expected balanced accuracy of a
    exceeds b's by exactly 0.1, while the patients of one sample differ.
    """
    rng = np.random.default_rng(seed)
    error_b = rng.uniform(0.35, 0.5, n_patients)
    gain = rng.uniform(-0.15, 0.35, n_patients)
    groups = np.repeat(np.arange(n_patients), 2 * per_class)
    y = np.tile(np.repeat([0, 1], per_class), n_patients)
    chance = rng.random(len(y))
    pred_a = np.where(chance < (error_b - gain)[groups], 1 - y, y)
    pred_b = np.where(chance < error_b[groups], 1 - y, y)
    return y, pred_a, pred_b, groups


def scored(seed, n=240, n_patients=12):
    """Labels, tied scores of two models and labels from them."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    score_a = np.round(0.6 * rng.random(n) + 0.4 * y, 1)
    score_b = np.round(rng.random(n), 2)
    groups = rng.integers(0, n_patients, n)
    return y, score_a, score_b, groups


@pytest.mark.parametrize("metric", sorted(SKLEARN_METRICS))
def test_bootstrap_named_metrics_equal_sklearn_on_every_resample(metric):
    y, score_a, score_b, groups = scored(0)
    if metric in ("roc_auc", "average_precision"):
        pred_a, pred_b = score_a, score_b
    else:
        pred_a, pred_b = (score_a > 0.5).astype(int), (score_b > 0.5).astype(int)
    function = SKLEARN_METRICS[metric]
    fast = paired_bootstrap(y, pred_a, pred_b, groups, metric=metric, n_resamples=60)
    # A callable is scored on each resample's repeated patches: the same draws.
    slow = paired_bootstrap(y, pred_a, pred_b, groups, metric=function, n_resamples=60)
    assert fast["difference"] == pytest.approx(
        function(y, pred_a) - function(y, pred_b), abs=1e-12
    )
    for key in ("difference", "low", "high"):
        assert fast[key] == pytest.approx(slow[key], abs=1e-12)
    assert fast["n_patients"] == 12 and fast["n_resamples"] == 60


def test_bootstrap_interval_contains_the_known_difference():
    result = paired_bootstrap(*clustered(0))
    assert result["low"] < TRUE_GAIN < result["high"]
    assert result["low"] > 0, "30 patients of this sample show a clear lead"
    assert result["n_patients"] == 30 and result["n_resamples"] == 2000


def test_bootstrap_by_patient_covers_what_by_patch_misses():
    covered = {"patient": 0, "patch": 0}
    wider = 0
    n_samples = 60
    for seed in range(n_samples):
        y, pred_a, pred_b, groups = clustered(seed)
        by_patient = paired_bootstrap(y, pred_a, pred_b, groups, n_resamples=500)
        by_patch = paired_bootstrap(
            y, pred_a, pred_b, np.arange(len(y)), n_resamples=500
        )
        for name, result in (("patient", by_patient), ("patch", by_patch)):
            covered[name] += result["low"] <= TRUE_GAIN <= result["high"]
        wider += (by_patient["high"] - by_patient["low"]) > (
            by_patch["high"] - by_patch["low"]
        )
    # About 0.95 by patient and 0.7 by patch (0.955 and 0.685 over 200 samples).
    assert covered["patient"] / n_samples >= 0.88
    assert covered["patch"] / n_samples <= 0.8
    assert wider == n_samples


@pytest.mark.parametrize("metric", sorted(SKLEARN_METRICS))
def test_bootstrap_of_identical_predictions_is_zero(metric):
    y, score, _, groups = scored(1)
    pred = score if metric in ("roc_auc", "average_precision") else score > 0.5
    result = paired_bootstrap(y, pred.astype(float), pred, groups, metric=metric)
    assert (result["difference"], result["low"], result["high"]) == (0.0, 0.0, 0.0)


def test_bootstrap_seeds_reproduce():
    data = clustered(3)
    first = paired_bootstrap(*data, random_state=7, n_resamples=300)
    assert paired_bootstrap(*data, random_state=7, n_resamples=300) == first
    generator = paired_bootstrap(
        *data, random_state=np.random.default_rng(7), n_resamples=300
    )
    assert generator == first
    other = paired_bootstrap(*data, random_state=8, n_resamples=300)
    assert other["difference"] == first["difference"]
    assert (other["low"], other["high"]) != (first["low"], first["high"])


def test_bootstrap_redraws_resamples_lacking_a_class():
    # Only patient 0 has IDC patches: a third of the resamples miss it.
    groups = np.repeat(np.arange(10), 4)
    y = np.where(groups == 0, 1, 0)
    pred_a = y.copy()
    pred_b = np.where(np.arange(40) % 4 == 0, 1 - y, y)
    result = paired_bootstrap(y, pred_a, pred_b, groups, n_resamples=500)
    assert 100 < result["n_redrawn"] < 400
    assert np.isfinite([result["low"], result["high"]]).all()
    assert result["n_resamples"] == 500


def test_bootstrap_confidence_level_narrows_the_interval():
    data = clustered(4)
    wide = paired_bootstrap(*data, confidence_level=0.99)
    narrow = paired_bootstrap(*data, confidence_level=0.5)
    assert wide["low"] < narrow["low"] < narrow["high"] < wide["high"]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"metric": "accuracy"}, ValueError, "metric must be one of"),
        ({"pred_a": S9}, ValueError, "pred_a must hold predicted labels 0 and 1"),
        ({"pred_b": [0] * 8}, ValueError, "pred_b has 8 entries but y_true has 9"),
        ({"groups": G9[:-1]}, ValueError, "groups has 8 entries"),
        ({"groups": [None] * 9}, ValueError, "groups contains a missing"),
        ({"groups": ["a"] * 9}, ValueError, "groups holds 1 patient"),
        ({"y_true": [0] * 9}, ValueError, "y_true must hold both IDC"),
        ({"y_true": [2] * 9}, ValueError, "y_true must hold the labels 0"),
        ({"n_resamples": 0}, ValueError, "n_resamples must be at least 1"),
        ({"n_resamples": 10.0}, TypeError, "n_resamples must be an integer"),
        ({"confidence_level": 95}, ValueError, r"confidence_level must be .* \(0, 1\)"),
        ({"metric": "roc_auc", "pred_a": [NAN] * 9}, ValueError, "y_score contains"),
    ],
)
def test_bootstrap_errors_name_the_argument(kwargs, error, match):
    labels = (np.array(S9) > 0.5).astype(int)
    arguments = {"y_true": Y9, "pred_a": labels, "pred_b": labels, "groups": G9}
    with pytest.raises(error, match=match):
        paired_bootstrap(**{**arguments, **kwargs})


# patient_predictions: three patients, the second (ids sort numerically) with no IDC.
PP_SCORE = np.array([0.9, 0.7, 0.2, 0.45, 0.3, 0.1, 0.6, 0.55, 0.52, 0.0])
PP_TRUE = np.array([1, 1, 0, 0, 0, 0, 1, 1, 0, 0])
PP_GROUPS = np.array([7, 7, 7, 3, 3, 3, 12, 12, 12, 12])


@pytest.mark.parametrize(
    "method, scores, y_pred",
    [
        # patients 3, 7, 12 in that order
        ("mean", [0.85 / 3, 1.8 / 3, 1.67 / 4], [0, 1, 0]),
        ("median", [0.3, 0.7, 0.535], [0, 1, 1]),
        ("fraction", [0.0, 2 / 3, 3 / 4], [0, 1, 1]),
    ],
)
def test_patient_predictions_by_hand(method, scores, y_pred):
    table = patient_predictions(PP_SCORE, PP_GROUPS, y_true=PP_TRUE, method=method)
    assert table.index.tolist() == ["3", "7", "12"]
    assert table.index.name == "patient"
    np.testing.assert_allclose(table["score"], scores)
    assert table["y_pred"].tolist() == y_pred
    assert table["n_patches"].tolist() == [3, 3, 4]
    assert table["n_idc"].tolist() == [0, 2, 2]
    np.testing.assert_allclose(table["idc_fraction"], [0, 2 / 3, 1 / 2])
    # True label: more than half the patches IDC; patient 12 has exactly half.
    assert table["y_true"].tolist() == [0, 1, 0]


def test_patient_predictions_fraction_zero_means_any_patch():
    table = patient_predictions(
        PP_SCORE, PP_GROUPS, y_true=PP_TRUE, method="fraction", fraction=0.0
    )
    assert table["y_true"].tolist() == [0, 1, 1]
    assert table["y_pred"].tolist() == [0, 1, 1]
    # A patient with one patch just above the patch threshold is called IDC.
    lone = patient_predictions([0.51, 0.1], ["a", "a"], method="fraction", fraction=0)
    assert lone["y_pred"].tolist() == [1]


def test_patient_predictions_agrees_with_patient_scores_and_proba():
    proba = np.column_stack([1 - PP_SCORE, PP_SCORE])
    by_proba = patient_predictions(proba, PP_GROUPS, y_true=PP_TRUE)
    pd.testing.assert_frame_equal(
        by_proba, patient_predictions(PP_SCORE, PP_GROUPS, y_true=PP_TRUE)
    )
    scores = patient_scores(PP_TRUE, PP_SCORE, PP_GROUPS)
    pd.testing.assert_index_equal(by_proba.index, scores.index[:-2], check_names=True)
    np.testing.assert_array_equal(by_proba["n_patches"], scores["n_patches"][:-2])
    # Margins with threshold 0 give the same calls as probabilities at 0.5.
    margins = patient_predictions(
        PP_SCORE - 0.5, PP_GROUPS, method="fraction", threshold=0.0
    )
    fractions = patient_predictions(PP_SCORE, PP_GROUPS, method="fraction")
    pd.testing.assert_frame_equal(margins, fractions)
    assert list(fractions.columns) == ["n_patches", "score", "y_pred"]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"method": "max"}, "method must be one of 'mean', 'median', 'fraction'"),
        ({"threshold": np.nan}, "threshold must be a finite number"),
        ({"fraction": 1.5}, r"fraction must be a number in \[0, 1\]"),
        ({"groups": PP_GROUPS[:-1]}, "groups has 9 entries but y_true has 10"),
        ({"groups": [None] * 10}, "groups contains a missing patient id"),
        ({"y_true": PP_TRUE * 2}, "y_true must hold the labels 0"),
        ({"y_score": PP_SCORE[:, None]}, r"y_score must be the IDC score"),
        ({"y_score": np.full(10, np.inf)}, "y_score contains NaN or infinity"),
    ],
)
def test_patient_predictions_bad_input(kwargs, message):
    arguments = {"y_score": PP_SCORE, "groups": PP_GROUPS, "y_true": PP_TRUE}
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        patient_predictions(**arguments)


def test_patient_predictions_without_y_true_names_y_score():
    with pytest.raises(ValueError, match="groups has 2 entries but y_score has 3"):
        patient_predictions([0.1, 0.2, 0.3], ["a", "b"])
    with pytest.raises(ValueError, match="y_score is empty"):
        patient_predictions([], [])

"""compare_models: the table it returns, its folds, groups reaching fit, errors."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score, roc_auc_score
from sklearn.model_selection import GroupKFold, LeaveOneGroupOut
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.utils import Bunch

from idc_sklearn import (
    MLBNInceptionClassifier,
    PatientValidSplit,
    compare_models,
    make_baseline,
    make_idc_patches,
)
from idc_sklearn.metrics import SCORING, paired_bootstrap

PATCH_SHAPE = (32, 32, 3)
TINY_MLBN = {
    "filters": (3,),
    "head_units": (4,),
    "patch_shape": PATCH_SHAPE,
    "max_epochs": 1,
    "verbose": 0,
    "random_state": 0,
}
COLUMNS = [f"{metric}_{stat}" for metric in SCORING for stat in ("mean", "std")] + [
    "fit_seconds",
    "predict_patches_per_second",
]


@pytest.fixture(scope="module")
def idc():
    return make_idc_patches(
        n_patients=6, patches_per_patient=20, patch_size=32, random_state=0
    )


@pytest.fixture(scope="module")
def patients(idc):
    return sorted(set(idc.groups.tolist()))


class RecordingClassifier(ClassifierMixin, BaseEstimator):
    """Predicts the majority class; records what fit and the predictors got."""

    calls: list = []

    def __init__(self, tag="recording"):
        self.tag = tag

    def fit(self, X, y, groups=None):
        self.calls.append({"n": len(X), "groups": groups})
        self.classes_ = np.unique(y)
        self.majority_ = np.bincount(y).argmax()
        self.n_predictions_ = 0
        return self

    def predict(self, X):
        self.n_predictions_ += 1
        self.calls[-1]["predict"] = self.calls[-1].get("predict", 0) + 1
        return np.full(len(X), self.majority_)

    def predict_proba(self, X):
        self.n_predictions_ += 1
        self.calls[-1]["predict_proba"] = self.calls[-1].get("predict_proba", 0) + 1
        proba = np.zeros((len(X), 2))
        proba[:, self.majority_] = 1.0
        return proba


class NoGroupsClassifier(DummyClassifier):
    """A fit without ``groups``: passing groups would raise a TypeError."""

    calls: list = []

    def fit(self, X, y):
        self.calls.append(len(X))
        return super().fit(X, y)


class RecordingNet(MLBNInceptionClassifier):
    """The MLBN classifier, recording the train_split and groups of each fit."""

    calls: list = []

    def fit(self, X, y, groups=None, **fit_params):
        self.calls.append({"train_split": self.train_split, "groups": groups})
        return super().fit(X, y, groups=groups, **fit_params)


class MetadataClassifier(RecordingClassifier):
    """Records the patients and positions its predictors are handed."""

    def predict(self, X, groups=None, coords=None):
        self.calls[-1].setdefault("seen", []).append(("predict", groups, coords))
        return super().predict(X)

    def predict_proba(self, X, *, groups=None, coords=None):
        self.calls[-1].setdefault("seen", []).append(("predict_proba", groups, coords))
        return super().predict_proba(X)


@pytest.fixture(autouse=True)
def _clear_calls():
    for estimator in (
        RecordingClassifier,
        NoGroupsClassifier,
        RecordingNet,
        MetadataClassifier,
    ):
        estimator.calls.clear()


def test_table_has_the_promised_columns_one_row_per_model(idc):
    models = {
        "color": make_baseline("color-logreg", patch_shape=PATCH_SHAPE),
        "mlbn": MLBNInceptionClassifier(**TINY_MLBN),
        "prior": DummyClassifier(strategy="prior"),
    }
    table = compare_models(models, idc.data, idc.target, idc.groups, cv=2)

    assert isinstance(table, pd.DataFrame)
    assert table.columns.tolist() == COLUMNS
    assert table.index.tolist() == ["color", "mlbn", "prior"]
    assert table.index.name == "model"
    assert table.attrs["n_folds"] == 2
    scores = table.filter(regex="_(mean|std)$")
    assert scores.notna().all().all()
    assert ((scores >= 0) & (scores <= 1)).all().all()
    assert (table["fit_seconds"] > 0).all()
    assert (table["predict_patches_per_second"] > 0).all()
    assert table.loc["prior", "balanced_accuracy_mean"] == 0.5
    assert not hasattr(models["mlbn"], "module_"), "the given model was fitted"


def test_models_as_pairs_and_flattened_patches(idc):
    X = idc.data.reshape(len(idc.data), -1)
    table = compare_models(
        [
            ("logreg", make_pipeline(StandardScaler(), LogisticRegression(C=1e-3))),
            ("prior", DummyClassifier()),
        ],
        X,
        idc.target,
        idc.groups,
        cv=3,
        progress=False,
    )
    assert table.index.tolist() == ["logreg", "prior"]
    assert table.attrs["n_folds"] == 3


def test_default_cv_is_five_group_folds(idc):
    table = compare_models(
        {"r": RecordingClassifier()}, idc.data, idc.target, idc.groups, progress=False
    )
    assert table.attrs["n_folds"] == 5
    assert len(RecordingClassifier.calls) == 5
    assert "GroupKFold" in table.attrs["cv"]


def test_training_patients_reach_fit_and_never_the_test_ones(idc):
    cv = GroupKFold(n_splits=3)
    compare_models(
        {"r": RecordingClassifier(), "plain": NoGroupsClassifier()},
        idc.data,
        idc.target,
        idc.groups,
        cv=cv,
        progress=False,
    )
    folds = list(cv.split(idc.data, idc.target, idc.groups))
    assert len(RecordingClassifier.calls) == len(folds)
    for call, (train, test) in zip(RecordingClassifier.calls, folds, strict=True):
        np.testing.assert_array_equal(call["groups"], idc.groups[train])
        assert not set(call["groups"]) & set(idc.groups[test])
    assert NoGroupsClassifier.calls == [len(train) for train, _ in folds]


def test_predictions_are_computed_once_per_fold(idc):
    compare_models({"r": RecordingClassifier()}, idc.data, idc.target, idc.groups, cv=2)
    # roc_auc and average_precision both score predict_proba.
    assert [call["predict_proba"] for call in RecordingClassifier.calls] == [1, 1]


def test_any_sklearn_splitter(idc, patients):
    table = compare_models(
        {"prior": DummyClassifier()},
        idc.data,
        idc.target,
        idc.groups,
        cv=LeaveOneGroupOut(),
        progress=False,
    )
    assert table.attrs["n_folds"] == len(patients)


def test_scoring_by_name_and_as_dict(idc):
    table = compare_models(
        {"prior": DummyClassifier()},
        idc.data,
        idc.target,
        idc.groups,
        cv=2,
        scoring=["balanced_accuracy", "accuracy"],
        progress=False,
    )
    assert table.columns.tolist() == [
        "balanced_accuracy_mean",
        "balanced_accuracy_std",
        "accuracy_mean",
        "accuracy_std",
        "fit_seconds",
        "predict_patches_per_second",
    ]
    table = compare_models(
        {"prior": DummyClassifier()},
        idc.data,
        idc.target,
        idc.groups,
        cv=2,
        scoring={"auc": SCORING["roc_auc"]},
        progress=False,
    )
    assert table.loc["prior", "auc_mean"] == 0.5


def test_fixed_split_trains_on_train_and_val_scores_on_test(idc, patients):
    split = {"train": patients[:3], "val": patients[3:4], "test": patients[4:]}
    models = {
        "net": RecordingNet(**TINY_MLBN),
        "r": RecordingClassifier(),
        "plain": NoGroupsClassifier(),
    }
    table = compare_models(
        models, idc.data, idc.target, idc.groups, cv=split, progress=False
    )

    assert table.columns.tolist() == COLUMNS
    assert table.attrs["n_folds"] == 1
    assert table.filter(like="_std").isna().all().all()
    assert table.filter(like="_mean").notna().all().all()
    fit_patients = set(patients[:4])
    n_fit = int(np.isin(idc.groups, list(fit_patients)).sum())
    # The CNN's early-stopping set is exactly the val patients.
    (net_call,) = RecordingNet.calls
    assert isinstance(net_call["train_split"], PatientValidSplit)
    assert list(net_call["train_split"].valid_groups) == patients[3:4]
    assert set(net_call["groups"]) == fit_patients
    assert isinstance(models["net"].train_split, PatientValidSplit)
    assert models["net"].train_split.valid_groups is None
    # Other models simply fit on train + val.
    (call,) = RecordingClassifier.calls
    assert call["n"] == n_fit
    assert set(call["groups"]) == fit_patients
    assert NoGroupsClassifier.calls == [n_fit]


def test_a_wrapped_cnn_gets_the_val_patients_and_the_training_patients(idc, patients):
    # compare --context wraps every CNN in a PatientPriorClassifier: the net
    # inside still stops early on exactly the val patients and gets the
    # training patients.
    from idc_sklearn import PatientPriorClassifier

    split = {"train": patients[:3], "val": patients[3:4], "test": patients[4:]}
    models = {"net": PatientPriorClassifier(RecordingNet(**TINY_MLBN))}
    _compare(idc, models, cv=split)
    (call,) = RecordingNet.calls
    assert list(call["train_split"].valid_groups) == patients[3:4]
    assert set(call["groups"]) == set(patients[:4])
    assert models["net"].estimator.train_split.valid_groups is None


def test_fixed_split_without_val(idc, patients):
    split = {"train": patients[:4], "test": patients[4:]}
    compare_models(
        {"r": RecordingClassifier()}, idc.data, idc.target, idc.groups, cv=split
    )
    (call,) = RecordingClassifier.calls
    assert set(call["groups"]) == set(patients[:4])


def _compare(idc, models, **kwargs):
    return compare_models(
        models, idc.data, idc.target, idc.groups, progress=False, **kwargs
    )


def _flat_logreg(C=1.0):
    flatten = FunctionTransformer(lambda X: X.reshape(len(X), -1) / 255.0)
    return make_pipeline(flatten, StandardScaler(), LogisticRegression(C=C))


DETAILED = ("prior", "color", "mlbn-like")
FOLD_COLUMNS = ["model", "fold", *SCORING, "fit_seconds", "n_test"]


@pytest.fixture(scope="module")
def detailed(idc):
    models = {
        "prior": DummyClassifier(strategy="prior"),
        "color": make_baseline("color-logreg", patch_shape=PATCH_SHAPE),
        "mlbn-like": _flat_logreg(C=1e-3),
    }
    return _compare(idc, models, cv=3, return_details=True)


def test_details_folds_one_row_per_model_and_fold(detailed):
    table, details = detailed
    assert isinstance(details, Bunch)
    folds = details.folds
    assert folds.columns.tolist() == FOLD_COLUMNS
    assert folds[["model", "fold"]].values.tolist() == [
        [name, k] for name in DETAILED for k in (1, 2, 3)
    ]
    means = folds.groupby("model", sort=False)["balanced_accuracy"].mean()
    np.testing.assert_allclose(means, table["balanced_accuracy_mean"])
    assert folds.groupby("model")["n_test"].sum().eq(120).all()


def test_details_predictions_are_the_scored_out_of_fold_ones(idc, detailed):
    _, details = detailed
    predictions = details.predictions
    assert predictions.columns.tolist() == ["patient", "fold", "y_true"] + [
        f"{name}_{column}" for name in DETAILED for column in ("pred", "score")
    ]
    assert predictions.index.name == "index"
    # GroupKFold tests every patch once, in fold order.
    assert sorted(predictions.index) == list(range(len(idc.target)))
    folds = list(GroupKFold(3).split(idc.data, idc.target, idc.groups))
    for k, (_, test) in enumerate(folds, start=1):
        np.testing.assert_array_equal(predictions.index[predictions["fold"] == k], test)
    index = predictions.index.to_numpy()
    np.testing.assert_array_equal(predictions["y_true"], idc.target[index])
    np.testing.assert_array_equal(predictions["patient"], idc.groups[index])
    assert predictions.attrs["score_method"] == {
        "prior": "predict_proba",
        "color": "decision_function",
        "mlbn-like": "decision_function",
    }
    # The very predictions the scorers read: each fold's scores come back.
    scored = details.folds.set_index(["model", "fold"])
    for (k, fold), name in itertools.product(
        predictions.groupby("fold"), ("color", "mlbn-like")
    ):
        assert balanced_accuracy_score(
            fold["y_true"], fold[f"{name}_pred"]
        ) == pytest.approx(scored.loc[(name, k), "balanced_accuracy"])
        assert roc_auc_score(fold["y_true"], fold[f"{name}_score"]) == pytest.approx(
            scored.loc[(name, k), "roc_auc"]
        )


def test_details_differences_of_the_mlbn_model_best_other_first(detailed):
    table, details = detailed
    differences = details.differences
    assert differences.columns.tolist() == ["difference", "low", "high", "n_patients"]
    assert differences.index.name == "model"
    # "mlbn-like" is the reference though not first; others by mean balanced
    # accuracy, best first.
    assert differences.attrs["reference"] == "mlbn-like"
    others = table.drop(index="mlbn-like")["balanced_accuracy_mean"]
    assert (
        differences.index.tolist() == others.sort_values(ascending=False).index.tolist()
    )
    assert differences.attrs["best"] == differences.index[0]
    predictions = details.predictions
    for other, row in differences.iterrows():
        expected = paired_bootstrap(
            predictions["y_true"],
            predictions["mlbn-like_pred"],
            predictions[f"{other}_pred"],
            predictions["patient"],
        )
        assert row.to_dict() == pytest.approx(
            {key: expected[key] for key in differences.columns}
        )
        assert row["low"] <= row["difference"] <= row["high"]
        assert row["n_patients"] == 6


def test_details_reuse_the_scorers_predictions(idc):
    _compare(idc, {"r": RecordingClassifier()}, cv=2, return_details=True)
    assert [(c["predict"], c["predict_proba"]) for c in RecordingClassifier.calls] == [
        (1, 1),
        (1, 1),
    ]


def test_details_reference_single_model_fixed_split_and_no_scores(idc, patients):
    split = {"train": patients[:4], "test": patients[4:]}
    models = {"a": DummyClassifier(), "b": _flat_logreg()}
    _, details = _compare(
        idc,
        models,
        cv=split,
        scoring=["balanced_accuracy"],
        reference="b",
        return_details=True,
    )
    assert set(details.predictions["patient"]) == set(patients[4:])
    assert (details.predictions["fold"] == 1).all()
    # No scorer asked for scores, and none is computed for the details.
    assert details.predictions[["a_score", "b_score"]].isna().all().all()
    assert details.predictions.attrs["score_method"] == {"a": None, "b": None}
    assert details.differences.index.tolist() == ["a"]
    assert details.differences.attrs == {"reference": "b", "best": "a"}
    _, alone = _compare(idc, {"a": DummyClassifier()}, cv=2, return_details=True)
    assert alone.differences.empty
    assert alone.differences.attrs == {"reference": "a", "best": None}


def test_default_returns_the_table_alone(idc):
    table = _compare(idc, {"prior": DummyClassifier()}, cv=2)
    assert isinstance(table, pd.DataFrame)


def test_progress_bar_names_model_and_fold(idc, capsys):
    compare_models(
        {"prior-model": DummyClassifier()},
        idc.data,
        idc.target,
        idc.groups,
        cv=2,
        progress=True,
    )
    assert "prior-model (fold 2/2)" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"models": {}}, ValueError, "models is empty"),
        ({"models": []}, ValueError, "models is empty"),
        ({"models": "prior"}, TypeError, "models must be a dict"),
        ({"models": [DummyClassifier()]}, TypeError, "models must be a dict"),
        ({"models": {"x": object()}}, TypeError, r"models\['x'\]"),
        ({"models": {"": DummyClassifier()}}, TypeError, "non-empty strings"),
        (
            {"models": [("a", DummyClassifier()), ("a", DummyClassifier())]},
            ValueError,
            "unique",
        ),
        ({"y": slice(0, -1)}, ValueError, "y must hold one label per patch"),
        ({"groups": slice(0, -1)}, ValueError, "groups must hold one patient id"),
        ({"groups": None}, ValueError, "groups is None"),
        ({"coords": "short"}, ValueError, r"coords must be .* shape \(120, 2\)"),
        ({"coords": "nan"}, ValueError, "coords must be finite positions"),
        ({"X": "flat"}, ValueError, "X must hold patches"),
        ({"cv": 7}, ValueError, "cv asks for 7 folds but groups holds only 6"),
        ({"cv": GroupKFold(10)}, ValueError, "cv asks for 10 folds"),
        ({"cv": 1}, ValueError, "cv must be at least 2"),
        ({"cv": "five"}, TypeError, "cv must be None"),
        ({"cv": {"train": ["synth00"]}}, ValueError, "keys 'train', 'test'"),
        (
            {"cv": {"train": ["synth00"], "test": ["nobody"]}},
            ValueError,
            r"cv\['test'\] names 1 patient\(s\) absent from groups: \['nobody'\]",
        ),
        (
            {"cv": {"train": ["synth00"], "val": ["synth00"], "test": ["synth01"]}},
            ValueError,
            "both 'train' and 'val'",
        ),
        ({"cv": {"train": [], "test": ["synth01"]}}, ValueError, "lists no patients"),
        ({"cv": {"train": "synth00", "test": ["synth01"]}}, TypeError, "list of"),
        ({"y": "strings"}, ValueError, "labels 0 \\(no IDC\\) and 1"),
        ({"scoring": ["no-such-metric"]}, ValueError, "unknown metric"),
        ({"scoring": {"x": 3}}, TypeError, r"scoring\['x'\] must be a scorer"),
        ({"scoring": []}, ValueError, "scoring is empty"),
        ({"reference": "nobody"}, ValueError, r"reference must name one of .*'prior'"),
        (
            {"y": "three classes", "scoring": ["accuracy"], "return_details": True},
            ValueError,
            "return_details=True compares .* two classes; y holds 3",
        ),
    ],
)
def test_errors_name_the_argument(idc, change, error, match):
    arguments = {
        "models": {"prior": DummyClassifier()},
        "X": idc.data,
        "y": idc.target,
        "groups": idc.groups,
        "cv": 2,
    }
    for name, value in change.items():
        if isinstance(value, slice):
            value = arguments[name][value]
        elif name == "X" and value == "flat":
            value = idc.data.reshape(-1)
        elif name == "y" and value == "strings":
            value = np.where(idc.target == 1, "IDC", "non-IDC")
        elif name == "coords":
            coords = idc.frame[["x", "y"]].to_numpy(dtype=float, copy=True)
            if value == "nan":
                coords[3, 1] = np.nan
            value = coords[:-1] if value == "short" else coords
        elif name == "y" and value == "three classes":
            value = np.arange(len(idc.target)) % 3
        arguments[name] = value
    with pytest.raises(error, match=match):
        compare_models(**arguments, progress=False)


def test_predictors_that_take_patients_and_positions_get_the_test_ones(idc):
    coords = idc.frame[["x", "y"]].to_numpy(dtype=float)
    folds = list(GroupKFold(3).split(idc.data, idc.target, idc.groups))
    models = {"meta": MetadataClassifier(), "plain": RecordingClassifier()}
    _compare(idc, models, cv=GroupKFold(3), coords=coords)
    meta = [call for call in MetadataClassifier.calls if "seen" in call]
    assert len(meta) == 3
    for call, (_, test) in zip(meta, folds, strict=True):
        # Each prediction method once, each with the held-out patients' own.
        assert sorted(method for method, _, _ in call["seen"]) == [
            "predict",
            "predict_proba",
        ]
        for _, groups, positions in call["seen"]:
            np.testing.assert_array_equal(groups, idc.groups[test])
            np.testing.assert_array_equal(positions, coords[test])
    # Without coords, the patients alone.
    MetadataClassifier.calls.clear()
    _compare(idc, {"meta": MetadataClassifier()}, cv=2)
    seen = [entry for call in MetadataClassifier.calls for entry in call["seen"]]
    assert seen and all(g is not None and c is None for _, g, c in seen)


def test_patient_prior_classifier_is_scored_in_context(idc):
    # compare_models' out-of-fold probabilities of a PatientPriorClassifier are
    # what it predicts given each held-out patient's patches and positions, and
    # differ from the wrapped model's alone.
    from idc_sklearn import PatientPriorClassifier

    coords = idc.frame[["x", "y"]].to_numpy(dtype=float)
    base = make_pipeline(
        FunctionTransformer(lambda X: X.reshape(len(X), -1)[:, ::97] / 255.0),
        LogisticRegression(C=0.1, max_iter=500),
    )
    context = PatientPriorClassifier(base, strength=10.0, neighbour_weight=0.5)
    models = {"context": context, "alone": base}
    _, details = _compare(
        idc, models, cv=GroupKFold(2), coords=coords, return_details=True
    )
    expected = np.empty(len(idc.target))
    for train, test in GroupKFold(2).split(idc.data, idc.target, idc.groups):
        fitted = clone(context).fit(idc.data[train], idc.target[train])
        expected[test] = fitted.predict_proba(
            idc.data[test], groups=idc.groups[test], coords=coords[test]
        )[:, 1]
    got = details.predictions.sort_index()
    np.testing.assert_allclose(got["context_score"], expected, rtol=1e-12)
    assert not np.allclose(got["context_score"], got["alone_score"])

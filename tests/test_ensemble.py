"""PatientStackingClassifier and PatientVotingClassifier: the MLBN network with the
handcrafted features, every inner split by patient; the compare models built on
them."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import sklearn
from conftest import TINY, make_patches
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.ensemble import StackingClassifier, VotingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold, KFold

from idc_sklearn import (
    MLBNInceptionClassifier,
    PatientStackingClassifier,
    PatientVotingClassifier,
    compare_models,
    make_baseline,
)
from idc_sklearn.cli import _models
from idc_sklearn.cli._models import ENSEMBLE_MODELS, make_models, model_names

# 8 patients of 4 patches: an inner fold of 2 leaves the network 4 patients, enough
# for its early-stopping split to hold out whole patients.
N_PATIENTS = 8


class RecordingGroupKFold(GroupKFold):
    """GroupKFold that keeps the folds it made, with the groups it was given."""

    def split(self, X, y=None, groups=None):
        folds = list(super().split(X, y, groups))
        self.seen_.append((np.asarray(groups), folds))
        yield from folds


class GroupsRecorder(ClassifierMixin, BaseEstimator):
    """A flattened-patch logistic regression that records the groups of each fit;
    it requests them, as the library's CNNs do."""

    __metadata_request__fit = {"groups": True}
    calls: list = []

    def fit(self, X, y, groups=None):
        GroupsRecorder.calls.append(None if groups is None else np.asarray(groups))
        X = np.asarray(X).reshape(len(X), -1)
        self.clf_ = LogisticRegression(max_iter=200).fit(X, y)
        self.classes_ = self.clf_.classes_
        return self

    def predict_proba(self, X):
        return self.clf_.predict_proba(np.asarray(X).reshape(len(X), -1))

    def predict(self, X):
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


@pytest.fixture(scope="module")
def data():
    return make_patches(n=4 * N_PATIENTS, n_patients=N_PATIENTS)


@pytest.fixture
def recorder():
    GroupsRecorder.calls = []
    return GroupsRecorder()


def _network(**params):
    return MLBNInceptionClassifier(**{**TINY, "max_epochs": 1, **params})


def _features():
    return make_baseline("color-logreg", patch_shape=TINY["patch_shape"])


def _is_probability(proba, n):
    assert proba.shape == (n, 2)
    assert np.all((proba >= 0) & (proba <= 1))
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-5)


def test_stacked_network_and_features_split_inner_folds_by_patient(data):
    X, y, groups = data
    cv = RecordingGroupKFold(2)
    cv.seen_ = []
    stack = PatientStackingClassifier(
        [("mlbn", _network()), ("features", _features())],
        final_estimator=LogisticRegression(class_weight="balanced"),
        cv=cv,
        stack_method="predict_proba",
    ).fit(X, y, groups=groups)

    ((seen, folds),) = cv.seen_  # one split, shared by both base estimators
    np.testing.assert_array_equal(seen, groups)
    assert len(folds) == 2
    for train, test in folds:
        assert not set(groups[train]) & set(groups[test])
    assert isinstance(stack, StackingClassifier)
    assert list(stack.named_estimators_) == ["mlbn", "features"]
    assert stack.stack_method_ == ["predict_proba", "predict_proba"]
    # One column per base estimator: the IDC probability.
    assert stack.final_estimator_.coef_.shape == (1, 2)
    _is_probability(stack.predict_proba(X), len(X))
    assert set(stack.predict(X)) <= {0, 1}


@pytest.mark.parametrize("routing", [False, True])
def test_groups_reach_the_estimators_that_request_them_never_the_final(
    data, recorder, routing
):
    X, y, groups = data
    stack = PatientStackingClassifier(
        [("recorder", recorder), ("features", _features())],
        final_estimator=LogisticRegression(class_weight="balanced"),
        cv=2,
        stack_method="predict_proba",
    )
    with sklearn.config_context(enable_metadata_routing=routing):
        stack.fit(X, y, groups=groups)
    full, *inner = GroupsRecorder.calls
    np.testing.assert_array_equal(full, groups)
    folds = list(GroupKFold(2).split(X, y, groups))
    assert len(inner) == len(folds)
    for got, (train, _) in zip(inner, folds, strict=True):
        np.testing.assert_array_equal(got, groups[train])


def test_stacking_refuses_folds_that_split_a_patient(data, recorder):
    X, y, groups = data
    stack = PatientStackingClassifier(
        [("recorder", recorder), ("features", _features())], cv=KFold(3)
    )
    with (
        pytest.warns(UserWarning, match="groups parameter is ignored by KFold"),
        pytest.raises(ValueError, match=r"cv=KFold.* put patient 'p\d' on both"),
    ):
        stack.fit(X, y, groups=groups)
    assert GroupsRecorder.calls == []  # checked before any fit


def test_stacking_without_groups_is_sklearns(data, recorder):
    X, y, _ = data
    stack = PatientStackingClassifier([("recorder", recorder)], cv=2).fit(X, y)
    expected = StackingClassifier([("recorder", clone(recorder))], cv=2).fit(X, y)
    np.testing.assert_allclose(stack.predict_proba(X), expected.predict_proba(X))
    assert all(groups is None for groups in GroupsRecorder.calls)


def test_stacking_with_groups_is_sklearns_fit_on_patient_folds(data):
    X, y, groups = data
    labels = np.array(["non-IDC", "IDC"])[y]
    estimators = [
        ("color", _features()),
        ("dropped", "drop"),
        ("strong", _features().set_params(clf__C=0.01)),
    ]
    stack = PatientStackingClassifier(estimators, cv=GroupKFold(4)).fit(
        X, labels, groups=groups
    )
    folds = list(GroupKFold(4).split(X, labels, groups))
    expected = StackingClassifier(estimators, cv=folds).fit(X, labels)
    np.testing.assert_allclose(stack.predict_proba(X), expected.predict_proba(X))
    np.testing.assert_array_equal(stack.predict(X), expected.predict(X))
    np.testing.assert_array_equal(stack.classes_, expected.classes_)
    assert stack.named_estimators_["dropped"] == "drop"
    assert stack.stack_method_ == expected.stack_method_
    assert stack.get_feature_names_out().tolist() == [
        "patientstackingclassifier_color",
        "patientstackingclassifier_strong",
    ]


def test_voting_averages_the_network_and_the_features(data):
    X, y, groups = data
    vote = PatientVotingClassifier(
        [("mlbn", _network()), ("features", _features())], voting="soft"
    ).fit(X, y, groups=groups)
    assert isinstance(vote, VotingClassifier)
    proba = vote.predict_proba(X)
    _is_probability(proba, len(X))
    network, features = vote.estimators_
    np.testing.assert_allclose(
        proba, (network.predict_proba(X) + features.predict_proba(X)) / 2, rtol=1e-5
    )


def test_voting_hands_groups_on_whatever_the_routing_setting(data, recorder):
    X, y, groups = data
    vote = PatientVotingClassifier(
        [("recorder", recorder), ("features", _features())], voting="soft"
    )
    vote.fit(X, y, groups=groups)
    with sklearn.config_context(enable_metadata_routing=True):
        vote.fit(X, y, groups=groups)
    assert not sklearn.get_config()["enable_metadata_routing"]
    assert len(GroupsRecorder.calls) == 2
    for got in GroupsRecorder.calls:
        np.testing.assert_array_equal(got, groups)


def test_voting_takes_groups_that_no_estimator_requests(data):
    X, y, groups = data
    vote = PatientVotingClassifier(
        [("a", _features()), ("b", _features())], voting="soft"
    ).fit(X, y, groups=groups)
    _is_probability(vote.predict_proba(X), len(X))


def test_compare_ensembles_are_chosen_by_name_only():
    from idc_sklearn.cli import build_parser

    assert not set(ENSEMBLE_MODELS) & set(model_names())
    args = build_parser().parse_args(["compare", "--models", *ENSEMBLE_MODELS])
    assert args.models == list(ENSEMBLE_MODELS)


def test_compare_runs_the_ensembles(monkeypatch):
    # Two inner folds rather than three: the same code, a quarter fewer fits.
    monkeypatch.setattr(_models, "ENSEMBLE_INNER_FOLDS", 2)
    # features-hgb's HOG needs patches of 32 pixels or more.
    X, y, groups = make_patches(n=4 * N_PATIENTS, size=32, n_patients=N_PATIENTS)
    args = argparse.Namespace(
        models=list(ENSEMBLE_MODELS),
        preset="tiny",
        max_epochs=1,
        batch_size=16,
        device="cpu",
        random_state=0,
    )
    models = make_models(args, (32, 32, 3))
    assert list(models) == list(ENSEMBLE_MODELS)
    stack, mean = models.values()
    assert isinstance(stack, PatientStackingClassifier)
    assert isinstance(stack.final_estimator, LogisticRegression)
    assert isinstance(mean, PatientVotingClassifier) and mean.voting == "soft"
    for ensemble in (stack, mean):
        assert list(ensemble.named_estimators) == ["mlbn-inception", "features-hgb"]
        # 5 boosting iterations rather than 100: seconds, not a minute, on 2 cores.
        ensemble.set_params(**{"features-hgb__clf__max_iter": 5})
    # One fit a model: 6 patients to train on, 2 to test.
    split = {"train": [f"p{i}" for i in range(6)], "test": ["p6", "p7"]}
    table = compare_models(models, X, y, groups, cv=split, progress=False)
    assert table.index.tolist() == list(ENSEMBLE_MODELS)
    assert table["balanced_accuracy_mean"].between(0, 1).all()
    assert table["roc_auc_mean"].notna().all()
